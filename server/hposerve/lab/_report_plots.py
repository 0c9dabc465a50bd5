"""The report's plots: best-so-far curves by trial, by wall-clock time and by training steps.

What a curve is: for each seed, the best-so-far metric is a step function (of trials finished,
of seconds since the seed's first trial started, or of training steps used). An arm's line is
the median of its seeds' step functions, its band their IQR, drawn only where *every* seed of
the arm has a value: from the point at which the last seed gets its first complete trial, up to
the end (a finished seed keeps its final best; an unfinished one has no value past its last
finished trial, so a partial comparison's curves stop where its slowest seed is). Over a fixed
set of seeds, each non-increasing in loss, the median and the quartiles cannot get worse: a
median over whichever seeds have started could (a late seed's first, poor trial pulled it up).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hposerve.lab._report_runs import Run
from hposerve.lab._report_stats import band

__all__ = ["captions", "plot_curves", "plot_steps", "pyplot"]

# Points on the continuous x axes (seconds, steps) at which seed curves are sampled.
_GRID_POINTS = 300
_STATISTIC = "median over seeds (IQR shaded), drawn where every seed has a value"


def captions(metric: str) -> dict[str, str]:
    """A caption per plot file, for report.md."""
    return {
        "curves.png": f"Best-so-far {metric} against trials and against wall-clock time. For "
        f"each seed the best {metric} so far is a step function; the line is the median over "
        "the arm's seeds and the band their IQR, drawn only where every seed has a value: from "
        "the moment the last seed has its first complete trial (and, in a partial comparison, "
        "up to where its slowest seed has got), so that the set of seeds never changes along a "
        "curve and the curve never gets worse.",
        "steps.png": f"Best-so-far {metric} against training steps used: what pruning saves "
        "(the same statistic).",
    }


def _label(metric: str) -> str:
    return f"best-so-far {metric}" if metric == "regret" else "best value so far"


def _step_matrix(
    xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], done: Sequence[bool], grid: np.ndarray
) -> np.ndarray:
    """Seeds' best-so-far step functions sampled on ``grid`` (NaN where unknown).

    Before a seed's first value it is NaN. Past its last point the value holds if the run has
    finished; for an unfinished run the future is unknown, so it is NaN.
    """
    out = np.full((len(xs), grid.size), np.nan)
    for i, (x, y, finished) in enumerate(zip(xs, ys, done, strict=True)):
        if x.size == 0:
            continue
        idx = np.searchsorted(x, grid, side="right") - 1
        known = idx >= 0
        if not finished:
            known &= grid <= x[-1]
        out[i, known] = y[idx[known]]
    return out


def _arm_grid(xs: Sequence[np.ndarray]) -> np.ndarray:
    """Sample points for one arm's curve on a continuous axis, empty if it has no points.

    Each arm's curve ends where its own furthest seed ends, so that an arm that used less time
    or fewer steps for its budget visibly stops earlier.
    """
    ends = [float(x[-1]) for x in xs if x.size]
    return np.linspace(0.0, max(ends), _GRID_POINTS) if ends else np.array([])


def _scale_y(ax: Any, metric: str, arrays: list[np.ndarray]) -> None:
    if metric != "regret":
        return
    values = np.concatenate([a[~np.isnan(a)] for a in arrays]) if arrays else np.array([])
    positive = values[values > 0]
    if positive.size == 0:
        return
    if positive.size == values.size:
        ax.set_yscale("log")
    else:
        # Some regret is exactly 0 (the optimum was found): symlog keeps those points visible.
        ax.set_yscale("symlog", linthresh=float(positive.min()))


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds < 120:
        return 1.0, "s"
    if seconds < 7200:
        return 60.0, "min"
    return 3600.0, "h"


def _plot_band(ax: Any, x: np.ndarray, matrix: np.ndarray, label: str, color: Any) -> list[Any]:
    """Draws the median and IQR of ``matrix``'s rows (seeds) where every row has a value."""
    med, lo, hi, _ = band(matrix, min_count=matrix.shape[0])
    ax.plot(x, med, label=label, color=color, drawstyle="steps-post")
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, step="post", linewidth=0)
    return [med, lo, hi]


def _by_time(ax: Any, runs: list[Run], scale: float, label: str, color: Any) -> list[Any]:
    grid = _arm_grid([r.times for r in runs])
    if not grid.size:
        return []
    matrix = _step_matrix(
        [r.times for r in runs], [r.best_by_time for r in runs], [r.done for r in runs], grid
    )
    return _plot_band(ax, grid / scale, matrix, label, color)


def _finish(fig: Any, path: Path, axes: Sequence[Any], metric: str, plotted: list[Any]) -> None:
    for ax in axes:
        ax.set_ylabel(_label(metric))
        _scale_y(ax, metric, plotted)
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    results: dict[str, Any], arms: dict[str, list[Run]], path: Path, colors: dict[str, Any]
) -> None:
    """Writes curves.png: best-so-far by trials finished, and by wall-clock time."""
    plt = pyplot()
    metric = results["metric"]
    fig, (by_trial, by_time) = plt.subplots(1, 2, figsize=(13, 5))
    try:
        plotted: list[Any] = []
        trials_x = np.arange(1, results["budgets"][-1] + 1)
        t_max = max((r.times[-1] for rs in arms.values() for r in rs if r.times.size), default=0.0)
        scale, unit = _time_unit(t_max)
        for arm, runs in arms.items():
            label = f"{arm} ({len(runs)} seeds)"
            matrix = np.array([r.best for r in runs])  # NaN past each run's finished trials
            plotted += _plot_band(by_trial, trials_x, matrix, label, colors[arm])
            plotted += _by_time(by_time, runs, scale, label, colors[arm])
        for budget in results["budgets"]:
            by_trial.axvline(budget, color="0.8", linestyle=":", linewidth=1, zorder=0)
        by_trial.set_xlabel("trials finished")
        by_time.set_xlabel(f"wall-clock time since the seed's first trial started ({unit})")
        by_trial.set_title("by trial")
        by_time.set_title("by wall-clock time")
        suffix = " (partial)" if results["partial"] else ""
        fig.suptitle(f"{results['task']}: each seed's {_label(metric)}, {_STATISTIC}{suffix}")
        _finish(fig, path, (by_trial, by_time), metric, plotted)
    finally:
        plt.close(fig)


def plot_steps(
    results: dict[str, Any], arms: dict[str, list[Run]], path: Path, colors: dict[str, Any]
) -> None:
    """Writes steps.png: best-so-far by training steps used (for arms whose trials report)."""
    plt = pyplot()
    metric = results["metric"]
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        plotted: list[Any] = []
        for arm, runs in arms.items():
            if not any(r.has_steps for r in runs):
                continue
            # The best-so-far after each finished trial, at the steps used up to that trial.
            xs = [r.cum_steps.astype(float) for r in runs]
            ys = [r.best[: r.cum_steps.size] for r in runs]
            grid = _arm_grid(xs)
            if not grid.size:
                continue
            matrix = _step_matrix(xs, ys, [r.done for r in runs], grid)
            plotted += _plot_band(ax, grid, matrix, f"{arm} ({len(runs)} seeds)", colors[arm])
        ax.set_xlabel("training steps used (sum over trials of last reported step + 1)")
        suffix = " (partial)" if results["partial"] else ""
        ax.set_title(f"{results['task']}: {_label(metric)} by training steps{suffix}")
        _finish(fig, path, (ax,), metric, plotted)
    finally:
        plt.close(fig)

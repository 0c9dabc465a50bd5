"""The report of a method comparison: results.json, report.md, curves and a CLI summary.

A comparison is a group of sibling studies on one task, one per (arm, seed); an arm is a
sampler, optionally with a pruner. This module turns the trials of all member studies into
numbers (:func:`build_results`), files a person opens (:func:`write_report`) and a plain-text
table (:func:`summary_table`). It works on a comparison that is still running: runs with fewer
trials than the budget and running trials are expected.

Definitions
-----------
- A run's *finished* trials are its complete, pruned and failed trials, in trial-number order.
  Running and waiting trials are not counted yet: budget ``k`` is reached once ``k`` trials
  have finished. Only the first ``max(budgets)`` finished trials of a run are used.
- *Best-so-far after k trials* is the best value (min for minimize, max for maximize) over the
  complete trials among the first ``k`` finished ones. Pruned and failed trials use up budget
  but contribute no value (Optuna's value for a pruned trial is ignored). A run with no
  complete trial among its first ``k`` has no value at ``k``.
- *Regret* is ``best - optimum`` (minimize) or ``optimum - best`` (maximize), clipped at 0.
  With a known optimum the metric is regret, else the best value itself.
- A run with fewer than ``k`` finished trials has no value (NaN) at budget ``k``; missing
  values are left out of medians, IQRs, ranks and tests, and ``n`` says how many seeds
  contributed at each budget.

results.json
------------
::

    {
      "task": str,
      "direction": "minimize" | "maximize",
      "optimum": float | null,
      "budgets": [int, ...],              # ascending, distinct
      "metric": "regret" | "best",        # "regret" when optimum is known
      "baseline": str,                    # the arm the p-values compare against ("random")
      "alpha": 0.05,
      "min_seeds_for_test": 3,            # seeds needed on each side for a p-value
      "rank_method": "per_seed" | "median" | null,
      "partial": bool,                    # some run has fewer finished trials than max(budgets)
      "generated_at": str,                # ISO 8601, UTC
      "arms": {
        ARM: {
          "seeds": int,                   # number of runs (seeds) of this arm
          "seed_ids": [int, ...],         # ascending; per-seed lists below follow this order
          "trials_done": [int, ...],      # finished trials per seed
          "running_trials": int,          # running or waiting trials, all seeds
          "pruned_trials": [int, ...],    # per seed, among the first max(budgets) finished
          "failed_trials": [int, ...],    # per seed, likewise
          "n": [int, ...],                # per budget: seeds with a value there
          "median_regret": [float|null, ...],  # per budget; "median_best" when metric is "best"
          "iqr": [[float, float]|null, ...],   # per budget: 25th and 75th percentile over seeds
          "mean_rank": float | null,      # 1 = best; see rank_method
          "p_vs_random": [float|null, ...] | null,  # per budget; null for the baseline itself
          "significant": [bool|null, ...] | null,   # per budget: p < alpha; null where no p
          "sample_ms_per_trial": float | null,  # mean sampler time per trial (all its trials)
          "total_steps": [int, ...] | null,     # per seed: training steps used, see below
          "steps_to_best": [int|null, ...] | null  # per seed: steps used when its best was hit
        }
      }
    }

Non-finite numbers are written as null, so the file is strict JSON.

Ranks: at each budget, arms are ranked by how good their values are (1 = best, ties get the
average rank). When every arm has the same set of seeds (``rank_method: "per_seed"``), each
seed is ranked across arms separately, using only the seeds where every arm has a value, and
``mean_rank`` is the mean over those (budget, seed) cells. Otherwise (``"median"``) the arms'
medians are ranked at each budget where every arm has one, and ``mean_rank`` is the mean over
those budgets. ``rank_method`` is null when no cell could be ranked.

Tests against the baseline: at each budget, a one-sided Mann-Whitney U test
(``scipy.stats.mannwhitneyu(arm, baseline, alternative="less")``) on the per-seed loss (regret;
or the best value, negated when maximizing): a small p says the arm's results are better than
the baseline's. It needs ``min_seeds_for_test`` seeds with a value on each side; note that
with 3 against 3 seeds the smallest exact p is 0.05, so significance needs at least 4 seeds on
one side.

Training steps (for pruning): a finished trial uses ``last_step + 1`` steps (0 if it reported
nothing). ``total_steps`` sums that over a run's finished trials; ``steps_to_best`` is the sum
up to and including the trial that first reached the run's final best. Both are null for an
arm whose trials reported no intermediate values.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "ALPHA",
    "MIN_SEEDS_FOR_TEST",
    "ArmRun",
    "build_results",
    "summary_table",
    "write_report",
]

ALPHA = 0.05
MIN_SEEDS_FOR_TEST = 3
_FINISHED = frozenset({"complete", "pruned", "failed"})
_UNFINISHED = frozenset({"running", "waiting"})
# Points on the continuous x axes (seconds, steps) at which seed curves are sampled.
_GRID_POINTS = 300


@dataclass(frozen=True)
class ArmRun:
    """The trials of one member study of a comparison.

    Attributes:
        arm: The arm's name, e.g. ``"tpe"`` or ``"random"``.
        seed: The seed of this run; an arm's runs have distinct seeds.
        trials: The study's trials, in any order (``hposerve.client.FrozenTrial`` or anything
            with its attributes).
    """

    arm: str
    seed: int
    trials: Sequence[Any]


# ----------------------------------------------------------------------------- per run


def _state(trial: Any) -> str:
    # Accept Optuna's TrialState enum too, not only the client's lowercase names.
    state = trial.state
    return str(getattr(state, "name", state)).lower()


def _value(trial: Any) -> float | None:
    values = trial.values
    if not values:
        return None
    if len(values) != 1:
        raise ValueError("comparison reports support single-objective studies only")
    return float(values[0])


def _steps(trial: Any) -> int:
    intermediate = trial.intermediate_values or {}
    return max(intermediate) + 1 if intermediate else 0


@dataclass
class _Run:
    """One run, digested: finished trials and best-so-far curves."""

    arm: str
    seed: int
    trials_done: int
    done: bool  # reached the largest budget
    running: int
    pruned: int
    failed: int
    best: np.ndarray  # metric after k finished trials at index k-1; length max_budget, NaN past
    loss: np.ndarray  # same, lower is better
    times: np.ndarray  # seconds since the run's first start, per finished trial (completion)
    best_by_time: np.ndarray  # metric best-so-far in completion order
    has_steps: bool
    cum_steps: np.ndarray  # cumulative training steps after each finished trial (number order)
    steps_to_best: int | None
    sample_seconds: list[float]


class _Metric:
    """Direction-aware conversions from objective values to the reported metric and a loss."""

    def __init__(self, direction: str, optimum: float | None) -> None:
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', not {direction!r}")
        self.direction = direction
        self.optimum = optimum
        self.name = "regret" if optimum is not None else "best"

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b

    def metric(self, best: float) -> float:
        if self.optimum is None:
            return best
        gap = best - self.optimum if self.direction == "minimize" else self.optimum - best
        return max(gap, 0.0)

    def loss(self, metric: float) -> float:
        # Regret is a loss already; a best value is one when minimizing.
        if self.name == "regret" or self.direction == "minimize":
            return metric
        return -metric


def _digest(run: ArmRun, metric: _Metric, max_budget: int) -> _Run:
    trials = sorted(run.trials, key=lambda t: t.number)
    states = [_state(t) for t in trials]
    finished_all = [t for t, s in zip(trials, states, strict=True) if s in _FINISHED]
    finished = finished_all[:max_budget]

    best = np.full(max_budget, np.nan)
    cum_steps = np.zeros(len(finished), dtype=np.int64)
    current: float | None = None
    steps = 0
    steps_at_best: int | None = None
    for i, trial in enumerate(finished):
        steps += _steps(trial)
        cum_steps[i] = steps
        value = _value(trial) if _state(trial) == "complete" else None
        if value is not None and (current is None or metric.better(value, current)):
            current = value
            steps_at_best = steps
        if current is not None:
            best[i] = metric.metric(current)
    loss = np.array([np.nan if math.isnan(v) else metric.loss(v) for v in best])

    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    origin = min(starts) if starts else None
    timed = [t for t in finished if t.datetime_complete is not None and origin is not None]
    timed.sort(key=lambda t: t.datetime_complete)
    times = np.array([(t.datetime_complete - origin).total_seconds() for t in timed])
    best_by_time = np.full(len(timed), np.nan)
    current = None
    for i, trial in enumerate(timed):
        value = _value(trial) if _state(trial) == "complete" else None
        if value is not None and (current is None or metric.better(value, current)):
            current = value
        if current is not None:
            best_by_time[i] = metric.metric(current)

    has_steps = any(t.intermediate_values for t in trials)
    finished_states = [_state(t) for t in finished]
    sample_seconds = [
        float(s) for t in trials if (s := getattr(t, "sample_seconds", None)) is not None
    ]
    return _Run(
        arm=run.arm,
        seed=run.seed,
        trials_done=len(finished_all),
        done=len(finished_all) >= max_budget,
        running=sum(s in _UNFINISHED for s in states),
        pruned=finished_states.count("pruned"),
        failed=finished_states.count("failed"),
        best=best,
        loss=loss,
        times=times,
        best_by_time=best_by_time,
        has_steps=has_steps,
        cum_steps=cum_steps,
        steps_to_best=steps_at_best if has_steps else None,
        sample_seconds=sample_seconds,
    )


def _group(runs: Sequence[ArmRun], metric: _Metric, max_budget: int) -> dict[str, list[_Run]]:
    """Digests the runs, grouped by arm in order of first appearance, seeds ascending."""
    arms: dict[str, list[_Run]] = {}
    seen: set[tuple[str, int]] = set()
    for run in runs:
        key = (run.arm, run.seed)
        if key in seen:
            raise ValueError(f"two runs of arm {run.arm!r} with seed {run.seed}")
        seen.add(key)
        arms.setdefault(run.arm, []).append(_digest(run, metric, max_budget))
    for digested in arms.values():
        digested.sort(key=lambda r: r.seed)
    return arms


# ----------------------------------------------------------------------------- statistics


def _num(x: Any) -> float | None:
    """A JSON-safe float: None for missing or non-finite values."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _band(matrix: np.ndarray, min_count: int = 1) -> tuple[np.ndarray, ...]:
    """Column-wise median, 25th and 75th percentile over rows, ignoring NaN.

    Columns with fewer than ``min_count`` values are NaN (computed by hand so that empty
    columns raise no RuntimeWarning).
    """
    columns = matrix.shape[1] if matrix.ndim == 2 else 0
    med, lo, hi = (np.full(columns, np.nan) for _ in range(3))
    count = np.zeros(columns, dtype=np.int64)
    for j in range(columns):
        column = matrix[:, j]
        column = column[~np.isnan(column)]
        count[j] = column.size
        if column.size >= max(min_count, 1):
            med[j] = np.median(column)
            lo[j], hi[j] = np.percentile(column, [25, 75])
    return med, lo, hi, count


def _at_budgets(run: _Run, budgets: Sequence[int], attr: str) -> np.ndarray:
    values: np.ndarray = getattr(run, attr)
    return np.array([values[b - 1] if run.trials_done >= b else np.nan for b in budgets])


def _mean_ranks(
    losses: dict[str, np.ndarray], seeds: dict[str, list[int]]
) -> tuple[dict[str, float | None], str | None]:
    """Mean rank per arm (1 = best); ``losses[arm]`` is seeds x budgets."""
    arms = list(losses)
    if not arms:
        return {}, None
    budgets = next(iter(losses.values())).shape[1]
    totals = dict.fromkeys(arms, 0.0)
    cells = 0
    if all(seeds[a] == seeds[arms[0]] for a in arms):
        method = "per_seed"
        for j in range(budgets):
            for i in range(len(seeds[arms[0]])):
                column = np.array([losses[a][i, j] for a in arms])
                if np.isnan(column).any():
                    continue
                for arm, rank in zip(arms, stats.rankdata(column), strict=True):
                    totals[arm] += float(rank)
                cells += 1
    else:
        method = "median"
        for j in range(budgets):
            medians = np.array([_band(losses[a][:, j : j + 1])[0][0] for a in arms])
            if np.isnan(medians).any():
                continue
            for arm, rank in zip(arms, stats.rankdata(medians), strict=True):
                totals[arm] += float(rank)
            cells += 1
    if cells == 0:
        return dict.fromkeys(arms), None
    return {a: totals[a] / cells for a in arms}, method


def _p_value(arm: np.ndarray, baseline: np.ndarray) -> float | None:
    arm, baseline = arm[~np.isnan(arm)], baseline[~np.isnan(baseline)]
    if arm.size < MIN_SEEDS_FOR_TEST or baseline.size < MIN_SEEDS_FOR_TEST:
        return None
    return _num(stats.mannwhitneyu(arm, baseline, alternative="less").pvalue)


def build_results(
    *,
    task: str,
    direction: str,
    optimum: float | None,
    budgets: Sequence[int],
    runs: Sequence[ArmRun],
    baseline: str = "random",
) -> dict[str, Any]:
    """Computes the comparison's numbers: the content of results.json.

    Args:
        task: The task's name, e.g. ``"branin"``.
        direction: ``"minimize"`` or ``"maximize"``.
        optimum: The task's known optimal value, or None (then medians are of the best value
            instead of regret).
        budgets: Trial counts at which to compare the arms (sorted and deduplicated here).
        runs: One per (arm, seed), possibly unfinished.
        baseline: The arm the others are tested against.

    Returns:
        A JSON-serializable dict (strict JSON: no NaN) following the schema in this module's
        docstring.

    Raises:
        ValueError: No runs, no or non-positive budgets, an unknown direction, a repeated
            (arm, seed), or a multi-objective trial.
    """
    metric = _Metric(direction, optimum)
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 1:
        raise ValueError(f"budgets must be positive trial counts, got {budgets}")
    if not runs:
        raise ValueError("a comparison report needs at least one run")
    max_budget = budgets[-1]
    arms = _group(runs, metric, max_budget)

    losses = {a: np.array([_at_budgets(r, budgets, "loss") for r in rs]) for a, rs in arms.items()}
    seeds = {a: [r.seed for r in rs] for a, rs in arms.items()}
    ranks, rank_method = _mean_ranks(losses, seeds)
    key = f"median_{metric.name}"

    out_arms: dict[str, Any] = {}
    for arm, digested in arms.items():
        values = np.array([_at_budgets(r, budgets, "best") for r in digested])
        med, lo, hi, count = _band(values)
        if arm == baseline or baseline not in arms:
            p_values: list[float | None] | None = None
            significant: list[bool | None] | None = None
        else:
            p_values = [
                _p_value(losses[arm][:, j], losses[baseline][:, j]) for j in range(len(budgets))
            ]
            significant = [None if p is None else p < ALPHA for p in p_values]
        sample_seconds = [s for r in digested for s in r.sample_seconds]
        has_steps = any(r.has_steps for r in digested)
        out_arms[arm] = {
            "seeds": len(digested),
            "seed_ids": [r.seed for r in digested],
            "trials_done": [r.trials_done for r in digested],
            "running_trials": sum(r.running for r in digested),
            "pruned_trials": [r.pruned for r in digested],
            "failed_trials": [r.failed for r in digested],
            "n": [int(c) for c in count],
            key: [_num(m) for m in med],
            "iqr": [
                None if math.isnan(m) else [_num(a), _num(b)]
                for m, a, b in zip(med, lo, hi, strict=True)
            ],
            "mean_rank": _num(ranks.get(arm)),
            "p_vs_random": p_values,
            "significant": significant,
            "sample_ms_per_trial": (
                _num(1000.0 * float(np.mean(sample_seconds))) if sample_seconds else None
            ),
            "total_steps": (
                [int(r.cum_steps[-1]) if r.cum_steps.size else 0 for r in digested]
                if has_steps
                else None
            ),
            "steps_to_best": [r.steps_to_best for r in digested] if has_steps else None,
        }

    return {
        "task": task,
        "direction": direction,
        "optimum": _num(optimum),
        "budgets": budgets,
        "metric": metric.name,
        "baseline": baseline,
        "alpha": ALPHA,
        "min_seeds_for_test": MIN_SEEDS_FOR_TEST,
        "rank_method": rank_method,
        "partial": any(not r.done for rs in arms.values() for r in rs),
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "arms": out_arms,
    }


# ----------------------------------------------------------------------------- text


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _fmt_p(p: float | None) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _median_key(results: dict[str, Any]) -> str:
    return f"median_{results['metric']}"


def _cell(arm: dict[str, Any], key: str, j: int) -> str:
    median = arm[key][j]
    if median is None:
        return "-"
    lo, hi = arm["iqr"][j]
    text = f"{_fmt(median)} [{_fmt(lo)}, {_fmt(hi)}]"
    # Say when fewer seeds than the arm has contributed (a partial comparison).
    if arm["n"][j] < arm["seeds"]:
        text += f" n={arm['n'][j]}"
    return text


def _done(arm: dict[str, Any], budget: int) -> str:
    done = arm["trials_done"]
    if not done:
        return f"0/{budget}"
    lo, hi = min(done), max(done)
    return f"{lo}/{budget}" if lo == hi else f"{lo}-{hi}/{budget}"


def summary_table(results: dict[str, Any]) -> str:
    """A plain-text table of the results, for the CLI.

    One row per arm: seeds, finished trials per seed (of the largest budget), the median
    metric at each budget with its IQR in brackets (and ``n=`` when not every seed has got that
    far), the mean rank, the p-value against the baseline at the largest budget (``*`` when
    significant) and the sampler's milliseconds per trial.

    Args:
        results: What :func:`build_results` returned (or results.json, loaded).

    Returns:
        The table, lines joined by newlines, without a trailing newline.
    """
    budgets = results["budgets"]
    key = _median_key(results)
    metric = results["metric"]
    header = ["arm", "seeds", "trials done"]
    header += [f"{metric}@{b} [IQR]" for b in budgets]
    header += ["mean rank", f"p vs {results['baseline']}@{budgets[-1]}", "sampler ms/trial"]
    rows = [header]
    for name, arm in results["arms"].items():
        p = arm["p_vs_random"][-1] if arm["p_vs_random"] is not None else None
        sig = arm["significant"][-1] if arm["significant"] is not None else None
        rows.append(
            [name, str(arm["seeds"]), _done(arm, budgets[-1])]
            + [_cell(arm, key, j) for j in range(len(budgets))]
            + [
                _fmt(arm["mean_rank"], ".2f"),
                _fmt_p(p) + ("*" if sig else ""),
                _fmt(arm["sample_ms_per_trial"], ".2f"),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    # Arm names left-aligned, numbers right-aligned.
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    title = f"{results['task']} ({results['direction']}, metric: {metric})"
    if results["partial"]:
        title += " - partial: some runs have not reached the largest budget"
    notes = f"* p < {results['alpha']} (one-sided Mann-Whitney U against {results['baseline']})"
    return "\n".join([title, *lines, notes])


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _report_md(results: dict[str, Any], images: Sequence[str]) -> str:
    budgets = results["budgets"]
    key = _median_key(results)
    metric = results["metric"]
    baseline = results["baseline"]
    arms = results["arms"]
    optimum = results["optimum"]
    lines = [f"# Comparison report: {results['task']}", ""]
    if results["partial"]:
        lines += [
            "> **Partial comparison.** Some runs have not reached the largest budget yet; "
            "values at a budget use only the seeds that got there (`n=` says how many), and the "
            "numbers will change as the comparison finishes.",
            "",
        ]
    lines += [
        "## Setup",
        "",
        f"- Task: `{results['task']}`",
        f"- Direction: {results['direction']}",
        f"- Optimum: {'unknown' if optimum is None else f'{optimum:.6g}'}",
        f"- Metric: {'regret (distance of the best value so far from the optimum)' if metric == 'regret' else 'best value so far'}",  # noqa: E501
        "- Arms: " + ", ".join(f"`{a}` ({arms[a]['seeds']} seeds)" for a in arms),
        f"- Budgets (trials): {', '.join(str(b) for b in budgets)}",
        f"- Baseline: `{baseline}`",
        f"- Generated: {results['generated_at']}",
        "",
        "Pruned and failed trials use up budget but give no value. Running trials are not "
        "counted until they finish.",
        "",
        f"## Median {metric} [IQR] by budget",
        "",
    ]
    header = ["Arm", "Seeds", "Trials done"] + [f"{b} trials" for b in budgets] + ["Mean rank"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, arm in arms.items():
        cells = [f"`{_md_escape(name)}`", str(arm["seeds"]), _done(arm, budgets[-1])]
        cells += [_cell(arm, key, j) for j in range(len(budgets))]
        cells.append(_fmt(arm["mean_rank"], ".2f"))
        lines.append("| " + " | ".join(cells) + " |")
    rank_note = {
        "per_seed": "each seed's arms ranked against each other at each budget (1 = best, ties "
        "averaged), then averaged over seeds and budgets",
        "median": "arms' medians ranked at each budget (1 = best, ties averaged; the arms do "
        "not share the same seeds), then averaged over budgets",
        None: "no budget had a value for every arm yet",
    }[results["rank_method"]]
    lines += ["", f"Mean rank: {rank_note}.", ""]

    lines += [f"## Against `{baseline}`", ""]
    if baseline not in arms:
        lines += [f"There is no `{baseline}` arm, so no arm was tested against it.", ""]
    else:
        lines += [
            f"One-sided Mann-Whitney U test per budget: is the arm's {metric} lower (better) "
            f"than `{baseline}`'s? Needs {results['min_seeds_for_test']} seeds with a value on "
            "each side. Each budget is tested on its own (no correction for testing several).",
            "",
            "| Arm | Budget | Seeds (arm / baseline) | p | Significant at 0.05? |",
            "|---|---|---|---|---|",
        ]
        base = arms[baseline]
        verdicts = []
        for name, arm in arms.items():
            if name == baseline:
                continue
            for j, budget in enumerate(budgets):
                p, sig = arm["p_vs_random"][j], arm["significant"][j]
                answer = "-" if sig is None else ("yes" if sig else "no")
                lines.append(
                    f"| `{_md_escape(name)}` | {budget} | {arm['n'][j]} / {base['n'][j]} "
                    f"| {_fmt_p(p)} | {answer} |"
                )
            p, sig = arm["p_vs_random"][-1], arm["significant"][-1]
            at = f"at {budgets[-1]} trials"
            if p is None:
                verdicts.append(
                    f"- `{name}`: cannot be tested {at} yet: too few seeds have got there "
                    f"({arm['n'][-1]} vs {base['n'][-1]})."
                )
            elif sig:
                verdicts.append(f"- `{name}` beats `{baseline}` significantly {at} (p = {p:.3g}).")
            else:
                verdicts.append(
                    f"- `{name}` does not beat `{baseline}` significantly {at} (p = {p:.3g})."
                )
        lines += ["", *verdicts, ""]

    lines += ["## Sampler time", "", "| Arm | Sampler ms per trial |", "|---|---|"]
    for name, arm in arms.items():
        lines.append(f"| `{_md_escape(name)}` | {_fmt(arm['sample_ms_per_trial'], '.2f')} |")
    lines.append("")

    stepped = {a: arm for a, arm in arms.items() if arm["total_steps"] is not None}
    if stepped:
        lines += [
            "## Training steps",
            "",
            "A trial uses `last_step + 1` training steps; arms whose trials reported no "
            "intermediate values are left out.",
            "",
            "| Arm | Pruned trials (median) | Total steps (median) | Steps to best (median) |",
            "|---|---|---|---|",
        ]
        for name, arm in stepped.items():
            to_best = [s for s in arm["steps_to_best"] if s is not None]
            lines.append(
                f"| `{_md_escape(name)}` | {_fmt(_median(arm['pruned_trials']), '.3g')} "
                f"| {_fmt(_median(arm['total_steps']), '.6g')} "
                f"| {_fmt(_median(to_best), '.6g')} |"
            )
        lines.append("")

    lines += ["## Curves", ""]
    captions = {
        "curves.png": f"Best-so-far {metric} against trials and against wall-clock time: median "
        "over seeds, IQR shaded (drawn where at least half an arm's seeds have a value).",
        "steps.png": f"Best-so-far {metric} against training steps used: what pruning saves.",
    }
    for image in images:
        lines += [f"![{image}]({image})", "", captions.get(image, ""), ""]
    return "\n".join(lines).rstrip() + "\n"


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


# ----------------------------------------------------------------------------- plots


def _step_matrix(
    xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], done: Sequence[bool], grid: np.ndarray
) -> np.ndarray:
    """Seeds' best-so-far step functions sampled on ``grid`` (NaN where unknown).

    Past a seed's last point the value holds if the run has finished; for an unfinished run
    the future is unknown, so it is NaN.
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


def _plot_band(
    ax: Any, x: np.ndarray, matrix: np.ndarray, seeds: int, label: str, color: Any
) -> list[np.ndarray]:
    # A median over fewer than half the seeds would be one lucky (or slow) seed's curve.
    med, lo, hi, _ = _band(matrix, min_count=math.ceil(seeds / 2))
    ax.plot(x, med, label=label, color=color, drawstyle="steps-post")
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, step="post", linewidth=0)
    return [med, lo, hi]


def _plot_curves(
    results: dict[str, Any], arms: dict[str, list[_Run]], path: Path, colors: dict[str, Any]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = results["metric"]
    max_budget = results["budgets"][-1]
    ylabel = f"best-so-far {metric}" if metric == "regret" else "best value so far"
    fig, (by_trial, by_time) = plt.subplots(1, 2, figsize=(13, 5))
    try:
        plotted: list[np.ndarray] = []
        trials_x = np.arange(1, max_budget + 1)
        t_max = max((r.times[-1] for rs in arms.values() for r in rs if r.times.size), default=0.0)
        scale, unit = _time_unit(t_max)
        for arm, runs in arms.items():
            label = f"{arm} ({len(runs)} seeds)"
            matrix = np.array([r.best for r in runs])  # NaN past each run's finished trials
            plotted += _plot_band(by_trial, trials_x, matrix, len(runs), label, colors[arm])
            grid = _arm_grid([r.times for r in runs])
            if grid.size:
                times = _step_matrix(
                    [r.times for r in runs],
                    [r.best_by_time for r in runs],
                    [r.done for r in runs],
                    grid,
                )
                plotted += _plot_band(by_time, grid / scale, times, len(runs), label, colors[arm])
        for budget in results["budgets"]:
            by_trial.axvline(budget, color="0.8", linestyle=":", linewidth=1, zorder=0)
        by_trial.set_xlabel("trials finished")
        by_time.set_xlabel(f"wall-clock time since the run's first trial started ({unit})")
        for ax in (by_trial, by_time):
            ax.set_ylabel(ylabel)
            _scale_y(ax, metric, plotted)
            ax.grid(True, which="major", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
        by_trial.set_title("by trial")
        by_time.set_title("by wall-clock time")
        suffix = " (partial)" if results["partial"] else ""
        fig.suptitle(
            f"{results['task']}: best-so-far {metric} (median over seeds, IQR shaded){suffix}"
        )
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _plot_steps(
    results: dict[str, Any], arms: dict[str, list[_Run]], path: Path, colors: dict[str, Any]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = results["metric"]
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        stepped = {a: rs for a, rs in arms.items() if any(r.has_steps for r in rs)}
        plotted: list[np.ndarray] = []
        for arm, runs in stepped.items():
            # The best-so-far after each finished trial, at the steps used up to that trial.
            xs = [r.cum_steps.astype(float) for r in runs]
            ys = [r.best[: r.cum_steps.size] for r in runs]
            grid = _arm_grid(xs)
            if not grid.size:
                continue
            matrix = _step_matrix(xs, ys, [r.done for r in runs], grid)
            label = f"{arm} ({len(runs)} seeds)"
            plotted += _plot_band(ax, grid, matrix, len(runs), label, colors[arm])
        ax.set_xlabel("training steps used (sum over trials of last reported step + 1)")
        ax.set_ylabel(f"best-so-far {metric}" if metric == "regret" else "best value so far")
        _scale_y(ax, metric, plotted)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        suffix = " (partial)" if results["partial"] else ""
        ax.set_title(f"{results['task']}: best-so-far {metric} by training steps{suffix}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def write_report(results: dict[str, Any], runs: Sequence[ArmRun], out_dir: Path) -> list[Path]:
    """Writes report.md, results.json, curves.png and, if trials reported steps, steps.png.

    Args:
        results: What :func:`build_results` returned for these runs.
        runs: The runs the results were built from (the plots need every trial).
        out_dir: The directory to write into; created if missing. Files are overwritten.

    Returns:
        The paths written: report.md, results.json, curves.png, then steps.png if written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric = _Metric(results["direction"], results["optimum"])
    arms = _group(runs, metric, results["budgets"][-1])
    palette = [f"C{i}" for i in range(10)]
    colors = {arm: palette[i % len(palette)] for i, arm in enumerate(results["arms"])}
    for i, arm in enumerate(a for a in arms if a not in colors):
        colors[arm] = palette[(len(results["arms"]) + i) % len(palette)]

    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    curves_path = out_dir / "curves.png"
    _plot_curves(results, arms, curves_path, colors)
    written = [curves_path]
    if any(r.has_steps for rs in arms.values() for r in rs):
        steps_path = out_dir / "steps.png"
        _plot_steps(results, arms, steps_path, colors)
        written.append(steps_path)
    report_path = out_dir / "report.md"
    report_path.write_text(_report_md(results, [p.name for p in written]))
    return [report_path, results_path, *written]

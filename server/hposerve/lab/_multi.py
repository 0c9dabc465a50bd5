"""Comparisons on multi-objective tasks, scored by hypervolume.

The service's comparisons are single-objective, so a multi-objective comparison is run here on
ordinary studies: one per (sampler, seed), named ``{name}.{sampler}.s{seed}`` as a comparison's
members are, each created with ``load_if_exists`` (a rerun resumes it). Each member is given to
one trainer process, which asks (the whole space at once) and tells both values until the study
has ``trials`` trials; trials in any state count against the budget, as in a comparison.

The report is the comparison report of the *hypervolume regret*: after each finished trial, the
Pareto front's hypervolume (:func:`hposerve.lab._stats.hypervolume_2d`, up to the task's
reference point) minus the hypervolume of the complete trials so far. It never increases and its
optimum is 0, so medians, tests, normalized scores, targets and win rates all apply; results.json
says ``"objective": "hypervolume_regret"`` and adds the reference point, the front's hypervolume
and each arm's median hypervolume by budget, and hypervolume.png draws the hypervolume curves.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from hposerve.client import Client, ComparisonMember
from hposerve.lab._processes import run_trainers, server_target
from hposerve.lab._report_runs import state_name

__all__ = ["hypervolume_runs", "multi_trainer", "run_multi_comparison"]

_FINISHED = frozenset({"complete", "pruned", "failed"})
_HYPERVOLUME_MD = """
## Hypervolume

A multi-objective task: the regret above is the *hypervolume regret*, the Pareto front's
hypervolume ({best:.6g}) minus that of the run's complete trials so far, up to the reference
point {ref}. `median_hypervolume` in results.json has the hypervolumes themselves.

![hypervolume.png](hypervolume.png)
"""


def multi_trainer(target: str, members: Sequence[tuple[str, int]], task: Any, trials: int) -> None:
    """Body of one trainer process: fills each of its member studies up to ``trials``."""
    with Client(target) as client:
        for study_name, seed in members:
            study = client.get_study(study_name)
            for _ in range(trials - len(study.trials)):
                trial = study.ask(task.search_space)
                try:
                    values = task.evaluate(dict(trial.params), seed=seed)
                except Exception:  # a bad point: fail the trial, go on
                    study.tell(trial, state="failed")
                else:
                    study.tell(trial, list(values))


def hypervolume_runs(trials: Sequence[Any], task: Any) -> list[Any]:
    """The trials of one run with each complete trial's values replaced by the hypervolume
    regret after it (finished trials in number order; others unchanged)."""
    from hposerve.lab._stats import hypervolume_2d

    points: list[Sequence[float]] = []
    out = []
    for trial in sorted(trials, key=lambda t: t.number):
        state = state_name(trial)
        if state == "complete" and trial.values:
            points.append(trial.values)
            volume = hypervolume_2d(np.array(points), task.reference_point)
            trial = dataclasses.replace(trial, values=[task.optimal_hypervolume - volume])
        out.append(trial)
    return out


_Member = tuple[str, int, str]  # arm, seed, study name


def _members(
    client: Client, name: str, task: Any, samplers: Sequence[str], seeds: int
) -> list[_Member]:
    members: list[_Member] = []
    for sampler in samplers:
        if sampler in ("grid", "shuffled-grid"):
            raise ValueError(
                f"{task.name}: a grid arm needs a comparison; multi-objective tasks "
                "run without the grid sampler"
            )
        for seed in range(seeds):
            study_name = f"{name}.{sampler}.s{seed}"
            client.create_study(
                name=study_name,
                directions=list(task.directions),
                sampler={"type": sampler, "seed": seed},
                load_if_exists=True,
            )
            members.append((sampler, seed, study_name))
    return members


def _progress(
    client: Client,
    members: Sequence[_Member],
    callback: Callable[[list[ComparisonMember]], None] | None,
) -> Callable[[bool], None]:
    def poll(running: bool) -> None:
        del running
        rows = []
        for arm, seed, study_name in members:
            trials = client.get_study(study_name).trials
            done = sum(state_name(t) in _FINISHED for t in trials)
            complete = sum(state_name(t) == "complete" for t in trials)
            rows.append(
                ComparisonMember(arm, seed, study_name, "", len(trials), done, complete, None)
            )
        if callback is not None:
            callback(rows)

    return poll


def _add_hypervolume(results: dict[str, Any], task: Any) -> None:
    results["objective"] = "hypervolume_regret"
    results["reference_point"] = list(task.reference_point)
    results["optimal_hypervolume"] = task.optimal_hypervolume
    for arm in results["arms"].values():
        arm["median_hypervolume"] = [
            None if r is None else task.optimal_hypervolume - r for r in arm["median_regret"]
        ]


def _plot_hypervolume(results: dict[str, Any], runs: Sequence[Any], path: Path) -> None:
    from hposerve.lab._report_plots import pyplot
    from hposerve.lab._report_runs import Metric, group_runs

    plt = pyplot()
    arms = group_runs(runs, Metric("minimize", 0.0), results["budgets"][-1])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        x = np.arange(1, results["budgets"][-1] + 1)
        for i, (arm, rs) in enumerate(arms.items()):
            volume = results["optimal_hypervolume"] - np.array([r.best for r in rs])
            ax.plot(
                x, np.median(volume, axis=0), color=f"C{i % 10}", label=f"{arm} ({len(rs)} seeds)"
            )
            lo, hi = np.percentile(volume, [25, 75], axis=0)
            ax.fill_between(x, lo, hi, color=f"C{i % 10}", alpha=0.2, linewidth=0)
        ax.axhline(
            results["optimal_hypervolume"], color="0.4", linestyle="--", label="Pareto front"
        )
        ax.set_xlabel("trials finished")
        ax.set_ylabel(f"hypervolume up to {tuple(results['reference_point'])}")
        ax.set_title(f"{results['task']}: median hypervolume over seeds (IQR shaded)")
        ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _write_report(
    task: Any, trials: int, runs: Sequence[Any], out_dir: Path
) -> tuple[dict[str, Any], list[Path]]:
    """The comparison report of the hypervolume regret, with hypervolume.png."""
    from hposerve.lab._report import build_results, write_report
    from hposerve.lab._runner import budgets_for

    results = build_results(
        task=task.name, direction="minimize", optimum=0.0, budgets=budgets_for(trials), runs=runs
    )
    _add_hypervolume(results, task)
    paths = write_report(results, runs, out_dir)
    _plot_hypervolume(results, runs, out_dir / "hypervolume.png")
    paths.append(out_dir / "hypervolume.png")
    with paths[0].open("a") as md:  # report.md: say what the regret is of
        md.write(
            _HYPERVOLUME_MD.format(ref=tuple(task.reference_point), best=task.optimal_hypervolume)
        )
    return results, paths


def run_multi_comparison(
    *,
    task: Any,
    samplers: Sequence[str],
    seeds: int,
    trials: int,
    workers: int,
    out_dir: str | os.PathLike[str],
    target: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    out: TextIO | None = None,
    progress: Callable[[list[ComparisonMember]], None] | None = None,
) -> Any:
    """Runs (or resumes) a hypervolume comparison of ``samplers`` on a multi-objective task.

    Arguments are those of :func:`hposerve.lab.run_comparison` (without pruners: the tasks
    report no steps).

    Returns:
        A :class:`hposerve.lab.CompareResult`; its results follow results.json's schema, with
        the hypervolume fields above.

    Raises:
        ValueError: A grid sampler (a grid needs a comparison), or ``workers`` below 1.
    """
    from hposerve.lab._report import ArmRun
    from hposerve.lab._runner import CompareResult

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = out or sys.stdout
    started = time.monotonic()
    name = name or f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with server_target(target, data_dir) as (target, _), Client(target) as client:
        members = _members(client, name, task, samplers, seeds)
        print(
            f"hposerve compare: {name!r} on {target}\n  task {task.name}: {task.description}",
            file=out,
            flush=True,
        )
        shares = [[(m[2], m[1]) for m in members[i::workers]] for i in range(workers)]
        codes = run_trainers(
            multi_trainer,
            [(target, s, task, trials) for s in shares if s],
            name="hposerve-multi-trainer",
            poll=_progress(client, members, progress),
        )
        runs = [
            ArmRun(a, s, hypervolume_runs(client.get_study(n).trials, task)) for a, s, n in members
        ]
    results, paths = _write_report(task, trials, runs, Path(out_dir))
    elapsed = time.monotonic() - started
    print(f"finished in {elapsed:.1f}s", file=out, flush=True)
    return CompareResult(name, results, paths, elapsed, codes)

"""The comparison runner: a comparison of methods on a built-in task, run to its report.

:func:`run_comparison` starts an embedded server (unless given ``target``), creates a
comparison from a task's search space and direction (one study per sampler x pruner arm and
seed), and spawns trainer processes. A trainer knows nothing about arms: it asks the comparison
for a trial, evaluates the task with the trial's parameters and seed, and tells the result,
until the comparison says it is done. The service hands each ask to the member study that is
furthest behind, so every arm gets the same budget at the same pace. Meanwhile progress lines
are printed; when all trainers are done, the report (``report.md``, ``results.json``,
``curves.png``) is written and its table printed.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hposerve.client import (
    Client,
    Comparison,
    ComparisonMember,
    ComparisonTrial,
    FailedPrecondition,
    TrialPruned,
)
from hposerve.lab._processes import run_trainers, server_target

__all__ = [
    "SHUFFLED_GRID",
    "CompareResult",
    "arms_for",
    "budgets_for",
    "run_comparison",
    "write_comparison_report",
]

_logger = logging.getLogger(__name__)

_LINE_SECONDS = 5.0  # at most one progress line this often, unless the run is over
#: The sampler names ``arms_for`` accepts besides the sampler types: a grid of which a
#: random subset is evaluated, for spaces whose full grid is larger than the budget.
SHUFFLED_GRID = "shuffled-grid"


@dataclass(frozen=True)
class CompareResult:
    """What :func:`run_comparison` did.

    Attributes:
        name: The comparison's short name.
        results: The content of results.json.
        paths: The report files written.
        elapsed: Wall-clock seconds, server start to stop included.
        worker_exit_codes: Exit code of each trainer process (0 when it ran out of work).
    """

    name: str
    results: dict[str, Any]
    paths: list[Path]
    elapsed: float
    worker_exit_codes: list[int | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every trainer finished cleanly and every run reached the budget."""
        return not self.results["partial"] and all(c == 0 for c in self.worker_exit_codes)


def arms_for(samplers: Sequence[str], pruners: Sequence[str] = ("none",)) -> list[dict[str, Any]]:
    """One arm per sampler x pruner, named ``sampler`` or ``sampler-pruner``.

    Args:
        samplers: Sampler types (``tpe``, ``random``, ``grid``...), or ``shuffled-grid``.
        pruners: Pruner types; ``none`` for no pruning.

    Returns:
        Arms as ``Client.create_comparison`` takes them.
    """
    arms = []
    for pruner in pruners:
        for sampler in samplers:
            arm: dict[str, Any] = {"name": sampler, "sampler": sampler}
            if sampler == SHUFFLED_GRID:
                arm.update(sampler="grid", shuffle_grid=True)
            if pruner != "none":
                arm.update(name=f"{sampler}-{pruner}", pruner=pruner)
            arms.append(arm)
    return arms


def budgets_for(trials: int) -> list[int]:
    """The budgets a report compares at: the quarter points and the full budget."""
    return sorted({max(1, math.ceil(trials * q / 4)) for q in (1, 2, 3, 4)})


# -- trainers ----------------------------------------------------------------------------------


def trainer(target: str, comparison_name: str, task: Any, index: int) -> None:
    """Body of one trainer process: ask, evaluate, tell until the comparison is done."""
    logging.basicConfig(level=logging.WARNING, format=f"trainer {index}: %(message)s")
    with Client(target) as client:
        comparison = client.get_comparison(comparison_name)
        while (trial := comparison.ask()) is not None:
            # Arms without a pruner report too (their studies prune with NopPruner), so
            # that the report can show the training steps pruning saves against them.
            report = _pruning_report(trial) if task.max_steps > 0 else None
            try:
                value = task.evaluate(dict(trial.params), seed=trial.seed, report=report)
            except TrialPruned:
                _tell(comparison, trial, None, "pruned")
            except Exception as error:  # a diverged training, a bad configuration
                _logger.warning("%s failed: %r", trial.name, error)
                _tell(comparison, trial, None, "failed")
            else:
                _tell(comparison, trial, value, "complete")


def _pruning_report(trial: ComparisonTrial) -> Callable[[float, int], None]:
    """The ``report`` a task calls: reports to the server, raises TrialPruned when told to."""

    def report(value: float, step: int) -> None:
        if trial.report(value, step):
            raise TrialPruned()

    return report


def _tell(comparison: Comparison, trial: ComparisonTrial, value: float | None, state: str) -> None:
    try:
        comparison.tell(trial, value, state=state)
    except FailedPrecondition as error:  # e.g. its lease expired: it has failed already
        _logger.warning("could not tell %s %s: %s", trial.name, state, error)


# -- progress and the report -------------------------------------------------------------------


def _progress_line(members: Sequence[ComparisonMember], trials: int) -> str:
    arms: dict[str, list[ComparisonMember]] = {}
    for member in members:
        arms.setdefault(member.arm, []).append(member)
    done = sum(m.n_finished for m in members)
    parts = [f"{done}/{trials * len(members)} trials"]
    for arm, runs in arms.items():
        bests = [m.best_value for m in runs if m.best_value is not None]
        best = f" median best {statistics.median(bests):.4g}" if bests else ""
        parts.append(f"{arm} {sum(m.n_finished for m in runs)}/{trials * len(runs)}{best}")
    return " | ".join(parts)


class _ProgressLines:
    """Prints a progress line when the comparison has moved, at most every few seconds."""

    def __init__(
        self,
        comparison: Comparison,
        trials: int,
        started: float,
        out: TextIO,
        progress: Callable[[list[ComparisonMember]], None] | None = None,
    ) -> None:
        self._comparison = comparison
        self._trials = trials
        self._started = started
        self._out = out
        self._progress = progress
        self._last_line, self._last_text = 0.0, ""

    def __call__(self, running: bool) -> None:
        members = self._comparison.progress()
        if self._progress is not None:  # the caller shows progress its own way
            self._progress(members)
            return
        text = _progress_line(members, self._trials)
        now = time.monotonic()
        if text != self._last_text and (now - self._last_line >= _LINE_SECONDS or not running):
            print(f"[{now - self._started:6.1f}s] {text}", file=self._out, flush=True)
            self._last_line, self._last_text = now, text


def write_comparison_report(
    comparison: Comparison, task: Any, out_dir: str | os.PathLike[str]
) -> tuple[dict[str, Any], list[Path]]:
    """Builds the report of a comparison (finished or not) and writes it to ``out_dir``.

    Args:
        comparison: The comparison.
        task: The task it runs (for its optimum).
        out_dir: Where report.md, results.json and curves.png go.

    Returns:
        The results (results.json's content) and the paths written.
    """
    from hposerve.lab import _report

    runs = [_report.ArmRun(r.arm, r.seed, r.trials) for r in comparison.runs()]
    results = _report.build_results(
        task=task.name,
        direction=comparison.direction,
        optimum=task.optimum,
        budgets=budgets_for(comparison.trials_per_study),
        runs=runs,
    )
    return results, _report.write_report(results, runs, Path(out_dir))


def _header(comparison: Comparison, task: Any, target: str, embedded: bool, workers: int) -> str:
    grids = [f"{a.name}: {a.grid_size} points" for a in comparison.arms if a.grid_size]
    return (
        f"hposerve compare: {comparison.name!r} on {'embedded server ' if embedded else ''}"
        f"{target}\n  task {task.name}: {task.description}\n"
        f"  arms {', '.join(a.name for a in comparison.arms)}"
        + (f" ({'; '.join(grids)})" if grids else "")
        + f"; {comparison.seeds} seeds x {comparison.trials_per_study} trials each; "
        f"{workers} trainer processes"
    )


def _create(
    client: Client, name: str, task: Any, arms: list[dict[str, Any]], *, seeds: int, trials: int
) -> Comparison:
    """Creates the comparison, or loads it if one of that name and definition exists."""
    return client.create_comparison(
        name=name,
        direction=task.direction,
        search_space=task.search_space,
        arms=arms,
        seeds=seeds,
        trials_per_study=trials,
        load_if_exists=True,
    )


def run_comparison(
    *,
    task: Any,
    samplers: Sequence[str] = (),
    pruners: Sequence[str] = ("none",),
    arms: Sequence[dict[str, Any]] | None = None,
    seeds: int,
    trials: int,
    workers: int,
    out_dir: str | os.PathLike[str],
    target: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    out: TextIO | None = None,
    progress: Callable[[list[ComparisonMember]], None] | None = None,
) -> CompareResult:
    """Runs a comparison of ``samplers`` x ``pruners`` on ``task`` and writes its report.

    Args:
        task: A task from ``hposerve.lab`` (picklable: it goes to the trainers).
        samplers: Sampler types, or ``shuffled-grid``.
        pruners: Pruner types (``none`` for no pruning); they prune only tasks with steps.
        arms: Arms as ``Client.create_comparison`` takes them, instead of samplers x pruners.
        seeds: Member studies per arm.
        trials: Trial budget of each member study.
        workers: Trainer processes.
        out_dir: Where the report goes.
        target: ``host:port`` of a running server; None to start an embedded one.
        data_dir: Storage directory of the embedded server (None: the server's default).
        name: The comparison's name; None for a fresh one. An existing comparison of that
            name and definition is resumed.
        out: Where progress lines and the table go (None: standard output).
        progress: Called with the members' progress about every second instead of printing
            progress lines (the suite's progress bar).

    Returns:
        The results and the files written.

    Raises:
        ValueError: ``workers`` below 1, or no arms.
        hposerve.client.HposerveError: The server cannot be reached or refuses the comparison.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    arms = list(arms) if arms is not None else arms_for(samplers, pruners)
    if not arms:
        raise ValueError("give at least one sampler")
    out = out or sys.stdout
    started = time.monotonic()
    name = name or f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    with server_target(target, data_dir) as (target, embedded), Client(target) as client:
        comparison = _create(client, name, task, arms, seeds=seeds, trials=trials)
        print(_header(comparison, task, target, embedded, workers), file=out, flush=True)
        poll = _ProgressLines(comparison, trials, started, out, progress)
        codes = _train(comparison, target, task, workers, poll)
        results, paths = write_comparison_report(comparison, task, out_dir)
    elapsed = time.monotonic() - started
    _print_outcome(results, paths, elapsed, codes, out)
    return CompareResult(name, results, paths, elapsed, codes)


def _train(
    comparison: Comparison, target: str, task: Any, workers: int, poll: Callable[[bool], None]
) -> list[int | None]:
    """Runs the trainer processes to the end; their exit codes."""
    if comparison.finished:  # a finished comparison (resumed) needs no trainers
        return []
    return run_trainers(
        trainer,
        [(target, comparison.resource_name, task, i) for i in range(workers)],
        name="hposerve-compare-trainer",
        poll=poll,
    )


def _print_outcome(
    results: dict[str, Any],
    paths: Sequence[Path],
    elapsed: float,
    codes: Sequence[int | None],
    out: TextIO,
) -> None:
    from hposerve.lab._report import summary_table

    print(f"\nfinished in {elapsed:.1f}s\n\n{summary_table(results)}\n", file=out)
    print("report: " + ", ".join(str(p) for p in paths), file=out, flush=True)
    for i, code in enumerate(codes):
        if code != 0:
            print(f"trainer {i} exited with code {code} (see its output above)", file=out)

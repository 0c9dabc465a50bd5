"""A suite: one comparison per task, run through one server, and their aggregate report.

:func:`run_suite` runs the comparisons one after the other (each with its trainer processes),
writes each task's report in ``out_dir/<task>/`` and the aggregate (``aggregate.md``,
``aggregate.json``, ``scores.png``, ``cd.png``, ``ecdf.png``) in ``out_dir``. It is resumable:
comparisons are named ``<name>-<task>`` and created with ``load_if_exists``, so a rerun of the
same command loads each one, runs only the trials it still lacks, and skips finished ones. An
embedded server keeps its data in ``out_dir/data`` unless told otherwise, so that the rerun
finds it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from hposerve.client import ComparisonMember
from hposerve.lab._processes import server_target

__all__ = ["SuiteResult", "resolve_tasks", "run_suite"]

#: Task groups ``--tasks`` accepts besides task names.
_SYNTHETIC = (
    "branin",
    "hartmann6",
    "sphere",
    "ellipsoid",
    "rastrigin",
    "rosenbrock",
    "styblinski_tang",
)


def resolve_tasks(names: Sequence[str]) -> list[str]:
    """Task names with the groups expanded (``all-synthetic``, ``all-tabular``, ``all-multi``).

    Raises:
        KeyError: An unknown task name (the message lists the known ones).
    """
    from hposerve.lab._tasks import TASKS
    from hposerve.lab._tasks_multi import MULTI_TASKS
    from hposerve.lab._tasks_tabular import TABLES

    groups = {
        "all-synthetic": list(_SYNTHETIC),
        "all-tabular": list(TABLES),
        "all-multi": list(MULTI_TASKS),
    }
    out: list[str] = []
    for name in names:
        for task in groups.get(name, [name]):
            if task not in TASKS and task not in MULTI_TASKS:
                known = ", ".join([*groups, *TASKS, *MULTI_TASKS])
                raise KeyError(f"unknown task {task!r}; known tasks: {known}")
            if task not in out:
                out.append(task)
    return out


@dataclass(frozen=True)
class SuiteResult:
    """What :func:`run_suite` did.

    Attributes:
        summary: The aggregate (aggregate.json's content).
        results: Task -> its comparison's results (results.json's content).
        paths: The aggregate report's files.
        elapsed: Wall-clock seconds.
        ok: Every comparison finished with every trainer exiting cleanly.
    """

    summary: dict[str, Any]
    results: dict[str, dict[str, Any]]
    paths: list[Path]
    elapsed: float
    ok: bool


class _Bar:
    """Progress over the whole suite: a tqdm bar if tqdm is installed, else a line per task."""

    def __init__(self, total: int, out: TextIO) -> None:
        self._out = out
        self._done_before = 0  # trials of the tasks already over
        self._current = 0
        try:
            from tqdm import tqdm
        except ImportError:
            self._tqdm: Any = None
        else:
            self._tqdm = tqdm(total=total, unit="trial", file=sys.stderr, dynamic_ncols=True)

    def task(self, index: int, count: int, task: str) -> None:
        self._done_before += self._current
        self._current = 0
        if self._tqdm is not None:
            self._tqdm.set_description(f"[{index + 1}/{count}] {task}")
        else:
            print(f"[{index + 1}/{count}] {task}", file=self._out, flush=True)

    def members(self, members: Sequence[ComparisonMember]) -> None:
        self._current = sum(m.n_finished for m in members)
        if self._tqdm is not None:
            self._tqdm.n = self._done_before + self._current
            self._tqdm.refresh()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


@contextlib.contextmanager
def _bar(total: int, out: TextIO) -> Iterator[_Bar]:
    bar = _Bar(total, out)
    try:
        yield bar
    finally:
        bar.close()


def run_suite(
    *,
    tasks: Sequence[str],
    samplers: Sequence[str],
    seeds: int,
    trials: int,
    workers: int,
    out_dir: str | os.PathLike[str],
    target: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    name: str = "suite",
    out: TextIO | None = None,
) -> SuiteResult:
    """Runs (or resumes) one comparison per task and writes the aggregate report.

    Args:
        tasks: Task names or groups (``all-synthetic``, ``all-tabular``).
        samplers: Sampler types, one arm each.
        seeds: Member studies per arm.
        trials: Trial budget of each member study.
        workers: Trainer processes per comparison.
        out_dir: The aggregate goes here, each task's report in ``out_dir/<task>``.
        target: ``host:port`` of a running server; None to start an embedded one.
        data_dir: The embedded server's storage; None for ``out_dir/data``.
        name: Prefix of the comparisons' names (``<name>-<task>``).
        out: Where each task's outcome and the aggregate table go (None: standard output).

    Raises:
        KeyError: An unknown task.
        hposerve.client.HposerveError: The server refuses a comparison, e.g. one of that name
            exists with another definition (other samplers, seeds or trials).
    """
    from hposerve.lab._aggregate import aggregate_results
    from hposerve.lab._aggregate_report import aggregate_table, write_aggregate_report

    names = resolve_tasks(tasks)
    out = out or sys.stdout
    out_dir = Path(out_dir)
    started = time.monotonic()
    if target is None and data_dir is None:
        data_dir = out_dir / "data"
    results: dict[str, dict[str, Any]] = {}
    ok = True
    total = len(names) * len(samplers) * seeds * trials
    with server_target(target, data_dir) as (target, _), _bar(total, out) as bar:
        plan = _Plan(samplers, seeds, trials, workers, out_dir, target, name)
        for i, task_name in enumerate(names):
            bar.task(i, len(names), task_name)
            result = _run_task(plan, task_name, bar.members)
            print(f"{task_name}: {result.elapsed:.1f}s, report in {out_dir / task_name}",
                  file=out, flush=True)  # fmt: skip
            results[task_name] = result.results
            ok = ok and result.ok
    summary = aggregate_results(results)
    paths = write_aggregate_report(summary, out_dir)
    elapsed = time.monotonic() - started
    print(f"\nsuite finished in {elapsed:.1f}s\n\n{aggregate_table(summary)}\n", file=out)
    print("report: " + ", ".join(str(p) for p in paths), file=out, flush=True)
    return SuiteResult(summary, results, paths, elapsed, ok)


@dataclass(frozen=True)
class _Plan:
    """What every comparison of a suite shares."""

    samplers: Sequence[str]
    seeds: int
    trials: int
    workers: int
    out_dir: Path
    target: str
    name: str


def _run_task(
    plan: _Plan, task_name: str, progress: Callable[[list[ComparisonMember]], None]
) -> Any:
    """Runs one task's comparison (by hypervolume if multi-objective); its log to run.log."""
    from hposerve.lab._multi import run_multi_comparison
    from hposerve.lab._runner import run_comparison
    from hposerve.lab._tasks import get_task
    from hposerve.lab._tasks_multi import MULTI_TASKS, get_multi_task

    multi = task_name in MULTI_TASKS
    run = run_multi_comparison if multi else run_comparison
    log = io.StringIO()
    out_dir = plan.out_dir / task_name
    try:
        return run(
            task=get_multi_task(task_name) if multi else get_task(task_name),
            samplers=plan.samplers,
            seeds=plan.seeds,
            trials=plan.trials,
            workers=plan.workers,
            out_dir=out_dir,
            target=plan.target,
            name=f"{plan.name}-{task_name}",
            out=log,
            progress=progress,
        )
    finally:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "run.log").write_text(log.getvalue())

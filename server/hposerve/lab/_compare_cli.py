"""``hposerve compare``: run method comparisons on built-in tasks, report on them, watch them.

``compare run`` starts an embedded server (unless given ``--target``), creates a comparison
from a task's search space and direction (one study per sampler x pruner arm and seed), and
spawns trainer processes. A trainer knows nothing about arms: it asks the comparison for a
trial, evaluates the task with the trial's parameters and seed, and tells the result, until the
comparison says it is done. The service hands each ask to the member study that is furthest
behind, so every arm gets the same budget at the same pace. When all trainers are done, the
report (``report.md``, ``results.json``, ``curves.png``) is written and its table printed.

``compare report`` writes the same report for a comparison on a running server, finished or
not; ``compare status`` prints each member study's progress.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import multiprocessing.connection
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
    HposerveError,
    TrialPruned,
)
from hposerve.lab._processes import server_target, trainer_processes

__all__ = [
    "CompareResult",
    "add_arguments",
    "arms_for",
    "budgets_for",
    "main",
    "run_comparison",
    "write_comparison_report",
]

_logger = logging.getLogger(__name__)

_POLL_SECONDS = 1.0
_LINE_SECONDS = 5.0  # at most one progress line this often, unless the run is over
#: The sampler names ``--samplers`` accepts besides the sampler types: a grid of which a
#: random subset is evaluated, for spaces whose full grid is larger than the budget.
SHUFFLED_GRID = "shuffled-grid"


@dataclass(frozen=True)
class CompareResult:
    """What ``compare run`` did.

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


def _trainer(target: str, comparison_name: str, task: Any, index: int) -> None:
    """Body of one trainer process: ask, evaluate, tell until the comparison is done."""
    # Before torch (or numpy's BLAS) is imported by a task: on a small machine, several
    # trainers with a thread pool each only fight over the cores.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    logging.basicConfig(level=logging.WARNING, format=f"trainer {index}: %(message)s")
    try:
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
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C reaches every process; leave without a traceback


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


def write_comparison_report(
    comparison: Comparison, task: Any, out_dir: Path
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
    arms = [a.name for a in comparison.arms]
    results = _report.build_results(
        task=task.name,
        direction=comparison.direction,
        optimum=task.optimum,
        budgets=budgets_for(comparison.trials_per_study),
        runs=runs,
        baseline="random" if "random" in arms else arms[0],
    )
    return results, _report.write_report(results, runs, Path(out_dir))


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
) -> CompareResult:
    """Runs a comparison of ``samplers`` x ``pruners`` on ``task`` and writes its report.

    Args:
        task: A task from ``hposerve.lab._tasks`` (picklable: it goes to the trainers).
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
        out: Where progress and the table go (None: standard output).

    Returns:
        The results and the files written.

    Raises:
        ValueError: ``workers`` below 1, or no arms.
        hposerve.client.HposerveError: The server cannot be reached or refuses the comparison.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = out or sys.stdout
    arms = list(arms) if arms is not None else arms_for(samplers, pruners)
    if not arms:
        raise ValueError("give at least one sampler")
    started = time.monotonic()
    name = name or f"{task.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    with server_target(target, data_dir) as (target, embedded), Client(target) as client:
        comparison = client.create_comparison(
            name=name,
            direction=task.direction,
            search_space=task.search_space,
            arms=arms,
            seeds=seeds,
            trials_per_study=trials,
            load_if_exists=True,
        )
        grids = [f"{a.name}: {a.grid_size} points" for a in comparison.arms if a.grid_size]
        print(
            f"hposerve compare: {name!r} on {'embedded server ' if embedded else ''}{target}\n"
            f"  task {task.name}: {task.description}\n"
            f"  arms {', '.join(a.name for a in comparison.arms)}"
            + (f" ({'; '.join(grids)})" if grids else "")
            + f"; {seeds} seeds x {trials} trials each; {workers} trainer processes",
            file=out,
            flush=True,
        )
        args = [(target, comparison.resource_name, task, i) for i in range(workers)]
        with trainer_processes(_trainer, args, "hposerve-compare-trainer") as processes:
            _watch(comparison, processes, trials, started, out)
        results, paths = write_comparison_report(comparison, task, Path(out_dir))
    from hposerve.lab._report import summary_table

    elapsed = time.monotonic() - started
    print(f"\nfinished in {elapsed:.1f}s\n\n{summary_table(results)}\n", file=out)
    print("report: " + ", ".join(str(p) for p in paths), file=out, flush=True)
    codes = [p.exitcode for p in processes]
    for i, code in enumerate(codes):
        if code != 0:
            print(f"trainer {i} exited with code {code} (see its output above)", file=out)
    return CompareResult(name, results, paths, elapsed, codes)


def _watch(
    comparison: Comparison,
    processes: Sequence[multiprocessing.process.BaseProcess],
    trials: int,
    started: float,
    out: TextIO,
) -> None:
    """Prints progress lines until every trainer has exited."""
    running = list(processes)
    last_line, last_text = 0.0, ""
    while running:
        multiprocessing.connection.wait([p.sentinel for p in running], _POLL_SECONDS)
        running = [p for p in running if p.is_alive()]
        text = _progress_line(comparison.progress(), trials)
        now = time.monotonic()
        if text != last_text and (now - last_line >= _LINE_SECONDS or not running):
            print(f"[{now - started:6.1f}s] {text}", file=out, flush=True)
            last_line, last_text = now, text


# -- the command line --------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``hposerve compare`` subcommands to ``parser``."""
    from hposerve.lab._tasks import task_names

    commands = parser.add_subparsers(dest="compare_command", required=True)
    tasks = ", ".join(task_names())

    run = commands.add_parser(
        "run",
        help="compare samplers (and pruners) on a built-in task, then write the report",
        description="Creates a comparison (one study per arm and seed), runs trainer processes "
        "until every study has its budget, then writes report.md, results.json and curves.png.",
    )
    run.add_argument("--task", required=True, help=f"a built-in task: {tasks}")
    run.add_argument(
        "--samplers",
        type=_names,
        default=["tpe", "random", "grid"],
        help="comma-separated sampler types (tpe, random, grid, cmaes, gp, qmc, ...; "
        f"{SHUFFLED_GRID} for a random subset of a grid larger than the budget); "
        "default: tpe,random,grid",
    )
    run.add_argument(
        "--pruners",
        type=_names,
        default=["none"],
        help="comma-separated pruner types; every sampler runs with each (default: none)",
    )
    run.add_argument("--seeds", type=_positive_int, default=5, help="studies per arm (default 5)")
    run.add_argument(
        "--trials", type=_positive_int, default=100, help="trials per study (default 100)"
    )
    run.add_argument(
        "--workers", type=_positive_int, default=2, help="trainer processes (default 2)"
    )
    run.add_argument("--out", required=True, type=Path, help="directory for the report")
    run.add_argument(
        "--target", metavar="HOST:PORT", help="a running server (default: start an embedded one)"
    )
    run.add_argument("--data-dir", help="storage directory of the embedded server")
    run.add_argument("--name", help="comparison name (default: TASK-TIME-RANDOM)")

    report = commands.add_parser(
        "report", help="write the report of a comparison, finished or still running"
    )
    report.add_argument("--target", metavar="HOST:PORT", required=True)
    report.add_argument("--name", required=True, help="the comparison's name")
    report.add_argument("--task", required=True, help="the task it runs (for its optimum)")
    report.add_argument("--out", required=True, type=Path, help="directory for the report")

    status = commands.add_parser("status", help="show the progress of each member study")
    status.add_argument("--target", metavar="HOST:PORT", required=True)
    status.add_argument("--name", required=True, help="the comparison's name")


def _status_table(comparison: Comparison) -> str:
    members = comparison.progress()
    rows = [["arm", "seed", "study", "asked", "finished", "complete", "best"]]
    for m in members:
        best = "-" if m.best_value is None else f"{m.best_value:.6g}"
        rows.append(
            [m.arm, str(m.seed), m.study_name, f"{m.n_asked}/{comparison.trials_per_study}"]
            + [str(m.n_finished), str(m.n_complete), best]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    state = "finished" if comparison.finished else "done" if comparison.done else "running"
    return f"{comparison.resource_name}: {state}\n" + "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Runs a parsed ``hposerve compare`` command; returns the exit code."""
    from hposerve.lab._tasks import get_task

    try:
        if args.compare_command == "status":
            with Client(args.target) as client:
                print(_status_table(client.get_comparison(args.name)))
            return 0
        task = get_task(args.task)
        if args.compare_command == "report":
            with Client(args.target) as client:
                from hposerve.lab._report import summary_table

                results, paths = write_comparison_report(
                    client.get_comparison(args.name), task, args.out
                )
            print(summary_table(results))
            print("report: " + ", ".join(str(p) for p in paths))
            return 0
        # The grid sampler warns on every re-evaluated point of a grid smaller than the budget.
        logging.getLogger("optuna.samplers._grid").setLevel(logging.ERROR)
        result = run_comparison(
            task=task,
            samplers=args.samplers,
            pruners=args.pruners,
            seeds=args.seeds,
            trials=args.trials,
            workers=args.workers,
            out_dir=args.out,
            target=args.target,
            data_dir=args.data_dir,
            name=args.name,
        )
        return 0 if result.ok else 1
    except KeyError as error:  # an unknown task: the message lists the known ones
        print(f"hposerve compare: {error.args[0]}", file=sys.stderr)
        return 2
    except HposerveError as error:  # a refused definition, an unreachable server...
        print(f"hposerve compare: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130

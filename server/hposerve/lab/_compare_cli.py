"""``hposerve compare``: run method comparisons on built-in tasks, report on them, watch them.

``compare run`` runs a comparison to its report (:func:`hposerve.lab.run_comparison` does the
work); ``compare report`` writes the same report for a comparison on a running server,
finished or not; ``compare status`` prints each member study's progress. This module only
parses the command line and prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hposerve.client import Client, Comparison, HposerveError
from hposerve.lab._cli_types import names, positive_int
from hposerve.lab._runner import SHUFFLED_GRID, run_comparison, write_comparison_report

__all__ = ["add_arguments", "main"]


# -- the command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``hposerve compare`` subcommands to ``parser``."""
    commands = parser.add_subparsers(dest="compare_command", required=True)
    _add_run(commands)
    _add_suite(commands)
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


def _add_budget(parser: argparse.ArgumentParser, *, trials: int) -> None:
    """The options ``run`` and ``suite`` share: seeds, trials, workers, out and target."""
    parser.add_argument("--seeds", type=positive_int, default=5, help="studies per arm (default 5)")
    parser.add_argument(
        "--trials", type=positive_int, default=trials, help=f"trials per study (default {trials})"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=2, help="trainer processes (default 2)"
    )
    parser.add_argument("--out", required=True, type=Path, help="directory for the report(s)")
    parser.add_argument(
        "--target", metavar="HOST:PORT", help="a running server (default: start an embedded one)"
    )


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hposerve.lab._tasks import task_names

    run = commands.add_parser(
        "run",
        help="compare samplers (and pruners) on a built-in task, then write the report",
        description="Creates a comparison (one study per arm and seed), runs trainer processes "
        "until every study has its budget, then writes report.md, results.json and curves.png.",
    )
    run.add_argument("--task", required=True, help=f"a built-in task: {', '.join(task_names())}")
    run.add_argument(
        "--samplers",
        type=names,
        default=["tpe", "random", "grid"],
        help="comma-separated sampler types (tpe, random, grid, cmaes, gp, qmc, ...; "
        f"{SHUFFLED_GRID} for a random subset of a grid larger than the budget); "
        "default: tpe,random,grid",
    )
    run.add_argument(
        "--pruners",
        type=names,
        default=["none"],
        help="comma-separated pruner types; every sampler runs with each (default: none)",
    )
    _add_budget(run, trials=100)
    run.add_argument("--data-dir", help="storage directory of the embedded server")
    run.add_argument("--name", help="comparison name (default: TASK-TIME-RANDOM)")


def _add_suite(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    suite = commands.add_parser(
        "suite",
        help="compare samplers on several tasks, then write the aggregate report",
        description="Runs one comparison per task (resumable: a rerun continues what is "
        "unfinished), writes each task's report in OUT/TASK/ and the aggregate in OUT: "
        "normalized scores, ranks with a Friedman test and a critical-difference diagram, win "
        "rates and evaluations-to-target ECDFs.",
    )
    suite.add_argument(
        "--tasks",
        type=names,
        required=True,
        help="comma-separated task names, or all-synthetic, all-tabular, all-multi (zdt1, "
        "zdt2: scored by hypervolume)",
    )
    suite.add_argument(
        "--samplers",
        type=names,
        default=["tpe", "random", "grid"],
        help="comma-separated sampler types (default: tpe,random,grid)",
    )
    _add_budget(suite, trials=50)
    suite.add_argument(
        "--data-dir", help="storage directory of the embedded server (default: OUT/data)"
    )
    suite.add_argument(
        "--name", default="suite", help="prefix of the comparisons' names (default: suite)"
    )


def _suite(args: argparse.Namespace) -> int:
    from hposerve.lab._suite import run_suite

    logging.getLogger("optuna.samplers._grid").setLevel(logging.ERROR)
    result = run_suite(
        tasks=args.tasks,
        samplers=args.samplers,
        seeds=args.seeds,
        trials=args.trials,
        workers=args.workers,
        out_dir=args.out,
        target=args.target,
        data_dir=args.data_dir,
        name=args.name,
    )
    return 0 if result.ok else 1


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


def _status(args: argparse.Namespace) -> int:
    with Client(args.target) as client:
        print(_status_table(client.get_comparison(args.name)))
    return 0


def _report(args: argparse.Namespace) -> int:
    from hposerve.lab._report import summary_table
    from hposerve.lab._tasks import get_task

    task = get_task(args.task)
    with Client(args.target) as client:
        results, paths = write_comparison_report(client.get_comparison(args.name), task, args.out)
    print(summary_table(results))
    print("report: " + ", ".join(str(p) for p in paths))
    return 0


def _run(args: argparse.Namespace) -> int:
    from hposerve.lab._tasks import get_task

    task = get_task(args.task)
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


def main(args: argparse.Namespace) -> int:
    """Runs a parsed ``hposerve compare`` command; returns the exit code."""
    commands = {"run": _run, "suite": _suite, "report": _report, "status": _status}
    command = commands[args.compare_command]
    try:
        return command(args)
    except KeyError as error:  # an unknown task: the message lists the known ones
        print(f"hposerve compare: {error.args[0]}", file=sys.stderr)
        return 2
    except HposerveError as error:  # a refused definition, an unreachable server...
        print(f"hposerve compare: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130

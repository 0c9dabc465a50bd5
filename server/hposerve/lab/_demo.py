"""``hposerve demo``: several trainer processes tune a PyTorch MLP through one server.

First the tuning run of :mod:`hposerve.lab._demo_tuning`: a TPE study with median pruning on
the digits MLP, a line per finished trial, then the best trial. Then, unless
``--no-compare``, a small method comparison on the same task (fewer epochs): TPE against random
and grid search, same budget and seeds, through the same trainers; its table is printed and its
report (with the curves' plot) written to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from hposerve.client import HposerveError
from hposerve.lab._cli_types import positive_int
from hposerve.lab._demo_tuning import DEFAULT_EPOCHS, DEFAULT_TRIALS, DEFAULT_WORKERS, run_demo
from hposerve.lab._runner import CompareResult, run_comparison

__all__ = [
    "COMPARE_ARMS",
    "COMPARE_EPOCHS",
    "COMPARE_SEEDS",
    "COMPARE_TRIALS",
    "DEFAULT_REPORT_DIR",
    "add_arguments",
    "main",
    "run_demo_comparison",
]

# The closing comparison: 3 arms x 2 seeds x 12 trials of 5 epochs, well under a minute on 2
# cores. With 12 trials the grid arm gets a 12-point grid derived from the task's space. TPE
# models after 4 random trials: with Optuna's default of 10, 12 trials would show random search
# twice.
COMPARE_ARMS = (
    {"name": "tpe", "sampler": {"type": "tpe", "n_startup_trials": 4}},
    {"name": "random", "sampler": "random"},
    {"name": "grid", "sampler": "grid"},
)
COMPARE_SEEDS = 2
COMPARE_TRIALS = 12
COMPARE_EPOCHS = 5
DEFAULT_REPORT_DIR = "hposerve-demo-report"


def run_demo_comparison(
    *,
    workers: int = DEFAULT_WORKERS,
    out_dir: str | os.PathLike[str] = DEFAULT_REPORT_DIR,
    data_dir: str | os.PathLike[str] | None = None,
    target: str | None = None,
    out: TextIO | None = None,
) -> CompareResult:
    """Compares TPE, random and grid search on the digits MLP and writes the report.

    Args:
        workers: Trainer processes.
        out_dir: Where report.md, results.json and curves.png go.
        data_dir: Storage directory of the embedded server; ignored with ``target``.
        target: ``host:port`` of a running server instead of an embedded one.
        out: Where progress and the table go (None: standard output).

    Returns:
        What :func:`hposerve.lab.run_comparison` returns.
    """
    from hposerve.lab._tasks import mlp_digits_task

    print(
        f"\nhposerve demo: TPE (4 startup trials) vs random vs grid search on the same task "
        f"({COMPARE_EPOCHS} epochs/trial), {COMPARE_SEEDS} seeds x {COMPARE_TRIALS} trials each",
        file=out or sys.stdout,
        flush=True,
    )
    return run_comparison(
        task=mlp_digits_task(epochs=COMPARE_EPOCHS),
        arms=[dict(arm) for arm in COMPARE_ARMS],
        seeds=COMPARE_SEEDS,
        trials=COMPARE_TRIALS,
        workers=workers,
        out_dir=out_dir,
        target=target,
        data_dir=data_dir,
        out=out,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``hposerve demo`` options to ``parser``."""
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=DEFAULT_WORKERS,
        help=f"trainer processes (default: {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=DEFAULT_TRIALS,
        help=f"trials in total, split over the trainers (default: {DEFAULT_TRIALS})",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        help=f"training epochs per trial (default: {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="sampler and training seed (default: 0)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="storage directory of the embedded server (default: the server's default)",
    )
    parser.add_argument(
        "--target",
        default=None,
        metavar="HOST:PORT",
        help="use this running server instead of starting an embedded one",
    )
    parser.add_argument(
        "--no-compare",
        action="store_true",
        help="skip the closing comparison of TPE, random and grid search",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_REPORT_DIR,
        help=f"directory for the comparison's report (default: ./{DEFAULT_REPORT_DIR})",
    )


def main(args: argparse.Namespace) -> int:
    """Runs the demo with parsed ``hposerve demo`` options; returns the exit code."""
    try:
        result = run_demo(
            workers=args.workers,
            trials=args.trials,
            epochs=args.epochs,
            seed=args.seed,
            data_dir=args.data_dir,
            target=args.target,
        )
        ok = result.ok
        if not args.no_compare:
            compared = run_demo_comparison(
                workers=args.workers, out_dir=args.out, data_dir=args.data_dir, target=args.target
            )
            ok = ok and compared.ok
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except HposerveError as error:  # e.g. --target unreachable: a message, not a traceback
        print(f"hposerve demo: {error}", file=sys.stderr)
        return 1
    return 0 if ok else 1

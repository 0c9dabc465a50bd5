"""The bench's concurrent case alone, alternating between two checkouts: an A/B of one load.

    python -m hposerve.lab._bench_ab OLD NEW [--storage embedded|postgres] [--replicas 1]
        [--pairs 5] [--seconds 10] [--processes 4] [--threads 8] [--tpe-studies 2]

OLD and NEW are checkouts of this repository (``git worktree add /tmp/old <commit>`` makes one
beside the working tree). Each run imports hposerve from its checkout's ``server/`` and
``client/`` (``PYTHONPATH``), starts fresh servers (the embedded default, or replicas on a fresh
schema of hposerve's PostgreSQL journal at ``HPOSERVE_BENCH_POSTGRES_URL``, dropped after), runs
``_bench_cases.case_concurrent`` against them and prints its figures. Runs alternate old, new,
old, ... so that both sides meet the same drifts of a shared machine, and the medians and their
new/old ratios come last. On these machines single runs of the same code have ranged 141-292
trials/s within an hour: trust medians of several pairs, and a difference every pair agrees on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

__all__ = ["main"]

# What one run executes, in the checkout under test: only what every checkout since the
# PostgreSQL journal has (the bench's case, its sizes, its server and replica helpers).
_RUN = """
import contextlib, dataclasses, json, os, sys, tempfile
from hposerve.lab import _bench, _bench_pg
from hposerve.lab._bench_cases import case_concurrent
from hposerve.lab._bench_processes import hposerve_server

args = json.loads(sys.argv[1])
sizes = dataclasses.replace(
    _bench.FULL, concurrent_seconds=args["seconds"], concurrent_processes=args["processes"],
    concurrent_threads=args["threads"], tpe_background_studies=args["tpe_studies"],
)
with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
    if args["storage"] == "embedded":
        target = stack.enter_context(hposerve_server(os.path.join(tmp, "server")))
    else:
        url = stack.enter_context(_bench_pg.fresh_journal(_bench_pg.DEFAULT_POSTGRES_URL))
        target = stack.enter_context(_bench_pg.replicas(url, tmp, args["replicas"]))
    balancing = "round_robin" if args["replicas"] > 1 else None
    figures = case_concurrent(target, sizes, load_balancing=balancing)
print(case_concurrent.__code__.co_filename)
print(json.dumps(figures))
"""

_SHOWN = ("concurrent_trials_per_s", "tell_p50_ms", "tell_p99_ms")


def _checkout(path: str) -> str:
    path = os.path.abspath(path)
    for part in ("server", "client"):
        if not os.path.isdir(os.path.join(path, part, "hposerve")):
            raise SystemExit(f"{path} is not a checkout of hposerve (no {part}/hposerve)")
    return path


def _run(checkout: str, args: dict[str, Any]) -> dict[str, float]:
    """One run of the case with hposerve imported from ``checkout``; its figures."""
    path = os.pathsep.join(os.path.join(checkout, part) for part in ("server", "client"))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(args)],
        env=env, cwd=checkout, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the run in {checkout} failed:\n{done.stderr[-3000:]}")
    *_, imported, last = done.stdout.strip().splitlines()
    if not imported.startswith(checkout + os.sep):  # an installed hposerve took precedence
        raise RuntimeError(f"the run meant for {checkout} imported {imported}")
    figures: dict[str, float] = json.loads(last)
    return figures


def _line(label: str, figures: dict[str, float]) -> str:
    return f"{label:<4}" + "".join(f"  {name} {figures[name]:8.1f}" for name in _SHOWN)


def main(argv: list[str] | None = None) -> dict[str, list[dict[str, float]]]:
    """Runs the pairs; prints each run and the medians; returns the runs of each side."""
    parser = argparse.ArgumentParser(prog="python -m hposerve.lab._bench_ab")
    parser.add_argument("old", help="the checkout to compare against")
    parser.add_argument("new", help="the checkout under test")
    parser.add_argument("--storage", choices=("embedded", "postgres"), default="postgres")
    parser.add_argument("--replicas", type=int, default=1, help="with --storage postgres")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=4, help="trainer processes")
    parser.add_argument("--threads", type=int, default=8, help="trainers per process")
    parser.add_argument("--tpe-studies", type=int, default=2, help="TPE studies sampling beside")
    opts = parser.parse_args(argv)
    if opts.storage == "embedded" and opts.replicas != 1:
        parser.error("the embedded default runs one server: --replicas needs --storage postgres")
    sides = {"old": _checkout(opts.old), "new": _checkout(opts.new)}
    args = {k: v for k, v in vars(opts).items() if k not in sides}
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(opts.pairs):
        for side, checkout in sides.items():
            runs[side].append(_run(checkout, args))
            print(_line(side, runs[side][-1]), flush=True)
    medians = {
        side: {name: statistics.median(r[name] for r in got) for name in _SHOWN}
        for side, got in runs.items()
    }
    print(f"medians of {opts.pairs} pairs")
    for side in sides:
        print(_line(side, medians[side]))
    ratios = "".join(
        f"  {name} {medians['new'][name] / medians['old'][name]:.3f}"
        for name in _SHOWN
        if medians["old"][name]
    )
    print(f"new/old{ratios}")
    return runs


if __name__ == "__main__":
    main()

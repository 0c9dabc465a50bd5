"""One team hammering the server must not starve another: the fairness run.

``python -m hposerve.lab._bench_fairness [--seconds 10] [--threads 16] [--quota 100]``

A server process (embedded storage) serves two namespaces. The *quiet* team runs one trainer
in this process: each trial asks, reports 5 times with 2 ms of "training" before each, and
tells; what is measured is the time its calls take (training excluded). The *hammer* team runs
``--threads`` threads in a child process that ask and tell as fast as they can, asking again
at once when refused. Three phases of ``--seconds`` each: the quiet trainer alone; with the
hammer and no quota; with the hammer and ``--max-asks-per-second`` (every namespace's
default, which the quiet team stays under). Printed: the quiet trainer's p50 and p99 per
trial, their ratio to the phase alone, and what the hammer got done.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from hposerve.lab._bench_processes import free_port, python_module, server_process
from hposerve.lab._bench_workload import N_REPORTS, objective_value, optuna_space, quantile

__all__ = ["main", "run"]

_TRAIN_SECONDS = 0.002


def _hammer(target: str, threads: int, seconds: float, out: Any) -> None:
    """Child process: ``threads`` trainers of namespace ``hammer`` asking flat out."""
    from hposerve.client import Client, ClientConfig

    counts = {"admitted": 0, "refused": 0}
    lock = threading.Lock()
    with Client(target, config=ClientConfig(namespace="hammer", max_attempts=1)) as client:
        study = client.create_study(name="flood", load_if_exists=True, pruner={"type": "none"})
        stop = time.monotonic() + seconds

        def loop() -> None:
            while time.monotonic() < stop:
                try:
                    trial = study.ask({})
                except Exception:  # RESOURCE_EXHAUSTED: ask again at once, as a bad client
                    with lock:
                        counts["refused"] += 1
                    continue
                study.tell(trial, 0.0)
                with lock:
                    counts["admitted"] += 1

        workers = [threading.Thread(target=loop) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    out.put(counts)


def _quiet(target: str, seconds: float) -> list[float]:
    """The quiet team's trainer: seconds its calls took, per trial."""
    from hposerve.client import Client, ClientConfig

    space = optuna_space()
    times = []
    with Client(target, config=ClientConfig(namespace="quiet")) as client:
        study = client.create_study(
            name="steady", load_if_exists=True, sampler={"type": "random", "seed": 0}
        )
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            spent = 0.0
            start = time.perf_counter()
            trial = study.ask(space)
            spent += time.perf_counter() - start
            for step in range(N_REPORTS):
                time.sleep(_TRAIN_SECONDS)
                start = time.perf_counter()
                trial.report(objective_value(trial.params, step), step)
                spent += time.perf_counter() - start
            start = time.perf_counter()
            study.tell(trial, objective_value(trial.params, N_REPORTS))
            times.append(spent + time.perf_counter() - start)
    return sorted(times)


@contextlib.contextmanager
def _server(data_dir: str, quota: float) -> Iterator[str]:
    port = free_port()
    argv = python_module("hposerve.server", "--log-level", "WARNING", "serve")
    argv += ["--port", str(port), "--data-dir", data_dir, "--max-asks-per-second", str(quota)]
    with server_process(argv, port) as target:
        yield target


def _phase(target: str, seconds: float, threads: int) -> dict[str, float]:
    hammer = None
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    if threads:
        hammer = context.Process(target=_hammer, args=(target, threads, seconds + 2, out))
        hammer.start()
        time.sleep(2.0)  # let it start (imports) and saturate
    times = _quiet(target, seconds)
    figures = {
        "quiet_trials": float(len(times)),
        "quiet_p50_ms": quantile(times, 0.5) * 1e3,
        "quiet_p99_ms": quantile(times, 0.99) * 1e3,
    }
    if hammer is not None:
        counts = out.get(timeout=120)
        hammer.join()
        figures["hammer_admitted_per_s"] = counts["admitted"] / (seconds + 2)
        figures["hammer_refused_per_s"] = counts["refused"] / (seconds + 2)
    return figures


def run(seconds: float, threads: int, quota: float) -> dict[str, dict[str, float]]:
    """The three phases; returns their figures by phase."""
    phases: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="hposerve-fairness-") as tmp:
        with _server(os.path.join(tmp, "open"), 0.0) as target:
            phases["alone"] = _phase(target, seconds, 0)
            phases["hammered, no quota"] = _phase(target, seconds, threads)
        with _server(os.path.join(tmp, "quota"), quota) as target:
            phases[f"hammered, quota {quota:g}/s"] = _phase(target, seconds, threads)
    alone = phases["alone"]["quiet_p99_ms"]
    for figures in phases.values():
        figures["quiet_p99_vs_alone"] = figures["quiet_p99_ms"] / alone
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hposerve.lab._bench_fairness")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--threads", type=int, default=16, help="the hammer's threads")
    parser.add_argument("--quota", type=float, default=100.0, help="asks per second")
    args = parser.parse_args(argv)
    cores = os.cpu_count()
    print(f"fairness: {args.threads} hammer threads, {args.seconds:g} s a phase, {cores} cores")
    phases = run(args.seconds, args.threads, args.quota)
    names = list(
        next(iter(phases.values())).keys() | {"hammer_admitted_per_s", "hammer_refused_per_s"}
    )
    names.sort()
    print(f"{'phase':<26}" + "".join(f"{n:>24}" for n in names))
    for phase, figures in phases.items():
        cells = "".join(f"{figures.get(n, float('nan')):>24.2f}" for n in names)
        print(f"{phase:<26}{cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

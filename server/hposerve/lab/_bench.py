"""``hposerve bench``: the service path measured side by side with Optuna itself.

Every case runs the same per-trial workload: an ask with a fixed 5-parameter space (two log
floats, a float, an int, a 6-way categorical), 5 intermediate reports (each with its pruning
decision), and a tell. The service runs as a separate server process on its embedded default
storage, as users run it; the Optuna baselines run in this process. The RandomSampler cases
prune with NopPruner on both sides, so that a figure measures the path, not a pruner whose
cost grows with the study (MedianPruner's does); the TPE case uses Optuna's defaults on both.

The workload is in ``_bench_workload``, the cases in ``_bench_cases``, the child processes
(the server, Optuna's gRPC proxy ``_bench_optuna_proxy``, the echo service
``_bench_echo_server``) in ``_bench_processes``; this module runs them and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable

from hposerve.lab._bench_cases import (
    case_auth_tls,
    case_breakdown,
    case_concurrent,
    case_grpc_floor,
    case_grpc_proxy,
    case_optuna,
    case_service_random,
    case_tpe,
)
from hposerve.lab._bench_pg import case_replicas, replica_ratios
from hposerve.lab._bench_processes import hposerve_server
from hposerve.lab._bench_workload import N_REPORTS, Sizes

__all__ = ["FULL", "QUICK", "TARGETS", "Sizes", "add_arguments", "main", "missed", "run", "table"]

FULL = Sizes(
    growth_trials=5000,
    growth_window=1000,
    baseline_trials=1000,
    proxy_trials=300,
    tpe_window=(500, 1000),
    concurrent_seconds=20.0,
)
QUICK = Sizes(
    growth_trials=1500,
    growth_window=300,
    baseline_trials=300,
    proxy_trials=100,
    tpe_window=(200, 400),
    concurrent_seconds=5.0,
)

TARGETS: dict[str, tuple[str, float]] = {
    "random_ms_per_trial": ("<=", 3.0),
    "speedup_vs_optuna_grpc_proxy": (">=", 10.0),
    "tpe_ratio_vs_inprocess": ("<=", 1.2),
    "tpe_overhead_vs_floor": ("<=", 1.5),
    "random_vs_floor": ("<=", 1.3),
    "auth_tls_ratio": ("<=", 1.10),
    "growth_ratio": ("<=", 1.3),
    "concurrent_trials_per_s": (">=", 1000.0),
    "tell_p99_ms": ("<=", 50.0),
    "report_p99_ms": ("<=", 50.0),
    # Replicas on hposerve's PostgreSQL journal, under the concurrent case's load.
    "pg_replica_ratio_vs_embedded": (">=", 0.5),
    "pg_two_replicas_ratio": (">=", 1.3),
}


# -- the run ------------------------------------------------------------------------------


def run(sizes: Sizes, *, log: Callable[[str], None]) -> dict[str, float]:
    """Runs every case at ``sizes``; returns the figures, calling ``log`` before each case."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hposerve-bench-") as tmp:
        log(f"service, RandomSampler, {sizes.growth_trials} trials on one study")
        with hposerve_server(os.path.join(tmp, "random")) as target:
            figures |= case_service_random(target, sizes)
            log(f"what a service trial is made of, {sizes.baseline_trials} trials and calls")
            figures |= case_breakdown(target, tmp, sizes.baseline_trials)
        log(f"one trainer with auth and TLS on, and off, {sizes.baseline_trials} trials each")
        with hposerve_server(os.path.join(tmp, "plain")) as target:
            figures |= case_auth_tls(target, tmp, sizes.baseline_trials)
        log(f"gRPC's own floor: {sizes.baseline_trials} round trips to a do-nothing service")
        figures |= case_grpc_floor(sizes.baseline_trials)
        # A trial is ask + reports + tell, each a round trip: gRPC's floor for those calls plus
        # the domain's own work is what no service on this stack can go under.
        calls = 2 + N_REPORTS
        figures["random_floor_ms_per_trial"] = (
            calls * figures["grpc_echo_round_trip_us"] / 1e3 + figures["domain_ms_per_trial"]
        )
        figures["random_vs_floor"] = (
            figures["random_ms_per_trial"] / figures["random_floor_ms_per_trial"]
        )
        log(f"optuna in-process, InMemoryStorage, {sizes.baseline_trials} trials")
        figures["inprocess_random_ms_per_trial"] = case_optuna(None, sizes.baseline_trials)
        log(f"optuna in-process, sqlite RDBStorage, {sizes.baseline_trials} trials")
        figures["optuna_sqlite_ms_per_trial"] = case_optuna(
            f"sqlite:///{tmp}/optuna.db", sizes.baseline_trials
        )
        log(f"optuna GrpcStorageProxy over sqlite, {sizes.proxy_trials} trials")
        figures["optuna_grpc_proxy_ms_per_trial"] = case_grpc_proxy(tmp, sizes.proxy_trials)
        figures["speedup_vs_optuna_grpc_proxy"] = (
            figures["optuna_grpc_proxy_ms_per_trial"] / figures["random_ms_per_trial"]
        )
        start, end = sizes.tpe_window
        log(f"TPE, service and in-process, trials {start}-{end}")
        with hposerve_server(os.path.join(tmp, "tpe")) as target:
            figures |= case_tpe(target, sizes)
        # What the service adds to a TPE trial, in units of the round trips gRPC needs for it.
        figures["tpe_overhead_vs_floor"] = (
            figures["tpe_service_ms_per_trial"] - figures["tpe_inprocess_ms_per_trial"]
        ) / (calls * figures["grpc_echo_round_trip_us"] / 1e3)
        figures |= _concurrency(tmp, sizes, log=log)
        log("the same load on replicas of shared storages (PostgreSQL, Redis)")
        figures |= case_replicas(tmp, sizes, log=log)
        figures |= replica_ratios(figures)
    return figures


def _concurrency(tmp: str, sizes: Sizes, *, log: Callable[[str], None]) -> dict[str, float]:
    """The concurrent case as ``serve`` runs by default, and with the TPE studies sampled in a
    sampling process."""
    figures: dict[str, float] = {}
    trainers = sizes.concurrent_processes * sizes.concurrent_threads
    log(
        f"{trainers} concurrent trainers ({sizes.concurrent_processes} processes), "
        f"{sizes.concurrent_seconds:.0f} s, with {sizes.tpe_background_studies} TPE studies "
        "sampling on the same server"
    )
    with hposerve_server(os.path.join(tmp, "concurrent")) as target:
        figures |= case_concurrent(target, sizes)
    figures["embedded_trials_per_s"] = figures["concurrent_trials_per_s"]
    log("the same, with the TPE studies in a sampling process (--sampling-processes 1)")
    with hposerve_server(os.path.join(tmp, "sampling"), "--sampling-processes", "1") as t:
        beside = case_concurrent(t, sizes)
    figures["sampling_process_trials_per_s"] = beside["concurrent_trials_per_s"]
    figures["sampling_process_tell_p99_ms"] = beside["tell_p99_ms"]
    figures["sampling_process_ratio"] = (
        figures["sampling_process_trials_per_s"] / figures["concurrent_trials_per_s"]
    )
    log("the same, the server on one CPU (--cpus)")
    with hposerve_server(os.path.join(tmp, "one-cpu"), cpu_index=0) as target:
        one_cpu = case_concurrent(target, sizes)
    figures["one_cpu_trials_per_s"] = one_cpu["concurrent_trials_per_s"]
    figures["one_cpu_ratio"] = figures["one_cpu_trials_per_s"] / figures["concurrent_trials_per_s"]
    return figures


def _meets(name: str, value: float) -> bool:
    op, bound = TARGETS[name]
    return value <= bound if op == "<=" else value >= bound


def missed(figures: dict[str, float]) -> list[str]:
    """The figures with a target that they miss."""
    # A figure absent was skipped (its database unreachable), with a line saying why.
    return [name for name in TARGETS if name in figures and not _meets(name, figures[name])]


def table(figures: dict[str, float]) -> str:
    """The figures, one a line, with each target and whether it is met."""
    lines = [f"{'figure':<40}{'value':>12}  target", "-" * 66]
    for name, value in figures.items():
        target = ""
        if name in TARGETS:
            op, bound = TARGETS[name]
            target = f"{op} {bound:g}  {'ok' if _meets(name, value) else 'MISSED'}"
        lines.append(f"{name:<40}{value:>12.3f}  {target}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``hposerve bench`` options to ``parser``."""
    parser.epilog = "Exit status: 0 when every figure meets its target, 1 when one misses it."
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about a minute")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")


def main(args: argparse.Namespace) -> int:
    """Runs the bench; returns 0 when every figure meets its target, else 1."""
    sizes = QUICK if args.quick else FULL
    print(f"hposerve bench ({'quick' if args.quick else 'full'}): {sizes}", flush=True)
    machine = f"{platform.platform()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    started = time.perf_counter()
    figures = run(sizes, log=lambda line: print(f"  {line} ...", flush=True))
    print(table(figures))
    print(f"took {time.perf_counter() - started:.0f} s")
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in figures.items()}))
    return 1 if missed(figures) else 0

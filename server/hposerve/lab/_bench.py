"""``hposerve bench``: the service path measured side by side with Optuna itself.

Every case runs the same per-trial workload: an ask with a fixed 5-parameter space (two log
floats, a float, an int, a 6-way categorical), 5 intermediate reports (each with its pruning
decision), and a tell. The service runs as a separate server process on its embedded default
storage, as users run it; the Optuna baselines run in this process. The RandomSampler cases
prune with NopPruner on both sides, so that a figure measures the path, not a pruner whose
cost grows with the study (MedianPruner's does); the TPE case uses Optuna's defaults on both.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

N_REPORTS = 5
SERVE = [sys.executable, "-m", "hposerve.server", "--log-level", "WARNING", "serve"]


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each case runs."""

    growth_trials: int  # RandomSampler trials on one study; also gives random_ms_per_trial
    growth_window: int  # per-trial time of the last window over the first
    baseline_trials: int  # in-process InMemory and SQLite
    proxy_trials: int  # Optuna's GrpcStorageProxy
    tpe_window: tuple[int, int]  # TPE trials measured: [start, end)
    concurrent_seconds: float
    concurrent_processes: int = 4
    concurrent_threads: int = 8  # per process: 32 trainers
    tpe_background_studies: int = 2


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
    "growth_ratio": ("<=", 1.3),
    "concurrent_trials_per_s": (">=", 300.0),
    "tell_p99_ms": ("<=", 50.0),
    "report_p99_ms": ("<=", 50.0),
}


# -- the workload --------------------------------------------------------------------------


def optuna_space() -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
        "layers": IntDistribution(1, 8),
        "activation": CategoricalDistribution(["relu", "gelu", "tanh", "silu", "elu", "selu"]),
    }


def objective_value(params: dict[str, Any], step: int) -> float:
    """A cheap deterministic loss, so that samplers and pruners have something to work on."""
    import math

    return (
        (math.log10(params["lr"]) + 3) ** 2
        + params["dropout"]
        + 0.1 * params["layers"]
        + (1.0 / (step + 1))
    )


def optuna_trials(study: Any, n: int) -> list[float]:
    """Runs ``n`` trials of the workload on an Optuna study; returns seconds per trial."""
    space = optuna_space()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        trial = study.ask(space)
        for step in range(N_REPORTS):
            trial.report(objective_value(trial.params, step), step)
            trial.should_prune()
        study.tell(trial, objective_value(trial.params, N_REPORTS))
        times.append(time.perf_counter() - start)
    return times


def service_trials(study: Any, n: int) -> list[float]:
    """Runs ``n`` trials of the workload through the service; returns seconds per trial."""
    space = optuna_space()  # the client takes Optuna's distributions as they are
    times = []
    for _ in range(n):
        start = time.perf_counter()
        trial = study.ask(space)
        for step in range(N_REPORTS):
            trial.report(objective_value(trial.params, step), step)
        study.tell(trial, objective_value(trial.params, N_REPORTS))
        times.append(time.perf_counter() - start)
    return times


def ms(seconds: Sequence[float]) -> float:
    return statistics.fmean(seconds) * 1e3


# -- processes ----------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(target: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            with contextlib.suppress(grpc.FutureTimeoutError):
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
    raise TimeoutError(f"no server at {target} after {timeout} s")


@contextlib.contextmanager
def server_process(argv: list[str], port: int) -> Iterator[str]:
    """Runs a server (ours or Optuna's proxy) as a child process; yields its target."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = f"127.0.0.1:{port}"
    try:
        _wait_listening(target, process)
        yield target
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def hposerve_server(data_dir: str) -> Iterator[str]:
    port = _free_port()
    with server_process([*SERVE, "--port", str(port), "--data-dir", data_dir], port) as target:
        yield target


_PROXY_MAIN = """
import sys, optuna
from optuna.storages import run_grpc_proxy_server
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = optuna.storages.RDBStorage(sys.argv[1])
run_grpc_proxy_server(storage, host="127.0.0.1", port=int(sys.argv[2]))
"""


# A do-nothing stream service on the same gRPC stack as ours (asyncio server): the cheapest
# round trip gRPC Python makes on this machine, the floor under every call of a trial.
_ECHO_MAIN = """
import asyncio, sys, grpc
async def echo(requests, context):
    async for request in requests:
        yield request
async def main(port):
    server = grpc.aio.server()
    handlers = {"Echo": grpc.stream_stream_rpc_method_handler(echo)}
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("Echo", handlers)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()
asyncio.run(main(sys.argv[1]))
"""


# -- cases --------------------------------------------------------------------------------


def case_service_random(target: str, sizes: Sizes) -> dict[str, float]:
    from hposerve.client import Client

    with Client(target) as client:
        study = client.create_study(
            name="bench-random", sampler={"type": "random", "seed": 0}, pruner={"type": "none"}
        )
        times = service_trials(study, sizes.growth_trials)
    w = sizes.growth_window
    return {
        "random_ms_per_trial": ms(times[:w]),
        "random_late_ms_per_trial": ms(times[-w:]),
        "growth_ratio": ms(times[-w:]) / ms(times[:w]),
    }


def case_breakdown(target: str, tmp: str, n: int) -> dict[str, float]:
    """What a service trial is made of: the domain's own work, and the cost of one call."""
    import optuna

    from hposerve.client import Client, ClientConfig
    from hposerve.server.storage._open import open_storage
    from hposerve.server.domain._studies import StudyOptions, StudyRef, StudyRegistry
    from hposerve.v1 import specs_pb2

    # The same trials on the domain layer directly: Optuna and the storage, without gRPC.
    registry = StudyRegistry(open_storage(None, data_dir=os.path.join(tmp, "domain")))
    ref = StudyRef("default", "bench-domain")
    registry.create_study(
        ref,
        directions=[],
        sampler=specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0)),
        pruner=specs_pb2.PrunerSpec(none=specs_pb2.NopPruner()),
        options=StudyOptions(),
        load_if_exists=False,
    )
    space, times = optuna_space(), []
    for i in range(n):
        start = time.perf_counter()
        (record,) = registry.ask(ref, search_space=space, request_id=f"r{i}")
        for step in range(N_REPORTS):
            registry.report(record.ref, step=step, value=objective_value(record.trial.params, step))
        registry.tell(record.ref, state=optuna.trial.TrialState.COMPLETE, values=[1.0])
        times.append(time.perf_counter() - start)
    registry.close()
    figures = {"domain_ms_per_trial": ms(times)}
    # One cheap call (should-prune of a running trial), over a session and as a unary RPC.
    for sessions, name in ((True, "session_call_us"), (False, "unary_call_us")):
        with Client(target, config=ClientConfig(sessions=sessions)) as client:
            study = client.create_study(name=f"bench-calls-{name}", pruner={"type": "none"})
            trial = study.ask()
            calls = []
            for _ in range(n):
                start = time.perf_counter()
                trial.report(0.0, 0)  # the step is known already: the server only answers
                calls.append(time.perf_counter() - start)
            figures[name] = ms(calls) * 1e3
    return figures


def case_grpc_floor(n: int) -> dict[str, float]:
    """One round trip to a do-nothing stream service, sent as a session sends its calls."""
    import queue

    import grpc

    port = _free_port()
    argv = [sys.executable, "-c", _ECHO_MAIN, str(port)]
    with server_process(argv, port) as target, grpc.insecure_channel(target) as channel:
        requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        responses = channel.stream_stream("/Echo/Echo")(iter(requests.get, None))
        times = []
        for _ in range(n):
            start = time.perf_counter()
            requests.put(b"x" * 64)
            next(responses)
            times.append(time.perf_counter() - start)
        requests.put(None)
    return {"grpc_echo_round_trip_us": ms(times) * 1e3}


def case_optuna(storage: Any, n: int) -> float:
    import optuna

    study = optuna.create_study(
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    return ms(optuna_trials(study, n))


def case_grpc_proxy(tmp: str, n: int) -> float:
    import optuna
    from optuna.storages import GrpcStorageProxy

    port = _free_port()
    url = f"sqlite:///{tmp}/proxy.db"
    optuna.storages.RDBStorage(url)  # create the schema before the proxy opens it
    argv = [sys.executable, "-c", _PROXY_MAIN, url, str(port)]
    with server_process(argv, port):
        storage = GrpcStorageProxy(host="127.0.0.1", port=port)
        result = case_optuna(storage, n)
        storage.close()
    return result


def case_tpe(target: str, sizes: Sizes) -> dict[str, float]:
    import optuna

    from hposerve.client import Client

    start, end = sizes.tpe_window
    local = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    local_times = optuna_trials(local, end)[start:end]
    with Client(target) as client:
        study = client.create_study(name="bench-tpe", sampler={"type": "tpe", "seed": 0})
        service_times = service_trials(study, end)[start:end]
    return {
        "tpe_inprocess_ms_per_trial": ms(local_times),
        "tpe_service_ms_per_trial": ms(service_times),
        "tpe_ratio_vs_inprocess": ms(service_times) / ms(local_times),
    }


def _trainer_process(target: str, study: str, threads: int, seconds: float, out: Any) -> None:
    """Runs ``threads`` trainers (ask, one report, tell) for ``seconds``; sends latencies."""
    from hposerve.client import Client

    space = optuna_space()
    results: list[tuple[int, list[float], list[float]]] = []
    lock = threading.Lock()
    with Client(target) as client:
        handle = client.get_study(study)
        barrier = threading.Barrier(threads)

        def trainer() -> None:
            done, reports, tells = 0, [], []
            barrier.wait()
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                trial = handle.ask(space)
                t0 = time.perf_counter()
                trial.report(objective_value(trial.params, 0), 0)
                t1 = time.perf_counter()
                handle.tell(trial, objective_value(trial.params, 1))
                t2 = time.perf_counter()
                reports.append(t1 - t0)
                tells.append(t2 - t1)
                done += 1
            with lock:
                results.append((done, reports, tells))

        workers = [threading.Thread(target=trainer) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    out.send(results)
    out.close()


def _tpe_background(target: str, index: int, stop: threading.Event) -> None:
    """Keeps a TPE study sampling on the server, as other teams' studies would."""
    from hposerve.client import Client

    with Client(target) as client:
        study = client.create_study(name=f"bench-tpe-background-{index}", sampler={"type": "tpe"})
        while not stop.is_set():
            service_trials(study, 1)


def case_concurrent(target: str, sizes: Sizes) -> dict[str, float]:
    from hposerve.client import Client

    with Client(target) as client:
        client.create_study(
            name="bench-concurrent", sampler={"type": "random"}, pruner={"type": "none"}
        )
    stop = threading.Event()
    background = [
        threading.Thread(target=_tpe_background, args=(target, i, stop), daemon=True)
        for i in range(sizes.tpe_background_studies)
    ]
    for t in background:
        t.start()
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for _ in range(sizes.concurrent_processes):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_trainer_process,
            args=(
                target,
                "bench-concurrent",
                sizes.concurrent_threads,
                sizes.concurrent_seconds,
                send,
            ),
        )
        process.start()
        pipes.append(receive)
        processes.append(process)
    try:
        results = [r for pipe in pipes for r in pipe.recv()]
    except EOFError:
        raise RuntimeError("a trainer process died; see its output above") from None
    for process in processes:
        process.join()
    stop.set()
    for t in background:
        t.join(timeout=30)
    done = sum(r[0] for r in results)
    reports = sorted(x for r in results for x in r[1])
    tells = sorted(x for r in results for x in r[2])
    return {
        "concurrent_trainers": float(sizes.concurrent_processes * sizes.concurrent_threads),
        "concurrent_trials_per_s": done / sizes.concurrent_seconds,
        "tell_p50_ms": _quantile(tells, 0.50) * 1e3,
        "tell_p99_ms": _quantile(tells, 0.99) * 1e3,
        "report_p50_ms": _quantile(reports, 0.50) * 1e3,
        "report_p99_ms": _quantile(reports, 0.99) * 1e3,
    }


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- the run ------------------------------------------------------------------------------


def run(sizes: Sizes, *, log: Callable[[str], None]) -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hposerve-bench-") as tmp:
        log(f"service, RandomSampler, {sizes.growth_trials} trials on one study")
        with hposerve_server(os.path.join(tmp, "random")) as target:
            figures |= case_service_random(target, sizes)
            log(f"what a service trial is made of, {sizes.baseline_trials} trials and calls")
            figures |= case_breakdown(target, tmp, sizes.baseline_trials)
        log(f"gRPC's own floor: {sizes.baseline_trials} round trips to a do-nothing service")
        figures |= case_grpc_floor(sizes.baseline_trials)
        # A trial is ask + reports + tell, each a round trip: gRPC's floor for those calls plus
        # the domain's own work is what no service on this stack can go under.
        calls = 2 + N_REPORTS
        figures["random_floor_ms_per_trial"] = (
            calls * figures["grpc_echo_round_trip_us"] / 1e3 + figures["domain_ms_per_trial"]
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
        trainers = sizes.concurrent_processes * sizes.concurrent_threads
        log(
            f"{trainers} concurrent trainers ({sizes.concurrent_processes} processes), "
            f"{sizes.concurrent_seconds:.0f} s, with {sizes.tpe_background_studies} TPE studies "
            "sampling on the same server"
        )
        with hposerve_server(os.path.join(tmp, "concurrent")) as target:
            figures |= case_concurrent(target, sizes)
    return figures


def table(figures: dict[str, float]) -> str:
    lines = [f"{'figure':<34}{'value':>12}  target", "-" * 60]
    for name, value in figures.items():
        target = ""
        if name in TARGETS:
            op, bound = TARGETS[name]
            ok = value <= bound if op == "<=" else value >= bound
            target = f"{op} {bound:g}  {'ok' if ok else 'MISSED'}"
        lines.append(f"{name:<34}{value:>12.3f}  {target}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about a minute")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")


def main(args: argparse.Namespace) -> int:
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
    missed = [
        name
        for name, (op, bound) in TARGETS.items()
        if not (figures[name] <= bound if op == "<=" else figures[name] >= bound)
    ]
    return 1 if missed else 0

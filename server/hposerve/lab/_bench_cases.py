"""The bench's cases: each runs the workload one way and returns its figures."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from hposerve.lab import _bench_echo_server as echo_server
from hposerve.lab._bench_processes import free_port, python_module, server_process
from hposerve.lab._bench_workload import (
    N_REPORTS,
    Sizes,
    ms,
    objective_value,
    optimize_figures,
    optuna_space,
    optuna_trials,
    quantile,
    round_trips_per_trial,
    service_trials,
)

__all__ = [
    "CONCURRENT_STUDY",
    "case_auth_tls",
    "case_breakdown",
    "case_concurrent",
    "case_grpc_floor",
    "case_grpc_proxy",
    "case_optuna",
    "case_service_random",
    "case_tpe",
]

CONCURRENT_STUDY = "bench-concurrent"  # the trainers' study of ``case_concurrent``


def case_service_random(target: str, sizes: Sizes) -> dict[str, float]:
    from hposerve.client import Client

    with Client(target) as client:
        study = client.create_study(
            name="bench-random", sampler={"type": "random", "seed": 0}, pruner={"type": "none"}
        )
        times = service_trials(study, sizes.growth_trials)
        round_trips = round_trips_per_trial(study, 10)
        optimized = optimize_figures(client, sizes.baseline_trials)
    w = sizes.growth_window
    return {
        "random_ms_per_trial": ms(times[:w]),
        "random_late_ms_per_trial": ms(times[-w:]),
        "growth_ratio": ms(times[-w:]) / ms(times[:w]),
        "random_round_trips_per_trial": round_trips,
        **optimized,
    }


def _domain_trials(data_dir: str, n: int) -> list[float]:
    """The workload on the domain layer directly: Optuna and the storage, without gRPC."""
    import optuna

    from hposerve.server.domain import StudyOptions, StudyRef, StudyRegistry
    from hposerve.server.storage import close_storage, open_storage
    from hposerve.v1 import specs_pb2

    storage = open_storage(None, data_dir=data_dir)
    registry = StudyRegistry(storage)
    try:
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
                value = objective_value(record.trial.params, step)
                registry.report(record.ref, step=step, value=value)
            registry.tell(record.ref, state=optuna.trial.TrialState.COMPLETE, values=[1.0])
            times.append(time.perf_counter() - start)
    finally:
        registry.close()
        close_storage(storage)  # the journal's file and lock
    return times


def case_breakdown(target: str, tmp: str, n: int) -> dict[str, float]:
    """What a service trial is made of: the domain's own work, and the cost of one call."""
    from hposerve.client import Client, ClientConfig

    figures = {"domain_ms_per_trial": ms(_domain_trials(os.path.join(tmp, "domain"), n))}
    # One cheap call (should-prune of a running trial with no report yet: the server answers
    # each), over a session and as a unary RPC.
    for sessions, name in ((True, "session_call_us"), (False, "unary_call_us")):
        with Client(target, config=ClientConfig(sessions=sessions)) as client:
            study = client.create_study(name=f"bench-calls-{name}", pruner={"type": "none"})
            trial = study.ask()
            calls = []
            for _ in range(n):
                start = time.perf_counter()
                trial.should_prune()
                calls.append(time.perf_counter() - start)
            figures[name] = ms(calls) * 1e3
    return figures


def case_grpc_floor(n: int) -> dict[str, float]:
    """One round trip to a do-nothing stream service, sent as a session sends its calls."""
    import queue

    import grpc

    port = free_port()
    argv = python_module("hposerve.lab._bench_echo_server", str(port))
    with server_process(argv, port) as target, grpc.insecure_channel(target) as channel:
        requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        responses = channel.stream_stream(echo_server.METHOD)(iter(requests.get, None))
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

    port = free_port()
    url = f"sqlite:///{tmp}/proxy.db"
    optuna.storages.RDBStorage(url)  # create the schema before the proxy opens it
    argv = python_module("hposerve.lab._bench_optuna_proxy", url, str(port))
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
        round_trips = round_trips_per_trial(study, 10)
    return {
        "tpe_inprocess_ms_per_trial": ms(local_times),
        "tpe_service_ms_per_trial": ms(service_times),
        "tpe_ratio_vs_inprocess": ms(service_times) / ms(local_times),
        "tpe_round_trips_per_trial": round_trips,
    }


def _trainer_process(
    target: str, study: str, threads: int, seconds: float, out: Any, balancing: str | None
) -> None:
    """Runs ``threads`` trainers (ask, one report, tell) for ``seconds``; sends latencies."""
    from hposerve.client import Client, ClientConfig

    space = optuna_space()
    results: list[tuple[int, list[float], list[float]]] = []
    lock = threading.Lock()
    with Client(target, config=ClientConfig(load_balancing=balancing)) as client:
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


def _tpe_background(target: str, index: int, stop: threading.Event, balancing: str | None) -> None:
    """Keeps a TPE study sampling on the server, as other teams' studies would."""
    from hposerve.client import Client, ClientConfig

    with Client(target, config=ClientConfig(load_balancing=balancing)) as client:
        study = client.create_study(name=f"bench-tpe-background-{index}", sampler={"type": "tpe"})
        while not stop.is_set():
            service_trials(study, 1)


def case_concurrent(
    target: str, sizes: Sizes, *, load_balancing: str | None = None
) -> dict[str, float]:
    """Trainer processes and TPE studies at once on ``target`` (``load_balancing``: the
    clients' policy, e.g. ``"round_robin"`` over replicas)."""
    from hposerve.client import Client, ClientConfig

    with Client(target, config=ClientConfig(load_balancing=load_balancing)) as client:
        client.create_study(
            name=CONCURRENT_STUDY, sampler={"type": "random"}, pruner={"type": "none"}
        )
    stop = threading.Event()
    background = [
        threading.Thread(
            target=_tpe_background, args=(target, i, stop, load_balancing), daemon=True
        )
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
                CONCURRENT_STUDY,
                sizes.concurrent_threads,
                sizes.concurrent_seconds,
                send,
                load_balancing,
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
        "tell_p50_ms": quantile(tells, 0.50) * 1e3,
        "tell_p99_ms": quantile(tells, 0.99) * 1e3,
        "report_p50_ms": quantile(reports, 0.50) * 1e3,
        "report_p99_ms": quantile(reports, 0.99) * 1e3,
    }


def _self_signed(tmp: str) -> tuple[str, str, bytes]:
    """A certificate for localhost and its key, in files; returns (cert, key, cert PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    paths = (os.path.join(tmp, "tls-cert.pem"), os.path.join(tmp, "tls-key.pem"))
    with open(paths[0], "wb") as out:
        out.write(pem)
    with open(paths[1], "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths[0], paths[1], pem


def _operator_token(data_dir: str) -> str:
    """Bootstraps an operator in ``data_dir``'s identity store (as `hposerve admin init`)."""
    from hposerve.server.storage import IdentityStore

    store = IdentityStore.open(data_dir=data_dir)
    try:
        store.directory.ensure_principal("users/bench", operator=True)
        return store.tokens.issue_token("users/bench", ttl=None)[1]
    finally:
        store.close()


@contextlib.contextmanager
def _secure_server(tmp: str) -> Iterator[tuple[str, str, bytes]]:
    """``hposerve serve --auth --tls-*`` as a child process; yields (target, token, CA PEM)."""
    import grpc

    data_dir = os.path.join(tmp, "secure")
    cert, key, pem = _self_signed(tmp)
    token = _operator_token(data_dir)
    port = free_port()
    argv = python_module("hposerve.server", "--log-level", "WARNING", "serve", "--auth")
    argv += ["--port", str(port), "--data-dir", data_dir]
    process = subprocess.Popen(
        [*argv, "--tls-cert", cert, "--tls-key", key],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = f"localhost:{port}"
    try:
        with grpc.secure_channel(target, grpc.ssl_channel_credentials(pem)) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        yield target, token, pem
    finally:
        process.terminate()
        process.wait(timeout=15)


def case_auth_tls(plain_target: str, tmp: str, n: int) -> dict[str, float]:
    """The single-trainer figure with auth and TLS on, and off, interleaved in one run.

    The same workload on two servers alike but for ``--auth --tls-*``: blocks of trials
    alternate between them, so that the machine's drift falls on both.
    """
    from hposerve.client import Client, ClientConfig

    with _secure_server(tmp) as (target, token, pem):
        secure = Client(target, config=ClientConfig(token=token, root_certificates=pem))
        plain = Client(plain_target)
        with secure, plain:
            studies = [
                c.create_study(
                    name="bench-auth",
                    sampler={"type": "random", "seed": 0},
                    pruner={"type": "none"},
                )
                for c in (plain, secure)
            ]
            times: tuple[list[float], list[float]] = ([], [])
            block = max(n // 10, 1)
            for _ in range(0, n, block):
                for study, out in zip(studies, times, strict=True):
                    out += service_trials(study, block)
    off, on = ms(times[0]), ms(times[1])
    return {
        "auth_off_ms_per_trial": off,
        "auth_tls_ms_per_trial": on,
        "auth_tls_ratio": on / off,
    }

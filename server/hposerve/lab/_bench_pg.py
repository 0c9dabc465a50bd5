"""Replicas on a shared database, measured under the bench's concurrent load; and the storage
path alone on PostgreSQL.

``case_replicas`` runs the concurrent case (``_bench_cases.case_concurrent``: the same
trainers, the same TPE studies in the background) against ``hposerve serve --storage URL``
processes: one and two replicas on hposerve's PostgreSQL journal, on Optuna's RDBStorage in
PostgreSQL, and on Optuna's Redis journal. Two replicas are reached as one round-robin target
(``ipv4:127.0.0.1:P1,127.0.0.1:P2``), as a lab would. Each setup gets a fresh PostgreSQL schema
or an empty Redis database, dropped afterwards. A database that cannot be reached skips its
setups with a line saying why.

``main`` (``python -m hposerve.lab._bench_pg``) measures the storage alone, without gRPC nor
sampler: every thread of every replica process loops create_new_trial, five
set_trial_param, and set_trial_state_values, for ``--seconds``::

    python -m hposerve.lab._bench_pg --url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from hposerve.lab._bench_cases import case_concurrent
from hposerve.lab._bench_processes import free_port, python_module, server_process
from hposerve.lab._bench_workload import Sizes
from hposerve.server.domain._cpus import allowed_cpus

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "case_replicas",
    "fresh_journal",
    "main",
    "measure",
]

DEFAULT_POSTGRES_URL = os.environ.get(
    "HPOSERVE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# The Redis setups take the first empty database of these, and flush it afterwards.
DEFAULT_REDIS_URL = os.environ.get("HPOSERVE_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
_REDIS_DATABASES = range(15, 7, -1)

_PARAMS = [f"x{i}" for i in range(5)]
_STUDY = "bench"
_KINDS = {
    "journal": "hposerve PostgreSQL journal",
    "journal-ordered-flush": "  same, group_commit=False",
    "rdb": "Optuna RDBStorage",
}


# -- the replicas under the concurrent load -------------------------------------------------


def postgres_unreachable(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or None."""
    try:
        import psycopg

        from hposerve.server.storage._pg_url import libpq_url

        with psycopg.connect(libpq_url(url), connect_timeout=3):
            return None
    except Exception as e:  # noqa: BLE001 - any failure skips the case, with its reason
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"


@contextlib.contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    import psycopg

    from hposerve.server.storage._pg_url import libpq_url

    schema = f"hposerve_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def _redis_database(base: str) -> Iterator[str]:
    """An empty Redis database on ``base`` (raises RuntimeError if none); flushed after."""
    import redis

    for db in _REDIS_DATABASES:
        url = f"{base.rstrip('/')}/{db}"
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0:
            break
        client.close()
    else:
        raise RuntimeError(f"no empty Redis database among {list(_REDIS_DATABASES)}")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextlib.contextmanager
def replicas(storage: str, tmp: str, n: int) -> Iterator[str]:
    """``n`` ``hposerve serve --storage`` processes; yields one target for all of them."""
    with contextlib.ExitStack() as stack:
        ports = []
        for i in range(n):
            port = free_port()
            argv = python_module("hposerve.server", "--log-level", "WARNING", "serve")
            argv += ["--port", str(port), "--storage", storage]
            argv += ["--data-dir", os.path.join(tmp, f"replica-{uuid.uuid4().hex[:6]}-{i}")]
            stack.enter_context(server_process(argv, port, cpu_index=_cpu_of(i, n)))
            ports.append(port)
        if n == 1:
            yield f"127.0.0.1:{ports[0]}"
        else:
            yield "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)


def _cpu_of(replica: int, replicas: int) -> int | None:
    """As the docs advise: each replica on a CPU of its own (``serve --cpus``: its calls all
    cross to threads, which one CPU makes cheaper) while that leaves the machine a CPU for the
    rest (the trainers, the database); else every replica on every CPU."""
    return replica if replicas < len(allowed_cpus()) else None


def _setups(pg_url: str, redis_url: str) -> list[tuple[str, Callable[[], Any], str]]:
    """(figure prefix, context manager yielding a storage URL, what the storage is)."""

    def journal() -> Any:
        return fresh_journal(pg_url)

    def rdb() -> Any:
        # Optuna's tables in a schema of their own: the search path names it.
        return _pg_url_with(pg_url, lambda s: f"hposerve_backend=rdb&options=-csearch_path%3D{s}")

    return [
        ("pg_replica", journal, "hposerve's PostgreSQL journal"),
        ("pg_rdb", rdb, "Optuna's RDBStorage on PostgreSQL"),
        ("redis", lambda: _redis_database(redis_url), "Optuna's journal on Redis"),
    ]


@contextlib.contextmanager
def fresh_journal(url: str) -> Iterator[str]:
    """The URL of hposerve's PostgreSQL journal in a fresh schema on ``url``; dropped after."""
    with _pg_url_with(url, lambda s: f"hposerve_backend=journal&hposerve_schema={s}") as journal:
        yield journal


@contextlib.contextmanager
def _pg_url_with(url: str, query: Callable[[str], str]) -> Iterator[str]:
    with _pg_schema(url) as schema:
        yield f"{url}{'&' if '?' in url else '?'}{query(schema)}"


def case_replicas(
    tmp: str,
    sizes: Sizes,
    *,
    log: Callable[[str], None],
    pg_url: str = DEFAULT_POSTGRES_URL,
    redis_url: str = DEFAULT_REDIS_URL,
) -> dict[str, float]:
    """The concurrent load on one and two replicas of each shared storage reachable."""
    figures: dict[str, float] = {}
    unreachable = {"pg": postgres_unreachable(pg_url), "redis": _redis_unreachable(redis_url)}
    for prefix, storage, label in _setups(pg_url, redis_url):
        reason = unreachable[prefix.split("_", 1)[0]]
        if reason is not None:
            log(f"skipped {label}: not reachable ({reason})")
            continue
        for n, suffix in ((1, ""), (2, "_two_replicas")):
            log(f"{label}, {n} replica{'s' if n > 1 else ''}, {sizes.concurrent_seconds:.0f} s")
            with storage() as url, replicas(url, tmp, n) as target:
                got = case_concurrent(target, sizes, load_balancing="round_robin")
            figures[f"{prefix}{suffix}_trials_per_s"] = got["concurrent_trials_per_s"]
            figures[f"{prefix}{suffix}_tell_p99_ms"] = got["tell_p99_ms"]
    return figures


def _redis_unreachable(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        return None
    except Exception as e:  # noqa: BLE001 - any failure skips the case, with its reason
        return f"{type(e).__name__}: {e}"


def replica_ratios(figures: dict[str, float]) -> dict[str, float]:
    """The issue's ratios, from figures that ``case_replicas`` and the concurrent case gave."""
    out: dict[str, float] = {}
    embedded = figures.get("embedded_trials_per_s")
    one = figures.get("pg_replica_trials_per_s")
    two = figures.get("pg_replica_two_replicas_trials_per_s")
    if embedded and one:
        out["pg_replica_ratio_vs_embedded"] = one / embedded
    if one and two:
        out["pg_two_replicas_ratio"] = two / one
    return out


# -- the storage alone -------------------------------------------------------------------------


def _open(kind: str, url: str, schema: str) -> Any:
    from optuna.storages import JournalStorage, RDBStorage

    from hposerve.server.storage._pg_journal import PostgresJournalBackend

    if kind.startswith("journal"):
        backend = PostgresJournalBackend(url, schema=schema, group_commit=kind == "journal")
        return JournalStorage(backend)
    return RDBStorage(f"{url}?options=-csearch_path%3D{schema}")


def _close(storage: Any) -> None:
    from hposerve.server.storage import close_storage

    close_storage(storage)
    if hasattr(storage, "engine"):
        storage.engine.dispose()


def _one_trial(storage: Any, study_id: int) -> None:
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    trial_id = storage.create_new_trial(study_id)
    for name in _PARAMS:
        storage.set_trial_param(trial_id, name, 0.5, FloatDistribution(0.0, 1.0))
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])


def _replica(kind: str, url: str, schema: str, threads: int, start: float, end: float) -> int:
    """One replica process: the number of trials its threads completed in [start, end)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _open(kind, url, schema)
    study_id = storage.get_study_id_from_name(_STUDY)
    counts = [0] * threads

    def loop(n: int) -> None:
        while time.time() < start:
            time.sleep(0.001)
        while time.time() < end:
            _one_trial(storage, study_id)
            counts[n] += 1

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    _close(storage)
    return sum(counts)


def measure(kind: str, url: str, *, replicas: int, threads: int, seconds: float) -> float:
    """Trials per second of ``replicas`` processes on a fresh schema (dropped afterwards)."""
    from optuna.study import StudyDirection

    with _pg_schema(url) as schema:
        setup = _open(kind, url, schema)
        setup.create_new_study([StudyDirection.MINIMIZE], _STUDY)
        _close(setup)
        start = time.time() + 3.0  # every replica open and replayed before the clock starts
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(replicas, mp_context=context) as pool:
            args = (kind, url, schema, threads, start, start + seconds)
            total = sum(pool.map(_replica, *zip(*[args] * replicas, strict=True)))
        return total / seconds


def main(argv: list[str] | None = None) -> None:
    """Prints trials/s for each storage and replica count, side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--threads", type=int, default=8, help="threads per replica")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    print(f"{'storage':<34} {'replicas':>8} {'trials/s':>9}")
    for n in args.replicas:
        for kind, label in _KINDS.items():
            rate = measure(kind, args.url, replicas=n, threads=args.threads, seconds=args.seconds)
            print(f"{label:<34} {n:>8} {rate:>9.1f}", flush=True)


if __name__ == "__main__":
    main()

"""Storage-level throughput on PostgreSQL: hposerve's journal against Optuna's RDBStorage.

Each replica is a process with its own storage and ``--threads`` threads; every thread loops
create_new_trial, five set_trial_param, and set_trial_state_values (the value and the state)
for ``--seconds``. The figure is completed trials per second over all replicas. No gRPC,
no sampler: this measures the storage path alone.

    python -m hposerve.lab._bench_pg --url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import threading
import time
import uuid

import optuna
import psycopg
from optuna.distributions import FloatDistribution
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hposerve.server.storage._pg_journal import PostgresJournalBackend
from hposerve.server.storage._pg_url import libpq_url

_PARAMS = [f"x{i}" for i in range(5)]
_DIST = FloatDistribution(0.0, 1.0)
_STUDY = "bench"
_KINDS = {
    "journal": "hposerve PostgreSQL journal",
    "journal-ordered-flush": "  same, group_commit=False",
    "rdb": "Optuna RDBStorage",
}


def _open(kind: str, url: str, schema: str) -> BaseStorage:
    if kind.startswith("journal"):
        backend = PostgresJournalBackend(url, schema=schema, group_commit=kind == "journal")
        return JournalStorage(backend)
    return RDBStorage(f"{url}?options=-csearch_path%3D{schema}")


def _close(storage: BaseStorage) -> None:
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, PostgresJournalBackend):
        backend.close()
    elif isinstance(storage, RDBStorage):
        storage.engine.dispose()


def _one_trial(storage: BaseStorage, study_id: int) -> None:
    trial_id = storage.create_new_trial(study_id)
    for name in _PARAMS:
        storage.set_trial_param(trial_id, name, 0.5, _DIST)
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0])


def _replica(kind: str, url: str, schema: str, threads: int, start: float, end: float) -> int:
    """One replica process: the number of trials its threads completed in [start, end)."""
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
    schema = f"hposerve_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        setup = _open(kind, url, schema)
        setup.create_new_study([StudyDirection.MINIMIZE], _STUDY)
        _close(setup)
        start = time.time() + 3.0  # every replica open and replayed before the clock starts
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(replicas, mp_context=context) as pool:
            args = (kind, url, schema, threads, start, start + seconds)
            total = sum(pool.map(_replica, *zip(*[args] * replicas, strict=True)))
        return total / seconds
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> None:
    """Prints trials/s for each storage and replica count, side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--threads", type=int, default=8, help="threads per replica")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    print(f"{'storage':<34} {'replicas':>8} {'trials/s':>9}")
    for replicas in args.replicas:
        for kind, label in _KINDS.items():
            rate = measure(
                kind, args.url, replicas=replicas, threads=args.threads, seconds=args.seconds
            )
            print(f"{label:<34} {replicas:>8} {rate:>9.1f}", flush=True)


if __name__ == "__main__":
    main()

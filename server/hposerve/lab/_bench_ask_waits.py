"""Where a server's asks wait: timers inside it, under the bench's concurrent load.

    python -m hposerve.lab._bench_ask_waits [--storage URL|embedded] [--seconds 10]
        [--processes 4] [--threads 8]

The server runs in a child process with timers around what an ask does (``_TIMED``) and around
each wait for Optuna's storage lock, counted only inside asks of the trainers' study; then the
concurrent case (``_bench_cases.case_concurrent``: 32 trainers, 2 TPE studies) runs against it.
It prints the load's figures, and per timer the calls per ask and the mean wall and CPU
milliseconds of a call. Without ``--storage``: a fresh schema of hposerve's PostgreSQL journal
on the bench's database (``HPOSERVE_BENCH_POSTGRES_URL``), dropped afterwards.

BENCHMARKS.md ("Where an ask on a replica waits") has what it showed on one replica: an ask of
9-11 ms of wall time and 1.4 ms of CPU, five waits for the lock of 1.5 ms each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["main"]

# (module, owner in it or None for the module, attribute): what an ask calls, timed inside asks.
_TIMED = (
    ("hposerve.server.domain._live_study", None, "_start_waiting"),
    ("hposerve.server.domain._live_study", None, "trial_count"),
    ("hposerve.server.domain._optuna", None, "sample_new"),
    ("optuna.storages", "JournalStorage", "create_new_trial"),
    ("optuna.storages", "JournalStorage", "get_trial"),
    ("optuna.storages", "JournalStorage", "_sync_with_backend"),
    ("hposerve.server.storage._pg_storage", "PostgresJournalStorage", "get_trial"),
    ("hposerve.server.storage._pg_journal", "PostgresJournalBackend", "_append_once"),
    ("hposerve.server.storage._pg_journal", "PostgresJournalBackend", "_query_page"),
)
_LOCK = "storage lock, waiting"


class _Timers:
    """Wall and CPU seconds per timer, counted on threads inside an ask of the study."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}  # name -> [calls, wall, cpu]
        self._lock = threading.Lock()
        self._local = threading.local()

    def add(self, name: str, wall: float, cpu: float) -> None:
        with self._lock:
            total = self.totals.setdefault(name, [0, 0.0, 0.0])
            total[0] += 1
            total[1] += wall
            total[2] += cpu

    @contextlib.contextmanager
    def timed(self, name: str, *, ask: bool = False) -> Iterator[None]:
        if not (ask or getattr(self._local, "asking", False)):
            yield
            return
        if ask:
            self._local.asking = True
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - wall, time.thread_time() - cpu)
            if ask:
                self._local.asking = False

    def snapshot(self) -> str:
        """The totals so far, as JSON."""
        with self._lock:
            return json.dumps(self.totals)

    def wrap(self, function: Callable[..., Any], name: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.timed(name):
                return function(*args, **kwargs)

        return timed


class _TimedLock:
    """A storage's lock whose waits are timed (inside asks)."""

    def __init__(self, lock: Any, timers: _Timers) -> None:
        self._lock, self._timers = lock, timers

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        with self._timers.timed(_LOCK):
            return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _install(timers: _Timers) -> None:
    import importlib

    from optuna.storages import JournalStorage

    from hposerve.lab._bench_cases import CONCURRENT_STUDY
    from hposerve.server.domain._live_study import LiveStudy

    ask = LiveStudy.ask

    def timed_ask(live: LiveStudy, *args: Any, **kwargs: Any) -> Any:
        with timers.timed("ask", ask=live.ref.study == CONCURRENT_STUDY):
            return ask(live, *args, **kwargs)

    LiveStudy.ask = timed_ask  # type: ignore[method-assign,assignment]
    for module_name, owner_name, name in _TIMED:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # psycopg is missing: no PostgreSQL
        owner = getattr(module, owner_name) if owner_name else module
        label = f"{owner_name + '.' if owner_name else ''}{name}"
        setattr(owner, name, timers.wrap(getattr(owner, name), label))
    init = JournalStorage.__init__

    def timed_init(storage: JournalStorage, *args: Any, **kwargs: Any) -> None:
        init(storage, *args, **kwargs)
        storage._thread_lock = _TimedLock(storage._thread_lock, timers)  # type: ignore[assignment]

    JournalStorage.__init__ = timed_init  # type: ignore[method-assign,assignment]


def _child(out: str, serve_argv: list[str]) -> int:
    """The server, with the timers; writes them to ``out`` every half second."""
    from hposerve.server._cli import main as serve

    timers = _Timers()
    _install(timers)

    def write() -> None:
        while True:
            time.sleep(0.5)
            with open(out + ".tmp", "w") as f:
                f.write(timers.snapshot())
            os.replace(out + ".tmp", out)

    threading.Thread(target=write, daemon=True).start()
    return serve(serve_argv)


def _report(totals: dict[str, list[float]]) -> str:
    asks = totals.get("ask", [0])[0]
    lines = [f"asks of the trainers' study timed: {asks:.0f}"]
    lines.append(f"  {'what':52s} {'per ask':>8s} {'wall ms':>8s} {'CPU ms':>8s}")
    for name, (calls, wall, cpu) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        per = calls / asks if asks else 0.0
        lines.append(f"  {name:52s} {per:8.2f} {1e3 * wall / calls:8.3f} {1e3 * cpu / calls:8.3f}")
    return "\n".join(lines)


@contextlib.contextmanager
def _storage(choice: str | None) -> Iterator[list[str]]:
    if choice == "embedded":
        yield []
        return
    if choice:
        yield ["--storage", choice]
        return
    from hposerve.lab._bench_pg import DEFAULT_POSTGRES_URL, fresh_journal

    with fresh_journal(DEFAULT_POSTGRES_URL) as url:
        yield ["--storage", url]


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    """Runs the measurement; prints it, and returns the timers' totals."""
    from hposerve.lab._bench_cases import case_concurrent
    from hposerve.lab._bench_processes import free_port, server_process
    from hposerve.lab._bench_workload import Sizes

    parser = argparse.ArgumentParser(prog="python -m hposerve.lab._bench_ask_waits")
    parser.add_argument("--storage", help="a storage URL, or 'embedded'; default: PostgreSQL")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=4, help="trainer processes")
    parser.add_argument("--threads", type=int, default=8, help="trainers per process")
    args = parser.parse_args(argv)
    sizes = Sizes(
        0, 0, 0, 0, (0, 0), args.seconds, concurrent_processes=args.processes,
        concurrent_threads=args.threads,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, _storage(args.storage) as storage:
        out, port = os.path.join(tmp, "timers.json"), free_port()
        serve = ["--log-level", "WARNING", "serve", "--port", str(port)]
        serve += ["--data-dir", os.path.join(tmp, "data"), *storage]
        argv_child = [sys.executable, "-m", "hposerve.lab._bench_ask_waits", "--child", out]
        with server_process([*argv_child, *serve], port) as target:
            figures = case_concurrent(target, sizes)
            time.sleep(1.0)  # the last write of the timers
        with open(out) as f:
            totals: dict[str, list[float]] = json.load(f)
    print({k: round(v, 1) for k, v in figures.items()})
    print(_report(totals))
    return totals


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(_child(sys.argv[2], sys.argv[3:]))
    main()

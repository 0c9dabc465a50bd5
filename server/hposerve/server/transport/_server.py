"""Building and running the gRPC server: ``make_server(...)`` builds one, ``serve()`` blocks.

The server is gRPC's asyncio server on an event loop of its own thread. Sessions (a trainer
thread's stream of trial calls) are served on the loop, their quick calls in place; every
other call runs on a thread pool as a plain function. A message on a session then costs no
thread hand-off, which on a small machine is most of what a call costs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Coroutine
from concurrent import futures
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from optuna.storages import BaseStorage

from hposerve.server.domain import ComparisonRegistry, LeaseReaper, StudyRegistry
from hposerve.server.storage import close_storage, open_storage
from hposerve.server.transport._comparison_servicer import ComparisonServicer
from hposerve.server.transport._study_servicer import StudyServicer
from hposerve.v1 import (
    comparison_service_pb2,
    comparison_service_pb2_grpc,
    study_service_pb2,
    study_service_pb2_grpc,
)

_logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_WORKERS = 64  # threads for the calls not served on the event loop
DEFAULT_MAX_SESSIONS = 4096

SERVICE_NAME = study_service_pb2.DESCRIPTOR.services_by_name["StudyService"].full_name
COMPARISON_SERVICE_NAME = comparison_service_pb2.DESCRIPTOR.services_by_name[
    "ComparisonService"
].full_name


class _LoopThread:
    """An asyncio event loop running on its own (daemon) thread, from ``start()`` to ``close()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="hposerve-grpc", daemon=True
        )

    def start(self) -> _LoopThread:
        self._thread.start()
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs ``coroutine`` on the loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        """Stops the loop, waits for its thread, and closes it."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()


class Server:
    """A running-or-ready hposerve server: the gRPC server, its registry, its lease reaper and
    its storage. ``start()`` starts serving and reaping; ``stop()`` stops both, then closes
    the storage.

    Thread-safety: ``stop`` may be called from any thread (a signal handler included).
    """

    def __init__(
        self,
        loop: _LoopThread,
        grpc_server: grpc.aio.Server,
        pool: futures.ThreadPoolExecutor,
        registry: StudyRegistry,
        reaper: LeaseReaper,
        servicer: StudyServicer,
        health_servicer: health.aio.HealthServicer,
        storage: BaseStorage,
        port: int,
    ) -> None:
        self._loop = loop
        self._grpc = grpc_server
        self._pool = pool
        self._servicer = servicer
        self._registry = registry
        self._reaper = reaper
        self._health = health_servicer
        self._storage = storage
        self._stop_lock = threading.Lock()
        self._stopped = threading.Event()
        self.port = port

    @property
    def registry(self) -> StudyRegistry:
        return self._registry

    def start(self) -> Server:
        """Starts serving, and the lease reaper."""
        self._reaper.start()
        self._loop.run(self._start())
        return self

    async def _start(self) -> None:
        await self._grpc.start()
        for service in ("", SERVICE_NAME, COMPARISON_SERVICE_NAME):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops taking calls, lets running ones finish for ``grace`` seconds, closes storage."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._loop.run(self._stop(grace))
            self._pool.shutdown(wait=True)
            self._loop.close()
            self._reaper.stop()
            self._registry.close()
            close_storage(self._storage)
            self._stopped.set()

    async def _stop(self, grace: float | None) -> None:
        await self._health.enter_graceful_shutdown()
        stopping = asyncio.ensure_future(self._grpc.stop(grace))
        self._servicer.close_sessions()  # open sessions would otherwise hold on for the grace
        await stopping

    def wait(self) -> None:
        """Blocks until the server stops."""
        self._stopped.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(
    address: str = DEFAULT_ADDRESS,
    *,
    storage: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    fsync: bool = False,
    max_workers: int = DEFAULT_WORKERS,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    reap_interval: float = 1.0,
) -> Server:
    """Builds a server bound to ``address`` (port 0 picks a free one); call ``start()``.

    Args:
        address: host:port to listen on.
        storage: An Optuna storage URL; None for the embedded default in ``data_dir``.
        data_dir: Where the embedded default keeps its data.
        fsync: Sync every write of the embedded default to disk.
        max_workers: Threads running calls that are not served on the event loop.
        max_sessions: Open sessions at most; past them, clients are told RESOURCE_EXHAUSTED
            and make unary calls.
        reap_interval: Seconds between checks for expired trial leases.
    """
    opened = open_storage(storage, data_dir=data_dir, fsync=fsync)
    registry = StudyRegistry(opened)
    reaper = LeaseReaper(registry.reap_expired, interval=reap_interval)
    pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hposerve-rpc")
    loop = _LoopThread().start()
    servicer = StudyServicer(registry, pool=pool, max_sessions=max_sessions)
    health_servicer = health.aio.HealthServicer()

    async def build() -> tuple[grpc.aio.Server, int]:
        # Plain (non-async) servicer methods run on the pool; sessions run on the loop.
        grpc_server = grpc.aio.server(
            migration_thread_pool=pool, options=[("grpc.so_reuseport", 0)]
        )
        study_service_pb2_grpc.add_StudyServiceServicer_to_server(servicer, grpc_server)
        comparison_service_pb2_grpc.add_ComparisonServiceServicer_to_server(
            ComparisonServicer(ComparisonRegistry(registry)), grpc_server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
        return grpc_server, grpc_server.add_insecure_port(address)

    try:
        grpc_server, port = loop.run(build())
    except RuntimeError as e:  # grpc.aio raises when it cannot bind the address
        loop.close()
        pool.shutdown()
        close_storage(opened)
        raise OSError(f"cannot listen on {address}") from e
    return Server(
        loop, grpc_server, pool, registry, reaper, servicer, health_servicer, opened, port
    )


def serve(address: str = DEFAULT_ADDRESS, *, grace: float = 10.0, **kwargs: object) -> None:
    """Runs a server until SIGTERM or SIGINT, then stops it gracefully."""
    server = make_server(address, **kwargs)  # type: ignore[arg-type]
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        _logger.info("received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    _logger.info("hposerve listening on %s (port %d)", address, server.port)
    stop_requested.wait()
    server.stop(grace)
    _logger.info("hposerve stopped")

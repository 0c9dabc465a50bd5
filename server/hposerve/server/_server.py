"""Building and running the gRPC server: ``make_server(...)`` builds one, ``serve()`` blocks."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hposerve.server._comparison_servicer import ComparisonServicer
from hposerve.server._comparisons import ComparisonRegistry
from hposerve.server._servicer import StudyServicer
from hposerve.server._storage import close_storage, open_storage
from hposerve.server._studies import StudyRegistry
from hposerve.v1 import (
    comparison_service_pb2,
    comparison_service_pb2_grpc,
    study_service_pb2,
    study_service_pb2_grpc,
)

_logger = logging.getLogger(__name__)

SERVICE_NAME = study_service_pb2.DESCRIPTOR.services_by_name["StudyService"].full_name
COMPARISON_SERVICE_NAME = comparison_service_pb2.DESCRIPTOR.services_by_name[
    "ComparisonService"
].full_name


class Server:
    """A running-or-ready hposerve server: the gRPC server, its registry and its storage.

    Thread-safety: ``stop`` may be called from any thread (a signal handler included).
    """

    def __init__(
        self,
        grpc_server: grpc.Server,
        registry: StudyRegistry,
        servicer: StudyServicer,
        health_servicer: health.HealthServicer,
        storage: object,
        port: int,
    ) -> None:
        self._grpc = grpc_server
        self._servicer = servicer
        self._registry = registry
        self._health = health_servicer
        self._storage = storage
        self._stopped = threading.Event()
        self.port = port

    @property
    def registry(self) -> StudyRegistry:
        return self._registry

    def start(self) -> Server:
        self._grpc.start()
        for service in ("", SERVICE_NAME, COMPARISON_SERVICE_NAME):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        return self

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops taking calls, lets running ones finish for ``grace`` seconds, closes storage."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._health.enter_graceful_shutdown()
        stopped = self._grpc.stop(grace)
        self._servicer.close_sessions()  # open sessions would otherwise hold on for the grace
        stopped.wait()
        self._registry.close()
        close_storage(self._storage)  # type: ignore[arg-type]

    def wait(self) -> None:
        """Blocks until the server stops."""
        self._grpc.wait_for_termination()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(
    address: str = "127.0.0.1:50051",
    *,
    storage: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    fsync: bool = False,
    max_workers: int = 128,
    reap_interval: float = 1.0,
) -> Server:
    """Builds a server bound to ``address`` (port 0 picks a free one); call ``start()``.

    Args:
        address: host:port to listen on.
        storage: An Optuna storage URL; None for the embedded default in ``data_dir``.
        data_dir: Where the embedded default keeps its data.
        fsync: Sync every write of the embedded default to disk.
        max_workers: Threads serving calls. A call holds one while it runs and a session
            (one trainer thread's stream) for its lifetime; 32 are kept for unary calls.
        reap_interval: Seconds between checks for expired trial leases.
    """
    opened = open_storage(storage, data_dir=data_dir, fsync=fsync)
    registry = StudyRegistry(opened, reap_interval=reap_interval)
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hposerve-rpc"),
        options=[("grpc.so_reuseport", 0)],
    )
    servicer = StudyServicer(registry, max_sessions=max(1, max_workers - 32))
    study_service_pb2_grpc.add_StudyServiceServicer_to_server(servicer, grpc_server)
    comparison_service_pb2_grpc.add_ComparisonServiceServicer_to_server(
        ComparisonServicer(ComparisonRegistry(registry)), grpc_server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    port = grpc_server.add_insecure_port(address)
    if port == 0:
        registry.close()
        close_storage(opened)
        raise OSError(f"cannot listen on {address}")
    return Server(grpc_server, registry, servicer, health_servicer, opened, port)


def serve(address: str = "127.0.0.1:50051", *, grace: float = 10.0, **kwargs: object) -> None:
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

"""What a server adds so that people can see what it does, built and run as one part.

``Observability`` gathers: the metrics (with their HTTP endpoint on ``--metrics-port``), the
interceptor that counts, times and logs every call, gRPC reflection, the storage probe that
drives health, and the dashboard (optuna-dashboard on ``--dashboard-port``). ``make_server``
builds one; the ``Server`` starts it after gRPC starts and stops it before its loop closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health
from optuna.storages import BaseStorage

from hposerve.server.domain import SamplingProcesses, StudyRegistry
from hposerve.server.domain._observer import ObservedRegistry
from hposerve.server.transport._health import StorageProbe, enable_reflection
from hposerve.server.transport._metrics import Metrics, MetricsEndpoint, instrument_storage
from hposerve.server.transport._observe import ObservingInterceptor, PrincipalProbe

__all__ = ["Observability", "http_host"]

DEFAULT_HEALTH_INTERVAL = 5.0


class Observability:
    """Metrics, call logs, reflection, storage health and the dashboard of one server.

    Thread-safety: built, started and stopped from one thread (the server's).

    Args:
        storage: The server's storage (the one the registry uses).
        host: Where the HTTP endpoints listen (the gRPC address's host).
        metrics_port: Serve ``/metrics`` there (0: a free port); None: no endpoint (calls
            are still counted, and logged).
        dashboard_port: Serve the dashboard there (0: a free port); None: no dashboard.
        authenticator: The identity store when auth is on (the dashboard asks for a token).
        health_interval: Seconds between two storage probes.
    """

    def __init__(
        self,
        storage: BaseStorage,
        *,
        host: str,
        metrics_port: int | None = None,
        dashboard_port: int | None = None,
        authenticator: Any = None,
        health_interval: float = DEFAULT_HEALTH_INTERVAL,
    ) -> None:
        self.metrics = Metrics()
        instrument_storage(storage, self.metrics)
        self._storage = storage
        self._authenticator = authenticator
        self._health_interval = health_interval
        self._endpoint = (
            MetricsEndpoint(self.metrics, host=host, port=metrics_port)
            if metrics_port is not None
            else None
        )
        self._dashboard: Any = None
        if dashboard_port is not None:
            from hposerve.server.dashboard import DashboardServer  # optuna-dashboard is optional

            self._dashboard = DashboardServer(
                storage, host=host, port=dashboard_port, authenticator=authenticator
            )
        self.probe: StorageProbe | None = None

    @property
    def metrics_port(self) -> int | None:
        """The port of ``/metrics`` (known after ``start()`` when 0 was asked), or None."""
        return self._endpoint.port if self._endpoint is not None else None

    @property
    def dashboard_port(self) -> int | None:
        """The dashboard's port (known after ``start()`` when 0 was asked), or None."""
        return self._dashboard.port if self._dashboard is not None else None

    def interceptors(
        self, inner: Sequence[grpc.aio.ServerInterceptor]
    ) -> list[grpc.aio.ServerInterceptor]:
        """``inner`` (auth, quotas) between the observing interceptor and the principal probe."""
        observing = ObservingInterceptor(self.metrics, self._authenticator)
        return [observing, *inner, PrincipalProbe()]

    def registry(
        self, storage: BaseStorage, sampling: SamplingProcesses | None = None
    ) -> StudyRegistry:
        """The registry that reports what it does to the metrics."""
        registry = ObservedRegistry(storage, self.metrics, sampling=sampling)
        self.metrics.watch_running(registry.running_trials)
        return registry

    def register(self, grpc_server: grpc.aio.Server, services: Sequence[str]) -> None:
        """Adds reflection of ``services`` (and health's) to the server being built."""
        enable_reflection(grpc_server, (*services, health.SERVICE_NAME))

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        health_servicer: health.aio.HealthServicer,
        services: Sequence[str],
    ) -> None:
        """Starts the probe (health of ``services``), the metrics endpoint and the dashboard."""
        self.probe = StorageProbe(
            self._storage,
            health_servicer,
            loop,
            services,
            interval=self._health_interval,
            metrics=self.metrics,
        ).start()
        if self._endpoint is not None:
            self._endpoint.start()
        if self._dashboard is not None:
            self._dashboard.start()

    def stop(self) -> None:
        """Stops what ``start`` started (before the server's loop and storage close)."""
        if self._dashboard is not None:
            self._dashboard.stop()
        if self._endpoint is not None:
            self._endpoint.stop()
        if self.probe is not None:
            self.probe.stop()


def http_host(address: str) -> str:
    """The host the HTTP endpoints of a server on gRPC ``address`` listen on: the same one
    (loopback for a unix socket)."""
    if address.startswith("unix:"):
        return "127.0.0.1"
    return address.rsplit(":", 1)[0].strip("[]") or "0.0.0.0"

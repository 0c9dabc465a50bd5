"""Health that follows the storage: a probe thread, and reflection of the served API.

``StorageProbe`` makes a cheap read of the storage every ``interval`` seconds from ``start()``
to ``stop()``; when it fails, every service the health service reports turns NOT_SERVING (a
load balancer stops sending calls), and SERVING again once a probe succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence

from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection
from optuna.storages import BaseStorage

from hposerve.server.transport._metrics import Metrics

__all__ = ["StorageProbe", "enable_reflection", "probe_storage"]

_logger = logging.getLogger(__name__)
_PROBE_STUDY = "hposerve:health-probe"  # a name no study has: the read finds nothing


def probe_storage(storage: BaseStorage) -> None:
    """One cheap read (a study looked up by a name none has). Raises what the storage raises."""
    with contextlib.suppress(KeyError):  # the answer expected of a working storage
        storage.get_study_id_from_name(_PROBE_STUDY)


def enable_reflection(server: object, services: Sequence[str]) -> None:
    """Serves gRPC reflection on ``server`` for ``services`` (and for reflection itself)."""
    reflection.enable_server_reflection((*services, reflection.SERVICE_NAME), server)


class StorageProbe:
    """Sets the health of ``services`` from a storage probe, every ``interval`` seconds.

    Thread-safety: ``start`` and ``stop`` from one thread; the probe runs on its own thread and
    sets health on ``loop`` (the server's).
    """

    def __init__(
        self,
        storage: BaseStorage,
        health_servicer: health.aio.HealthServicer,
        loop: asyncio.AbstractEventLoop,
        services: Sequence[str],
        *,
        interval: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._storage = storage
        self._health = health_servicer
        self._loop = loop
        self._services = tuple(services)
        self._interval = interval
        self._metrics = metrics
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hposerve-health", daemon=True)
        self.healthy = True

    def start(self) -> StorageProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops probing (before the server's loop closes). Idempotent."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> bool:
        """Probes once; sets health and the metric when the answer changes. Returns it."""
        try:
            probe_storage(self._storage)
            healthy = True
        except Exception as e:
            healthy = False
            if self.healthy:
                _logger.error("storage probe failed, health is NOT_SERVING: %s", e)
        if self._metrics is not None:
            self._metrics.storage_healthy.set(1 if healthy else 0)
        if healthy != self.healthy:
            self.healthy = healthy
            if healthy:
                _logger.info("storage probe succeeded, health is SERVING")
            self._publish(healthy)
        return healthy

    def _publish(self, healthy: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if healthy
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

        async def publish() -> None:
            for service in ("", *self._services):
                await self._health.set(service, status)

        if not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(publish(), self._loop).result(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.check()
            self._stopping.wait(self._interval)

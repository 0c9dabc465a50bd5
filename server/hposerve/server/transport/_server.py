"""Building and running the gRPC server: ``make_server(...)`` builds one, ``serve()`` blocks.

The server is gRPC's asyncio server on an event loop of its own thread. Sessions (a trainer
thread's stream of trial calls) are served on the loop, their quick calls in place; every
other call runs on a thread pool as a plain function. A message on a session then costs no
thread hand-off, which on a small machine is most of what a call costs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import pathlib
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from optuna.storages import BaseStorage

from hposerve.server.domain import (
    ComparisonRegistry,
    LeaseReaper,
    SamplingProcesses,
    StudyRegistry,
)
from hposerve.server.domain._admin import AdminOps
from hposerve.server.domain._quotas import QuotaLimits, Quotas, StorageUsage
from hposerve.server.storage import close_storage, mirror_of, open_storage
from hposerve.server.storage._identity import IdentityStore
from hposerve.server.transport._admin_servicer import AdminServicer
from hposerve.server.transport._auth import AuthInterceptor
from hposerve.server.transport._call_threads import CallThreads
from hposerve.server.transport._comparison_servicer import ComparisonServicer
from hposerve.server.transport._errors import DecodeGuard
from hposerve.server.transport._observability import (
    DEFAULT_HEALTH_INTERVAL,
    Observability,
    http_host,
)
from hposerve.server.transport._quota_gate import QuotaInterceptor
from hposerve.server.transport._study_servicer import StudyServicer
from hposerve.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
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
ADMIN_SERVICE_NAME = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


class RefusedToStart(RuntimeError):
    """The server was asked to run in a way that exposes it; the message says how to fix it."""


def is_loopback(address: str) -> bool:
    """Whether ``address`` (host:port, or a unix: socket) is reachable from this machine only."""
    if address.startswith("unix:"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


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
        pool: CallThreads,
        registry: StudyRegistry,
        reaper: LeaseReaper,
        servicer: StudyServicer,
        health_servicer: health.aio.HealthServicer,
        storage: BaseStorage,
        port: int,
        *,
        identity: IdentityStore | None = None,
        observability: Observability | None = None,
        sampling: SamplingProcesses | None = None,
    ) -> None:
        self._loop = loop
        self._grpc = grpc_server
        self._pool = pool
        self._servicer = servicer
        self._registry = registry
        self._reaper = reaper
        self._health = health_servicer
        self._storage = storage
        self._identity = identity
        self._observability = observability
        self._sampling = sampling
        self._stop_lock = threading.Lock()
        self._stopped = threading.Event()
        self.port = port

    @property
    def sampling(self) -> SamplingProcesses | None:
        """The sampling processes, if the server has them."""
        return self._sampling

    @property
    def registry(self) -> StudyRegistry:
        return self._registry

    @property
    def identity(self) -> IdentityStore | None:
        """The identity store (teams, tokens, audit log) when auth is on."""
        return self._identity

    @property
    def observability(self) -> Observability | None:
        """Metrics, the storage probe and the dashboard (their ports once started)."""
        return self._observability

    def _services(self) -> list[str]:
        services = [SERVICE_NAME, COMPARISON_SERVICE_NAME]
        if self._identity is not None:
            services.append(ADMIN_SERVICE_NAME)
        return services

    def start(self) -> Server:
        """Starts serving, and the lease reaper."""
        self._reaper.start()
        if self._identity is not None:
            self._identity.start()
        self._loop.run(self._start())
        if self._observability is not None:
            self._observability.start(self._loop.loop, self._health, self._services())
        return self

    async def _start(self) -> None:
        await self._grpc.start()
        for service in ["", *self._services()]:
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops taking calls, lets running ones finish for ``grace`` seconds, closes storage."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            if self._observability is not None:
                self._observability.stop()  # before the loop its probe uses, and the storage
            self._loop.run(self._stop(grace))
            self._pool.shutdown(wait=True)
            self._loop.close()
            self._reaper.stop()
            self._registry.close()
            if self._sampling is not None:
                self._sampling.close()
            close_storage(self._storage)
            if self._identity is not None:
                self._identity.close()  # after gRPC: the last calls' audit records are in
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
    auth: bool = False,
    identity_storage: str | None = None,
    tls_cert: str | os.PathLike[str] | None = None,
    tls_key: str | os.PathLike[str] | None = None,
    tls_client_ca: str | os.PathLike[str] | None = None,
    quotas: QuotaLimits | None = None,
    insecure: bool = False,
    metrics_port: int | None = None,
    dashboard_port: int | None = None,
    health_interval: float = DEFAULT_HEALTH_INTERVAL,
    sampling_processes: int = 0,
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
        auth: Authenticate and authorize every call; serve the AdminService.
        identity_storage: A SQLAlchemy URL for teams and tokens; None: with ``storage``.
        tls_cert, tls_key, tls_client_ca: PEM files: TLS; mTLS with a client CA (with auth, a
            client certificate's subject is a principal).
        quotas: Every namespace's default quotas (operators override them, with auth on).
        insecure: Allow a non-loopback address without auth (else: RefusedToStart).
        metrics_port: Serve Prometheus metrics at ``/metrics`` on this port of the same host
            (0: a free one, see ``server.observability.metrics_port``); None: none.
        dashboard_port: Serve optuna-dashboard on the live storage on this port of the same
            host (0: a free one); None: no dashboard. With auth, it asks for a token.
        health_interval: Seconds between two storage probes (health NOT_SERVING on failure).
        sampling_processes: Processes sampling the studies whose sampler fits a model, off the
            server's GIL (``domain/_sampling``; embedded and PostgreSQL journals); 0: none.
    """
    _refuse_exposure(address, auth=auth, insecure=insecure)
    credentials = _server_credentials(tls_cert, tls_key, tls_client_ca)
    opened = open_storage(storage, data_dir=data_dir, fsync=fsync)
    where = (storage, data_dir, identity_storage) if auth else None
    identity, admin, interceptors = _access(opened, where, quotas, bool(tls_client_ca))
    observability = Observability(
        opened, host=http_host(address), metrics_port=metrics_port, dashboard_port=dashboard_port,
        authenticator=identity, health_interval=health_interval,
    )  # fmt: skip
    sampling = _sampling_processes(opened, sampling_processes)
    return _assemble(
        address, opened, identity, admin, observability.interceptors(interceptors), credentials,
        max_workers, max_sessions, reap_interval, observability, sampling,
    )  # fmt: skip


def _sampling_processes(opened: BaseStorage, processes: int) -> SamplingProcesses | None:
    """``processes`` sampling processes reading ``opened``; None for none, or for a storage
    they cannot read (its asks sample in the server)."""
    mirror = mirror_of(opened) if processes else None
    return SamplingProcesses(mirror, processes) if mirror else None


def _assemble(
    address: str,
    opened: BaseStorage,
    identity: IdentityStore | None,
    admin: AdminServicer | None,
    interceptors: list[grpc.aio.ServerInterceptor],
    credentials: grpc.ServerCredentials | None,
    max_workers: int,
    max_sessions: int,
    reap_interval: float,
    observability: Observability,
    sampling: SamplingProcesses | None,
) -> Server:
    """The server over opened stores, bound to ``address``; closes them if it cannot bind."""
    registry = observability.registry(opened, sampling)
    reaper = LeaseReaper(registry.reap_expired, interval=reap_interval)
    pool = CallThreads(max_workers, "hposerve-rpc").start()
    loop = _LoopThread().start()
    servicer = StudyServicer(registry, pool=pool, max_sessions=max_sessions)
    health_servicer = health.aio.HealthServicer()

    async def build() -> tuple[grpc.aio.Server, int]:
        # Plain (non-async) servicer methods run on the pool; sessions run on the loop.
        grpc_server = grpc.aio.server(
            migration_thread_pool=pool,
            interceptors=[*interceptors, DecodeGuard()],  # innermost: sees the real handlers
            options=[("grpc.so_reuseport", 0)],
        )
        study_service_pb2_grpc.add_StudyServiceServicer_to_server(servicer, grpc_server)
        comparison_service_pb2_grpc.add_ComparisonServiceServicer_to_server(
            ComparisonServicer(ComparisonRegistry(registry)), grpc_server
        )
        if admin is not None:
            admin_service_pb2_grpc.add_AdminServiceServicer_to_server(admin, grpc_server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
        services = [SERVICE_NAME, COMPARISON_SERVICE_NAME]
        observability.register(grpc_server, services + [ADMIN_SERVICE_NAME] * (admin is not None))
        if credentials is not None:
            return grpc_server, grpc_server.add_secure_port(address, credentials)
        return grpc_server, grpc_server.add_insecure_port(address)

    try:
        grpc_server, port = loop.run(build())
    except RuntimeError as e:  # grpc.aio raises when it cannot bind the address
        loop.close()
        pool.shutdown()
        close_storage(opened)
        if identity is not None:
            identity.close()
        raise OSError(f"cannot listen on {address}") from e
    parts = (loop, grpc_server, pool, registry, reaper, servicer, health_servicer, opened, port)
    return Server(*parts, identity=identity, observability=observability, sampling=sampling)


def _access(
    opened: BaseStorage,
    where: tuple[str | None, str | os.PathLike[str] | None, str | None] | None,
    quotas: QuotaLimits | None,
    trust_certificates: bool,
) -> tuple[IdentityStore | None, AdminServicer | None, list[grpc.aio.ServerInterceptor]]:
    """The identity store (at ``where``: storage, data dir, identity URL; None: auth off), the
    AdminService and the interceptors of auth and quotas. Closes ``opened`` if it fails."""
    try:
        identity = IdentityStore.open(where[0], data_dir=where[1], url=where[2]) if where else None
    except BaseException:
        close_storage(opened)
        raise
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if identity is not None:
        interceptors.append(AuthInterceptor(identity, trust_certificates=trust_certificates))
    gate = _quotas(quotas, opened, identity)
    if gate is not None:
        interceptors.append(QuotaInterceptor(gate))
    admin = AdminServicer(AdminOps(identity, gate)) if identity is not None else None
    return identity, admin, interceptors


def _refuse_exposure(address: str, *, auth: bool, insecure: bool) -> None:
    if not auth and not insecure and not is_loopback(address):
        raise RefusedToStart(
            f"refusing to serve {address} without authentication: anyone who can reach it "
            "could read and delete every study. Turn auth on (--auth, then `hposerve admin "
            "init`), or pass --insecure if the network is trusted"
        )


def _server_credentials(
    cert: str | os.PathLike[str] | None,
    key: str | os.PathLike[str] | None,
    client_ca: str | os.PathLike[str] | None,
) -> grpc.ServerCredentials | None:
    """TLS from PEM files (mTLS with a client CA), or None for plaintext."""
    if cert is None and key is None:
        if client_ca is not None:
            raise RefusedToStart("a client CA (mTLS) needs TLS: give --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise RefusedToStart("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
    pair = (pathlib.Path(key).read_bytes(), pathlib.Path(cert).read_bytes())
    roots = pathlib.Path(client_ca).read_bytes() if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=roots, require_client_auth=roots is not None
    )


def _quotas(
    defaults: QuotaLimits | None, storage: BaseStorage, identity: IdentityStore | None
) -> Quotas | None:
    """The quota gate: with defaults, or with auth on (an operator may set quotas)."""
    if identity is None and (defaults is None or not defaults.limited):
        return None
    overrides = identity.quota_override if identity is not None else None
    return Quotas(defaults or QuotaLimits(), StorageUsage(storage), overrides)


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

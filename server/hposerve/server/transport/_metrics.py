"""Prometheus metrics of one server, exposed over HTTP on ``--metrics-port``.

Every metric lives in the server's own ``CollectorRegistry`` (several servers in one process,
as in tests, do not mix). ``Metrics`` is the domain's ``Observer`` (asks, tells, sampler
time, lease expiries) and what the RPC interceptor (``_observe``) and the storage timing
(``instrument_storage``) record into. Label sets are bounded: methods and codes are finite,
and namespaces are the first ``max_namespaces`` seen, the rest counted as ``other``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from optuna.storages import BaseStorage
from optuna.storages.journal import BaseJournalBackend
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from hposerve.server.domain._optuna import wrapped_backend

__all__ = ["Metrics", "MetricsEndpoint", "instrument_storage"]

_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_STORAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2)
# The BaseStorage methods that write (timed when the storage is not a journal).
_WRITES = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "create_new_trial",
    "set_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
)
_DENIALS = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED})


class _Bounded:
    """Label values from an open set, bounded: the first ``limit`` seen, then ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value or "none"
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return "other"


class Metrics:
    """The metrics of one server. Thread-safe (prometheus-client's metrics are).

    Args:
        max_namespaces: Namespaces with a label of their own; the others are ``other``.
    """

    def __init__(self, *, max_namespaces: int = 20) -> None:
        self.registry = CollectorRegistry()
        self._namespace = _Bounded(max_namespaces)
        r = self.registry
        self.rpcs = Counter(
            "hposerve_rpcs", "RPCs answered (session messages by their method)",
            ["method", "code"], registry=r,
        )  # fmt: skip
        self.rpc_seconds = Histogram(
            "hposerve_rpc_seconds", "Time to answer an RPC or session message", ["method"],
            buckets=_RPC_BUCKETS, registry=r,
        )  # fmt: skip
        self.sessions_open = Gauge("hposerve_sessions_open", "Sessions open now", registry=r)
        self.asks = Counter("hposerve_asks", "Ask calls answered", ["sampler"], registry=r)
        self.trials_asked = Counter(
            "hposerve_trials_asked", "Trials started by asks", ["sampler"], registry=r
        )
        self.tells = Counter(
            "hposerve_tells", "Tells answered, by the trial's state", ["sampler", "state"],
            registry=r,
        )  # fmt: skip
        self.sampler_seconds = Histogram(
            "hposerve_sampler_seconds", "Time spent sampling (ask: all its trials; suggest)",
            ["sampler", "call"], buckets=_RPC_BUCKETS, registry=r,
        )  # fmt: skip
        self.running = Gauge(
            "hposerve_trials_running", "Trials running under a lease this server watches",
            registry=r,
        )  # fmt: skip
        self.leases_expired = Counter(
            "hposerve_leases_expired", "Leases that expired (their trials failed)", registry=r
        )
        self.trials_retried = Counter(
            "hposerve_trials_retried", "Trials handed out again after their lease expired",
            registry=r,
        )  # fmt: skip
        self.storage_write_seconds = Histogram(
            "hposerve_storage_write_seconds", "Time of one storage write", ["operation"],
            buckets=_STORAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.storage_write_errors = Counter(
            "hposerve_storage_write_errors", "Storage writes that raised", ["operation"],
            registry=r,
        )  # fmt: skip
        self.storage_healthy = Gauge(
            "hposerve_storage_healthy", "1 when the last storage probe succeeded", registry=r
        )
        self.quota_refusals = Counter(
            "hposerve_quota_refusals", "Calls refused RESOURCE_EXHAUSTED by a namespace quota",
            ["namespace"], registry=r,
        )  # fmt: skip
        self.auth_denials = Counter(
            "hposerve_auth_denials", "Calls refused PERMISSION_DENIED or UNAUTHENTICATED",
            ["namespace", "code"], registry=r,
        )  # fmt: skip
        # (method, code) -> its children of rpcs and rpc_seconds: .labels() costs more than the
        # increments themselves, once per call. Bounded as the label sets are.
        self._rpc_children: dict[tuple[str, grpc.StatusCode], tuple[Any, Any]] = {}

    # -- what the interceptor records ----------------------------------------------------------

    def rpc(self, method: str, code: grpc.StatusCode, seconds: float, namespace: str) -> None:
        """One RPC (or session message) answered with ``code`` after ``seconds``."""
        children = self._rpc_children.get((method, code))
        if children is None:  # a race makes the same children twice: labels() is idempotent
            children = (self.rpcs.labels(method, code.name), self.rpc_seconds.labels(method))
            self._rpc_children[method, code] = children
        children[0].inc()
        children[1].observe(seconds)
        if code in _DENIALS:
            self.auth_denials.labels(self._namespace(namespace), code.name).inc()
        elif code is grpc.StatusCode.RESOURCE_EXHAUSTED and not method.endswith("/Session"):
            # A full server refuses a session RESOURCE_EXHAUSTED too; that is no quota.
            self.quota_refusals.labels(self._namespace(namespace)).inc()

    def watch_running(self, count: Callable[[], int]) -> None:
        """Reads the running trials from ``count`` at each scrape."""
        self.running.set_function(count)

    # -- the domain's Observer -----------------------------------------------------------------

    def sampled(self, sampler: str, call: str, trials: int, seconds: float) -> None:
        self.sampler_seconds.labels(sampler, call).observe(seconds)
        if call == "ask":
            self.asks.labels(sampler).inc()
            self.trials_asked.labels(sampler).inc(trials)

    def told(self, sampler: str, state: str) -> None:
        self.tells.labels(sampler, state).inc()

    def retried(self, trials: int) -> None:
        self.trials_retried.inc(trials)

    def expired(self, trials: int) -> None:
        self.leases_expired.inc(trials)


def instrument_storage(storage: BaseStorage, metrics: Metrics) -> None:
    """Times every write to ``storage``: a journal's appends, else each writing method."""
    backend = wrapped_backend(storage)
    if isinstance(backend, BaseJournalBackend):
        target: Any = backend
        names: tuple[str, ...] = ("append_logs",)
    else:
        target, names = storage, _WRITES
    for name in names:
        # An attribute of this instance only: the class, and other storages, are untouched.
        setattr(target, name, _timed(getattr(target, name), name, metrics))


def _timed(write: Callable[..., Any], name: str, metrics: Metrics) -> Callable[..., Any]:
    seconds = metrics.storage_write_seconds.labels(name)
    errors = metrics.storage_write_errors.labels(name)

    @functools.wraps(write)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return write(*args, **kwargs)
        except Exception:
            errors.inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)

    return timed


class MetricsEndpoint:
    """The ``/metrics`` HTTP endpoint of a ``Metrics``, from ``start()`` to ``stop()``.

    Args:
        metrics: What it exposes.
        host: Address to listen on.
        port: Port (0 picks a free one: see ``port`` after ``start()``).
    """

    def __init__(self, metrics: Metrics, *, host: str, port: int) -> None:
        self._metrics = metrics
        self._host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsEndpoint:
        """Starts serving on a thread of its own."""
        self._server, self._thread = start_http_server(
            self.port, addr=self._host, registry=self._metrics.registry
        )
        self.port = self._server.server_port
        return self

    def stop(self) -> None:
        """Stops serving. Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

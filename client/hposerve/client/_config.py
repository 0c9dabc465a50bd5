"""Client configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Settings of a :class:`~hposerve.client.Client`. Immutable; build a new one to change it."""

    namespace: str = "default"
    """Namespace of every study this client names: ``namespaces/{namespace}/studies/{name}``."""

    timeout: float = 30.0
    """Deadline of every call, in seconds (per attempt)."""

    ask_timeout: float = 300.0
    """Deadline of calls that sample (ask, suggest), in seconds: some samplers are slow."""

    max_attempts: int = 5
    """How many times a call is tried in all when the server is UNAVAILABLE (1: no retry).
    Only calls that are safe to send twice are retried: those that carry a request id, those
    idempotent by what they name (the trial calls) and reads."""

    initial_backoff: float = 0.1
    """Upper bound of the first randomized wait before a retry, in seconds."""

    max_backoff: float = 5.0
    """Upper bound of any wait before a retry, in seconds; the bound doubles up to it."""

    heartbeat_interval: float | None = None
    """Seconds between two lease renewals of open trials. None: a third of the shortest lease
    among the studies of the open trials (``Study.options.lease_seconds``, default 300 s)."""

    metadata: tuple[tuple[str, str], ...] = ()
    """gRPC metadata sent with every call, e.g. ``(("authorization", "Bearer ..."),)``."""

    channel_options: tuple[tuple[str, Any], ...] = ()
    """Extra gRPC channel arguments, e.g. ``(("grpc.max_receive_message_length", 2**26),)``."""

    load_balancing: str | None = None
    """Client-side load-balancing policy, e.g. ``"round_robin"`` to spread calls over all the
    addresses a DNS name resolves to. None: gRPC's default (``pick_first``)."""

    sessions: bool = True
    """Send each thread's trial calls (ask, suggest, report, tell, ...) over one stream, which
    costs far less per call than unary RPCs; the heartbeat thread's lease renewals too. False:
    every call is a unary RPC. With ``load_balancing``, a thread's session stays on one server:
    balancing is per thread."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.timeout <= 0 or self.ask_timeout <= 0:
            raise ValueError("timeout and ask_timeout must be positive")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("initial_backoff and max_backoff must not be negative")
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be positive, got {self.heartbeat_interval}")

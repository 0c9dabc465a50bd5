"""Client configuration."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

PemSource = bytes | str | os.PathLike[str]
"""PEM data as bytes, or as text starting ``-----BEGIN``; any other str or path: its file."""


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Settings of a :class:`~hposerve.client.Client`. Immutable; build a new one to change it."""

    namespace: str = field(
        default_factory=lambda: os.environ.get("HPOSERVE_NAMESPACE") or "default"
    )
    """Namespace of every study this client names: ``namespaces/{namespace}/studies/{name}``.
    Defaults to the ``HPOSERVE_NAMESPACE`` environment variable, else ``"default"``."""

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
    """gRPC metadata sent with every call, e.g. ``(("x-team", "vision"),)``. A token goes in
    ``token``; ``authorization`` here is treated as one (hidden, never sent in plaintext)."""

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

    token: str | None = None
    """Bearer token (``hps_...``) of an authenticated server, sent as ``authorization: Bearer``
    metadata with every call and when a session opens. None: the ``HPOSERVE_TOKEN``
    environment variable, if set; ``""``: no token. Never shown by ``repr`` nor logged. Sent
    over a plaintext channel only to a loopback address (see ``allow_insecure_token``)."""

    tls: bool = False
    """Connect with TLS, verifying the server with ``root_certificates`` or, without them, the
    system's root certificates. Implied by any certificate below. Environment:
    ``HPOSERVE_TLS=1``."""

    root_certificates: PemSource | None = None
    """PEM root certificates (a CA) the server's certificate must chain to: bytes, or a file's
    path. None: the file ``HPOSERVE_TLS_ROOT_CERTS`` names, else the system's roots."""

    client_certificate: PemSource | None = None
    """PEM certificate chain presented to a server that verifies clients (mTLS), with
    ``client_key``: bytes, or a file's path. None: ``HPOSERVE_TLS_CLIENT_CERT``."""

    client_key: PemSource | None = None
    """PEM private key of ``client_certificate``: bytes, or a file's path. None:
    ``HPOSERVE_TLS_CLIENT_KEY``. Never shown by ``repr`` unless given as a path."""

    allow_insecure_token: bool = False
    """Send the token over a plaintext channel to an address that is not a loopback one. Only
    where the network below gRPC is encrypted already (a service-mesh sidecar doing mTLS):
    anywhere else, anyone on the path can read the token and act as its owner. Environment:
    ``HPOSERVE_ALLOW_INSECURE_TOKEN=1``."""

    max_retry_delay: float = 10.0
    """Longest wait, in seconds, the client accepts from a server that refuses a call with
    RESOURCE_EXHAUSTED and a retry delay (a quota): it waits, then tries again (a call that is
    safe to retry, within ``max_attempts``). A longer delay, or one past the call's deadline,
    is raised as :class:`~hposerve.client.ResourceExhausted` at once."""

    def __repr__(self) -> str:
        # Secrets are shown as set or not, never as they are: configs end up in logs.
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "metadata":
                value = tuple((k, _HIDDEN if k.lower() == "authorization" else v) for k, v in value)
            elif value is not None and (
                f.name == "token"
                or (f.name == "client_key" and (isinstance(value, bytes) or "-----" in str(value)))
            ):
                value = _HIDDEN
            shown.append(f"{f.name}={value!r}")
        return f"ClientConfig({', '.join(shown)})"

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.timeout <= 0 or self.ask_timeout <= 0:
            raise ValueError("timeout and ask_timeout must be positive")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("initial_backoff and max_backoff must not be negative")
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be positive, got {self.heartbeat_interval}")
        if self.max_retry_delay < 0:
            raise ValueError(f"max_retry_delay must not be negative, got {self.max_retry_delay}")


class _Hidden:
    def __repr__(self) -> str:
        return "<hidden>"


_HIDDEN = _Hidden()

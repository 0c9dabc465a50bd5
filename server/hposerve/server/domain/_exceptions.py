"""Domain exceptions. The servicer maps each to one gRPC status in ``_errors``.

Every exception carries a message a person can act on and, where one input is at fault,
the name of that field (``field``), which becomes a google.rpc.BadRequest field violation.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors that the domain raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(DomainError):
    """The request is wrong whatever the state of the service (bad range, NaN, unknown sampler)."""


class NotFound(DomainError):
    """A named study or trial does not exist."""


class AlreadyExists(DomainError):
    """A study of that name exists and the caller did not ask to load it."""


class FailedPrecondition(DomainError):
    """The request is valid but the resource is not in a state that allows it."""


class PermissionDenied(DomainError):
    """The caller may not do this here; said alike whether or not the resource exists."""


class Unauthenticated(DomainError):
    """The call carries no valid identity (none, unknown, revoked or expired)."""


class ResourceExhausted(DomainError):
    """A namespace's quota would be exceeded: nothing was done; retry after ``retry_after``.

    Attributes:
        quota: Which quota (``studies``, ``running_trials``, ``asks_per_second``).
        retry_after: Seconds after which a retry may succeed.
    """

    def __init__(self, message: str, *, quota: str, retry_after: float) -> None:
        super().__init__(message, field=quota)
        self.quota = quota
        self.retry_after = retry_after

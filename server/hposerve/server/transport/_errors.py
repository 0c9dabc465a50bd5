"""One table from domain exceptions to gRPC status codes, with google.rpc details.

An error the caller caused gets its precise code and a ``BadRequest`` field violation (or an
``ErrorInfo``) naming the field; anything else is logged and answered INTERNAL without
internals in the message.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from hposerve.server.domain._exceptions import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)

_logger = logging.getLogger(__name__)

ERROR_DOMAIN = "hposerve.v1"

_CODES: dict[type[DomainError], int] = {
    InvalidArgument: code_pb2.INVALID_ARGUMENT,
    NotFound: code_pb2.NOT_FOUND,
    AlreadyExists: code_pb2.ALREADY_EXISTS,
    FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    PermissionDenied: code_pb2.PERMISSION_DENIED,
    Unauthenticated: code_pb2.UNAUTHENTICATED,
    ResourceExhausted: code_pb2.RESOURCE_EXHAUSTED,
}


def to_status(error: DomainError) -> status_pb2.Status:
    """The google.rpc.Status for a domain error."""
    code = next(c for cls, c in _CODES.items() if isinstance(error, cls))
    detail = any_pb2.Any()
    if isinstance(error, InvalidArgument):
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=error.field or "", description=error.message
                    )
                ]
            )
        )
    elif isinstance(error, FailedPrecondition):
        detail.Pack(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type="STATE", subject=error.field or "", description=error.message
                    )
                ]
            )
        )
    elif isinstance(error, ResourceExhausted):
        return _exhausted(error)
    else:
        detail.Pack(
            error_details_pb2.ErrorInfo(
                reason=type(error).__name__.upper(),
                domain=ERROR_DOMAIN,
                metadata={"field": error.field or ""},
            )
        )
    return status_pb2.Status(code=code, message=error.message, details=[detail])


def _exhausted(error: ResourceExhausted) -> status_pb2.Status:
    """RESOURCE_EXHAUSTED with when to retry (RetryInfo) and which quota (QuotaFailure)."""
    retry, quota = any_pb2.Any(), any_pb2.Any()
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(int(error.retry_after * 1e9), 1_000_000))
    retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    quota.Pack(
        error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=error.quota, description=error.message
                )
            ]
        )
    )
    return status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, message=error.message, details=[retry, quota]
    )


F = TypeVar("F", bound=Callable[..., Any])


def status_of(error: Exception, method: str) -> status_pb2.Status:
    """The status answering a call that raised ``error``; call it in the ``except`` block."""
    if isinstance(error, DomainError):
        return to_status(error)
    _logger.exception("%s failed", method)
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"{method} failed on the server")


def abort_args(error: Exception, method: str) -> tuple[grpc.StatusCode, str, Any]:
    """``context.abort(*abort_args(e, name))`` answers a call that raised ``e``.

    abort(), not abort_with_status(): the asyncio server's context for plain methods has only
    the former.
    """
    status = rpc_status.to_status(status_of(error, method))
    return status.code, status.details, status.trailing_metadata


def rpc(method: F) -> F:
    """Wraps a servicer method: domain errors become their status, others INTERNAL.

    The undecorated method stays reachable as ``__wrapped__`` (sessions call it directly).
    """

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as e:
            context.abort(*abort_args(e, method.__name__))

    return wrapper  # type: ignore[return-value]

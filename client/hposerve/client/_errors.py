"""The client's exceptions, and the one place where a gRPC error becomes one of them."""

from __future__ import annotations

import functools
from typing import Any

import grpc

from hposerve.v1 import study_service_pb2 as pb

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class HposerveError(Exception):
    """Base of every error the client raises for a failed call.

    Attributes:
        code: The gRPC status code.
        message: The server's (or the client's) explanation.
        field_violations: ``(field, description)`` pairs naming the inputs at fault, from a
            ``google.rpc.BadRequest`` status detail when the server sent one.
        details: Every decoded ``google.rpc`` status detail message.
        retry_delay: Seconds the server asked the client to wait before trying again, from a
            ``google.rpc.RetryInfo`` status detail; None when it sent none.
    """

    default_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        field_violations: list[tuple[str, str]] | None = None,
        details: list[Any] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code if code is not None else self.default_code
        self.message = message
        self.field_violations = list(field_violations or [])
        self.details = list(details or [])
        self.retry_delay = retry_delay

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.field_violations:
            text += " (" + "; ".join(f"{f}: {d}" for f, d in self.field_violations) + ")"
        return text


class InvalidArgument(HposerveError, ValueError):
    """The request is wrong whatever the state of the service (bad range, unknown sampler).

    A ``ValueError`` too, which Optuna raises for the same mistakes (code catching it works).
    """

    default_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(HposerveError):
    """The named study or trial does not exist."""

    default_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(HposerveError):
    """A study of that name exists and ``load_if_exists`` was not set."""

    default_code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(HposerveError, ValueError):
    """The resource is not in a state that allows the call (e.g. the trial is finished).

    A ``ValueError`` too, as Optuna raises for a tell of a finished trial or a best trial
    of a study with none complete.
    """

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(HposerveError):
    """The caller may not do this."""

    default_code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(HposerveError):
    """The caller did not prove who it is."""

    default_code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(HposerveError):
    """A quota of the namespace is used up (studies, running trials, asks per second).

    ``retry_delay`` is how long the server asked to wait, when it said. The client waits and
    retries by itself the calls that are safe to send again, within the call's deadline and
    ``ClientConfig.max_retry_delay``; this is raised when it did not (or retried enough).
    """

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(HposerveError):
    """The server could not be reached, even after retrying."""

    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(HposerveError):
    """The call did not finish within its deadline."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class ServerError(HposerveError):
    """Any other failure (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...)."""


class TrialPruned(Exception):  # noqa: N818 - the name Optuna users know
    """Raise from an objective to stop the trial early; ``Study.optimize`` tells it pruned.

    ``optuna.TrialPruned`` (or any exception class named ``TrialPruned``) works the same way.
    """


_BY_CODE: dict[grpc.StatusCode, type[HposerveError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def error_class(code: grpc.StatusCode) -> type[HposerveError]:
    """Returns the exception class for a gRPC status code."""
    return _BY_CODE.get(code, ServerError)


def from_rpc_error(error: grpc.RpcError) -> HposerveError:
    """Maps a failed gRPC call to our exception, decoding ``google.rpc`` details if possible."""
    code_fn = getattr(error, "code", None)
    code = code_fn() if callable(code_fn) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details_fn = getattr(error, "details", None)
    message = (details_fn() if callable(details_fn) else None) or str(error) or code.name
    trailing_fn = getattr(error, "trailing_metadata", None)
    trailing = (trailing_fn() if callable(trailing_fn) else None) or ()
    raw = next((value for key, value in trailing if key == _STATUS_DETAILS_KEY), None)
    try:
        details = pb.Status.FromString(raw).details if isinstance(raw, bytes) else ()
    except Exception:  # noqa: BLE001 - a malformed detail must not hide the real error
        details = ()
    return _error(code, message, details)


def from_status(status: pb.Status) -> HposerveError:
    """Maps an error answered inside a session (a google.rpc.Status) to our exception."""
    code = _CODES_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return _error(code, status.message or code.name, status.details)


def _error(code: grpc.StatusCode, message: str, details: Any) -> HposerveError:
    decoded: list[Any] = []
    violations: list[tuple[str, str]] = []
    retry_delay: float | None = None
    types = _detail_types() if details else {}
    for any_msg in details:
        message_type = types.get(any_msg.TypeName())
        if message_type is None:
            decoded.append(any_msg)
            continue
        detail = message_type()
        any_msg.Unpack(detail)
        decoded.append(detail)
        if detail.DESCRIPTOR.full_name == "google.rpc.BadRequest":
            violations.extend((v.field, v.description) for v in detail.field_violations)
        elif detail.DESCRIPTOR.full_name == "google.rpc.RetryInfo":
            retry_delay = max(0.0, detail.retry_delay.ToTimedelta().total_seconds())
    return error_class(code)(
        message,
        code=code,
        field_violations=violations,
        details=decoded,
        retry_delay=retry_delay,
    )


_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


@functools.cache
def _detail_types() -> dict[str, Any]:
    """The ``google.rpc`` detail messages by full name; empty without googleapis-common-protos.

    Imported on the first error that has details, so that the client loads only grpc and
    protobuf; without the package, details stay undecoded ``Any`` messages.
    """
    try:
        from google.rpc import error_details_pb2 as details
    except ImportError:  # pragma: no cover - depends on the environment
        return {}
    return {
        cls.DESCRIPTOR.full_name: cls
        for cls in (
            details.BadRequest,
            details.ErrorInfo,
            details.PreconditionFailure,
            details.ResourceInfo,
            details.RetryInfo,
            details.QuotaFailure,
            details.DebugInfo,
            details.Help,
            details.LocalizedMessage,
            details.RequestInfo,
        )
    }

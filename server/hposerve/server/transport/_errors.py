"""One table from domain exceptions to gRPC status codes, with google.rpc details.

An error the caller caused gets its precise code and a ``BadRequest`` field violation (or an
``ErrorInfo``) naming the field; anything else is logged and answered INTERNAL without
internals in the message.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2, unknown_fields
from google.protobuf.message import Message
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


# A message quotes the caller's input, which may be long (a 10,000-character name): it goes
# out twice (details, and the status in the trailers) and past gRPC's 8 KB metadata limit the
# client could not read the answer at all.
# Bytes of UTF-8: the details header percent-encodes each non-ASCII byte into three.
_MAX_MESSAGE = 600


def _clip(text: str) -> str:
    raw = text.encode()
    if len(raw) <= _MAX_MESSAGE:
        return text
    return raw[: _MAX_MESSAGE - 16].decode(errors="ignore") + "… (truncated)"


def to_status(error: DomainError) -> status_pb2.Status:
    """The google.rpc.Status for a domain error (its message cut to 600 bytes)."""
    code = next(c for cls, c in _CODES.items() if isinstance(error, cls))
    message, field = _clip(error.message), _clip(error.field or "")
    detail = any_pb2.Any()
    if isinstance(error, InvalidArgument):
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
                ]
            )
        )
    elif isinstance(error, FailedPrecondition):
        detail.Pack(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type="STATE", subject=field, description=message
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
                metadata={"field": field},
            )
        )
    return status_pb2.Status(code=code, message=message, details=[detail])


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


# -- requests that cannot be decoded ----------------------------------------------------------

# An undecodable request reaches the servicer as an empty request of its type carrying only
# this field (the highest number protobuf allows, which no hposerve message uses), whose bytes
# are why it could not be decoded. An empty request of the right type passes every
# interceptor as it is (auth, metrics, logs), and the guard or the session refuses it.
_UNDECODABLE_FIELD = 2**29 - 1


def undecodable_reason(request: Message) -> str | None:
    """Why ``request`` could not be decoded, if it stands for an undecodable one; else None."""
    if request.ListFields():  # a decoded request has fields set, nearly always: no scan
        return None
    for field in unknown_fields.UnknownFieldSet(request):
        if field.field_number == _UNDECODABLE_FIELD and isinstance(field.data, bytes):
            return field.data.decode(errors="replace")
    return None


# The tag of that field as a length-delimited one: varint(_UNDECODABLE_FIELD << 3 | 2).
_UNDECODABLE_TAG = b"\xfa\xff\xff\xff\x0f"


def _undecodable(request_type: Callable[[bytes], Message], error: Exception) -> Message:
    reason = f"{type(error).__name__}: {error}"[:100].encode()[:127]  # a one-byte length
    return request_type(_UNDECODABLE_TAG + bytes([len(reason)]) + reason)


def _safe_deserializer(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as e:  # the caller's bytes: never the server's fault
            return _undecodable(deserialize, e)

    return decode


def _refusal(reason: str) -> tuple[grpc.StatusCode, str, Any]:
    return abort_args(InvalidArgument(f"the request cannot be decoded ({reason})"), "decode")


def _guarded_unary(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: Any) -> Any:
            if (reason := undecodable_reason(request)) is not None:
                await context.abort(*_refusal(reason))
            async for response in behaviour(request, context):
                yield response

        return stream
    if inspect.iscoroutinefunction(behaviour):

        async def unary(request: Any, context: Any) -> Any:
            if (reason := undecodable_reason(request)) is not None:
                await context.abort(*_refusal(reason))
            return await behaviour(request, context)

        return unary

    def plain(request: Any, context: Any) -> Any:
        if (reason := undecodable_reason(request)) is not None:
            context.abort(*_refusal(reason))
        return behaviour(request, context)

    return plain


class DecodeGuard(grpc.aio.ServerInterceptor):
    """Answers a request that cannot be decoded INVALID_ARGUMENT, not UNKNOWN.

    gRPC decodes a request before any servicer code runs, and answers a decoding failure
    UNKNOWN with a traceback in the log (and ends a whole session). This interceptor, the
    innermost, gives each method a decoder that never raises: an undecodable request becomes
    an empty one marked as such (``undecodable_reason``), which a unary method answers
    INVALID_ARGUMENT here, and a session in-band (its stream goes on).
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        deserializer = _safe_deserializer(handler.request_deserializer)
        if handler.request_streaming:
            # Stream requests reach the servicer marked (the session answers them in-band).
            return handler._replace(request_deserializer=deserializer)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                _guarded_unary(handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            _guarded_unary(handler.unary_unary),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )

"""Seeing every call: one interceptor counts and times each RPC and logs it.

``ObservingInterceptor`` is the server's outermost interceptor, so that it sees every call
the way the caller does, auth refusals included: it records the method, the status code and
the latency (in ``Metrics`` when there are metrics), and logs one line per failed call (INFO,
WARNING for the server's own failures) and, at DEBUG, one per call, with the request id and
the principal. A session counts as one open session, and each of its messages as a call of
the unary method it stands for.

The principal is known only inside the auth interceptor; ``PrincipalProbe``, placed after it,
copies it into the call's record.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import grpc

from hposerve.server.domain._access import Principal
from hposerve.server.transport._access_rules import RULES, session_method
from hposerve.server.transport._auth import current_principal
from hposerve.server.transport._metrics import Metrics

__all__ = ["ObservingInterceptor", "PrincipalProbe"]

_logger = logging.getLogger("hposerve.rpc")
_SESSION = "/hposerve.v1.StudyService/Session"
_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


@dataclasses.dataclass(slots=True)
class _Call:
    """What is known of one call while it runs."""

    method: str
    request: Any = None  # described (request id, namespace) only when a log or metric needs it
    request_id: str = ""
    namespace: str = ""
    principal: str = ""
    code: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""


class _Identity(Protocol):
    def cached_token(self, secret: str) -> Principal | None: ...


_CURRENT: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "hposerve_call", default=None
)


def _describe(call: _Call) -> None:
    """Fills in what the request names: its request id and namespace."""
    request = call.request
    # A tell-and-ask carries its request id in its ask.
    carrier = getattr(request, "ask", request)
    call.request_id = str(getattr(carrier, "request_id", "") or "")
    rule = RULES.get(call.method)
    if rule is None or request is None:
        return
    try:
        named = rule.resources(request)
    except Exception:  # a request of another shape: nothing to say
        return
    for _, resource in named:
        if resource is not None and resource.namespace:
            call.namespace = resource.namespace
            return


class _Context:
    """A servicer context that remembers the code set or aborted with."""

    def __init__(self, context: Any, call: _Call) -> None:
        self._context = context
        self._call = call

    def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> Any:
        self._call.code, self._call.details = code, details
        return self._context.abort(code, details, trailing_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._call.code = code
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        self._call.details = details
        self._context.set_details(details)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """Counts, times and logs every unary call and every session message.

    Thread-safety: the plain handlers it wraps run on the server's pool, the async ones on its
    loop; ``Metrics`` and logging are thread-safe.

    Args:
        metrics: Where to count; None logs only.
        identity: With auth on, where a refused caller's principal is found (in the cache
            the auth interceptor has just filled), for the log line.
    """

    def __init__(self, metrics: Metrics | None, identity: _Identity | None = None) -> None:
        self._metrics = metrics
        self._identity = identity

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler
        if method == _SESSION and handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                self._session(handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.request_streaming or handler.response_streaming:
            return handler  # health's Watch, reflection: not counted
        behaviour = handler.unary_unary
        wrap = self._async_unary if inspect.iscoroutinefunction(behaviour) else self._sync_unary
        return grpc.unary_unary_rpc_method_handler(
            wrap(behaviour, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _sync_unary(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        def unary(request: Any, context: Any) -> Any:
            with self._observing(method, request, context) as observed:
                return behaviour(request, observed)

        return unary

    def _async_unary(
        self, behaviour: Callable[..., Any], method: str
    ) -> Callable[..., Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            with self._observing(method, request, context) as observed:
                return await behaviour(request, observed)

        return unary

    @contextlib.contextmanager
    def _observing(self, method: str, request: Any, context: Any) -> Iterator[_Context]:
        """Around one unary call: its record is current, and recorded when it ends."""
        call, started = _Call(method, request), time.perf_counter()
        token = _CURRENT.set(call)
        try:
            yield _Context(context, call)
        except BaseException:
            if call.code is grpc.StatusCode.OK:
                call.code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            with contextlib.suppress(ValueError):  # an async call may end in another context
                _CURRENT.reset(token)
            self._refused_principal(call, context)
            self._record(call, time.perf_counter() - started)

    def _session(
        self, behaviour: Callable[[Any, Any], AsyncIterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def session(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            # One answer per message, in order (the servicer's contract; auth relies on it too).
            pending: collections.deque[tuple[_Call, float]] = collections.deque()

            async def timed() -> AsyncIterator[Any]:
                async for request in requests:
                    kind = request.WhichOneof("call")
                    inner = getattr(request, kind) if kind else None
                    call = _Call(session_method(kind, inner) if kind else _SESSION, inner)
                    pending.append((call, time.perf_counter()))
                    yield request

            stream, opened = _Call(_SESSION), time.perf_counter()
            if self._metrics is not None:
                self._metrics.sessions_open.inc()
            try:
                async for response in behaviour(timed(), _Context(context, stream)):
                    if pending:
                        call, started = pending.popleft()
                        principal = current_principal()  # set by auth for the whole stream
                        call.principal = stream.principal = principal.name if principal else ""
                        if response.WhichOneof("result") == "error":
                            call.code = _BY_VALUE.get(response.error.code, grpc.StatusCode.UNKNOWN)
                            call.details = response.error.message
                        self._record(call, time.perf_counter() - started)
                    yield response
            except asyncio.CancelledError:
                stream.code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                if stream.code is grpc.StatusCode.OK:
                    stream.code = grpc.StatusCode.UNKNOWN
                raise
            finally:
                if self._metrics is not None:
                    self._metrics.sessions_open.dec()
                self._record(stream, time.perf_counter() - opened)

        return session

    def _refused_principal(self, call: _Call, context: Any) -> None:
        """Names the principal of a call auth refused (its servicer never ran)."""
        if call.code is not grpc.StatusCode.PERMISSION_DENIED or call.principal:
            return
        if self._identity is None:
            return
        for key, value in context.invocation_metadata() or ():
            scheme, _, secret = str(value).partition(" ")
            if key == "authorization" and scheme.lower() == "bearer":
                principal = self._identity.cached_token(secret.strip())
                call.principal = principal.name if principal else ""

    def _record(self, call: _Call, seconds: float) -> None:
        failed = call.code is not grpc.StatusCode.OK
        level = logging.DEBUG
        if failed:
            level = logging.WARNING if call.code in _SERVER_FAULTS else logging.INFO
        logged = _logger.isEnabledFor(level)
        if failed or logged:  # an OK call's metrics need no namespace: most calls skip this
            _describe(call)
        if self._metrics is not None:
            self._metrics.rpc(call.method, call.code, seconds, call.namespace)
        if not logged:
            return
        fields = {
            "method": call.method,
            "code": call.code.name,
            "latency_ms": round(seconds * 1000, 3),
            "request_id": call.request_id,
            "principal": call.principal,
            "namespace": call.namespace,
        }
        if failed:
            fields["details"] = call.details
        _logger.log(
            level,
            "rpc %s %s %.1fms request_id=%s principal=%s%s",
            call.method,
            call.code.name,
            seconds * 1000,
            call.request_id or "-",
            call.principal or "-",
            f": {call.details}" if failed and call.details else "",
            extra={"rpc": fields},
        )


class PrincipalProbe(grpc.aio.ServerInterceptor):
    """Placed after the auth interceptor: copies the call's principal into its record."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        behaviour = handler.unary_unary
        if inspect.iscoroutinefunction(behaviour):

            async def async_unary(request: Any, context: Any) -> Any:
                _note_principal()
                return await behaviour(request, context)

            unary: Callable[..., Any] = async_unary
        else:

            def unary(request: Any, context: Any) -> Any:
                _note_principal()
                return behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _note_principal() -> None:
    call, principal = _CURRENT.get(), current_principal()
    if call is not None and principal is not None:
        call.principal = principal.name

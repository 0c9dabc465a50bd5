"""Authentication and authorization of every call, in one server interceptor.

A call is authenticated from ``authorization: Bearer <token>`` metadata, or else (when the
server trusts client certificates: mTLS) from the peer certificate's subject. Then the request
*message* is authorized before the servicer sees it, by the rule that ``_access_rules`` gives
its method: the resource its field names, and the action. On a session, the stream is
authenticated when it opens and every message is authorized as its unary RPC would be (and
re-authenticated from the cache, so that a revoked token stops within seconds); a refused
message is answered in-band, like any other error of a session call, and the stream goes on.

Health and reflection are open; an RPC without a rule is refused. The caller's principal is
``current_principal()`` while the servicer runs (lists show only what it may see). Every
mutation and every refusal is appended to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol

import grpc

from hposerve.server.domain._access import (
    PermissionDenied,
    Principal,
    Resource,
    Unauthenticated,
    check,
)
from hposerve.server.domain._admin import AuditRecord
from hposerve.server.domain._exceptions import DomainError
from hposerve.server.transport._access_rules import OPEN_SERVICES, RULES, Rule, session_method
from hposerve.server.transport._gate import SESSION, gated_session
from hposerve.v1 import study_service_pb2 as pb

__all__ = ["AuthInterceptor", "Authenticator", "current_principal"]

_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "hposerve_principal", default=None
)
_CODES = {
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}


def current_principal() -> Principal | None:
    """The principal of the call being served; None when auth is off."""
    return _PRINCIPAL.get()


class _Audit(Protocol):
    def append(self, record: AuditRecord) -> None: ...


class Authenticator(Protocol):
    """What the interceptor needs of the identity store (``IdentityStore`` is one)."""

    @property
    def audit(self) -> _Audit: ...

    def cached_token(self, secret: str) -> Principal | None: ...

    def authenticate_token(self, secret: str) -> Principal: ...

    def cached_principal(self, name: str) -> Principal | None: ...

    def principal_named(self, name: str) -> Principal: ...


# (bearer secret, certificate principal name): what a call presents.
Credentials = tuple[str | None, str | None]


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates and authorizes every call of a ``grpc.aio`` server.

    Thread-safety: the wrapped plain handlers run on the server's pool, the async ones on its
    loop; the identity store's lookups are thread-safe, and the rule table is read-only.

    Args:
        identity: Where tokens and principals are looked up, and the audit log.
        trust_certificates: The server verifies client certificates (mTLS): a certificate's
            subject is a principal (``certificates/{subject}``).
        rules: Full method name -> its rule.
    """

    def __init__(
        self,
        identity: Authenticator,
        *,
        trust_certificates: bool = False,
        rules: Mapping[str, Rule] = RULES,
    ) -> None:
        self._identity = identity
        self._trust_certificates = trust_certificates
        self._rules = rules

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.lstrip("/").split("/", 1)[0] in OPEN_SERVICES:
            return handler
        rule = self._rules.get(method)
        if rule is None:
            return _refusing(handler, method, self._identity.audit)
        if handler.request_streaming and handler.response_streaming and method == SESSION:
            return grpc.stream_stream_rpc_method_handler(
                self._session(handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.request_streaming or handler.response_streaming:
            return _refusing(handler, method, self._identity.audit)
        behaviour = handler.unary_unary
        wrap = self._async_unary if inspect.iscoroutinefunction(behaviour) else self._sync_unary
        return grpc.unary_unary_rpc_method_handler(
            wrap(behaviour, method, rule),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    # -- identity ------------------------------------------------------------------------------

    def _credentials(self, context: Any) -> Credentials:
        secret = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                scheme, _, token = str(value).partition(" ")
                secret = token.strip() if scheme.lower() == "bearer" else ""
        subject = None
        if self._trust_certificates:
            auth = context.auth_context()
            if auth.get("x509_subject"):
                subject = auth["x509_subject"][0].decode()
            elif auth.get("x509_common_name"):
                subject = "CN=" + auth["x509_common_name"][0].decode()
        return secret, f"certificates/{subject}" if subject else None

    def _lookup(self, credentials: Credentials) -> Principal:
        """The principal presenting ``credentials`` (may wait for the database)."""
        secret, certificate = credentials
        if secret is not None:
            return self._identity.authenticate_token(secret)
        if certificate is not None:
            return self._identity.principal_named(certificate)
        raise Unauthenticated("this server needs a token: send authorization: Bearer hps_...")

    async def _principal(self, credentials: Credentials) -> Principal:
        """``_lookup`` from the cache on the loop, else on a thread (the loop never waits)."""
        secret, certificate = credentials
        if secret is not None:
            found = self._identity.cached_token(secret)
        elif certificate is not None:
            found = self._identity.cached_principal(certificate)
        else:
            found = None
        if found is not None:
            return found
        return await asyncio.get_running_loop().run_in_executor(None, self._lookup, credentials)

    # -- unary calls ---------------------------------------------------------------------------

    def _sync_unary(
        self, behaviour: Callable[..., Any], method: str, rule: Rule
    ) -> Callable[[Any, Any], Any]:
        def unary(request: Any, context: Any) -> Any:
            principal: Principal | None = None
            try:
                principal = self._lookup(self._credentials(context))
                named = self._authorize(principal, rule, request)
            except (Unauthenticated, PermissionDenied) as e:
                self._audit_refusal(principal, method, request, rule, e)
                context.abort(_CODES[type(e)], e.message)
            with self._serving(principal, method, request, named, rule, context) as served:
                return behaviour(request, served)

        return unary

    def _async_unary(
        self, behaviour: Callable[..., Any], method: str, rule: Rule
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            principal: Principal | None = None
            try:
                principal = await self._principal(self._credentials(context))
                named = self._authorize(principal, rule, request)
            except (Unauthenticated, PermissionDenied) as e:
                self._audit_refusal(principal, method, request, rule, e)
                await context.abort(_CODES[type(e)], e.message)
            with self._serving(principal, method, request, named, rule, context) as served:
                return await behaviour(request, served)

        return unary

    @contextlib.contextmanager
    def _serving(
        self,
        principal: Principal | None,
        method: str,
        request: Any,
        named: list[tuple[str, Resource | None]],
        rule: Rule,
        context: Any,
    ) -> Iterator[Any]:
        """While the servicer serves an authorized call: the principal is current, and the
        context it is given records the outcome of a mutation, audited at the end."""
        token = _PRINCIPAL.set(principal)
        try:
            if not rule.mutates:
                yield context
                return
            recording = _Recording(context)
            try:
                yield recording
            except BaseException:
                self._audit(principal, method, request, named, recording.outcome(failed=True))
                raise
            self._audit(principal, method, request, named, recording.outcome())
        finally:
            with contextlib.suppress(ValueError):  # an async call may end in another context
                _PRINCIPAL.reset(token)

    def _authorize(
        self, principal: Principal, rule: Rule, request: Any
    ) -> list[tuple[str, Resource | None]]:
        """Raises PermissionDenied unless ``principal`` may make this request."""
        named = rule.resources(request)
        if rule.action is not None:
            # A name of no known shape is passed on: the servicer rejects it, having done nothing.
            check(principal, rule.action, [r for _, r in named if r is not None])
        return named

    # -- sessions ------------------------------------------------------------------------------

    def _session(
        self, behaviour: Callable[[Any, Any], AsyncIterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def session(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            credentials = self._credentials(context)
            try:
                principal = await self._principal(credentials)
            except Unauthenticated as e:
                self._audit_refusal(None, SESSION, None, None, e)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, e.message)
            token = _PRINCIPAL.set(principal)
            try:
                check = functools.partial(self._check_message, credentials)
                async for response in gated_session(behaviour, requests, context, check):
                    yield response
            finally:
                with contextlib.suppress(ValueError):
                    _PRINCIPAL.reset(token)

        return session

    async def _check_message(
        self, credentials: Credentials, request: pb.SessionRequest
    ) -> tuple[pb.SessionResponse | None, Callable[[str], None] | None]:
        """(the in-band refusal of a message or None, how to audit its outcome or None)."""
        call = request.WhichOneof("call")
        if call is None:
            return None, None
        inner = getattr(request, call)
        method = session_method(call, inner)
        rule = self._rules.get(method)
        principal: Principal | None = None
        try:
            principal = await self._principal(credentials)  # revoked since the stream opened?
            if rule is None:
                raise PermissionDenied(f"{method} has no access rule")
            named = self._authorize(principal, rule, inner)
        except (Unauthenticated, PermissionDenied) as e:
            self._audit_refusal(principal, method, inner, rule, e)
            status = pb.Status(code=_CODES[type(e)].value[0], message=e.message)
            return pb.SessionResponse(error=status), None
        if not rule.mutates:
            return None, None
        return None, lambda outcome: self._audit(principal, method, inner, named, outcome)

    # -- audit ---------------------------------------------------------------------------------

    def _audit(
        self,
        principal: Principal | None,
        method: str,
        request: Any,
        named: list[tuple[str, Resource | None]],
        outcome: str,
    ) -> None:
        name, resource = named[0] if named else ("", None)
        self._identity.audit.append(
            AuditRecord(
                time=time.time(),
                principal=principal.name if principal else "",
                namespace=(resource.namespace or "") if resource else "",
                method=method,
                resource=name,
                request_id=getattr(request, "request_id", "") if request is not None else "",
                outcome=outcome,
            )
        )

    def _audit_refusal(
        self,
        principal: Principal | None,
        method: str,
        request: Any,
        rule: Rule | None,
        error: DomainError,
    ) -> None:
        named = rule.resources(request) if rule is not None and request is not None else []
        self._audit(principal, method, request, named, _CODES[type(error)].name)


class _Recording:
    """A servicer context that remembers the status code the servicer set or aborted with."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._code: grpc.StatusCode | None = None

    def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> Any:
        self._code = code
        return self._context.abort(code, details, trailing_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code
        self._context.set_code(code)

    def outcome(self, *, failed: bool = False) -> str:
        """The code's name: the one set, else UNKNOWN if the call raised, else OK."""
        if self._code is not None:
            return self._code.name
        return "UNKNOWN" if failed else "OK"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _refusing(handler: grpc.RpcMethodHandler, method: str, audit: _Audit) -> grpc.RpcMethodHandler:
    """A handler of ``handler``'s shape that refuses every call (an RPC with no rule)."""
    message = f"{method} has no access rule: refused"

    async def refuse(request: Any, context: Any) -> Any:
        audit.append(AuditRecord(time.time(), "", "", method, "", "", "PERMISSION_DENIED"))
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

    shape = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return shape(
        refuse,  # type: ignore[arg-type]
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )

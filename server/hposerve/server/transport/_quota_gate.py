"""The quotas of ``domain._quotas`` enforced on the calls they bound, in one server interceptor.

A call that would exceed its namespace's quota is answered RESOURCE_EXHAUSTED (with RetryInfo
and QuotaFailure) before the servicer sees it: nothing is done. A refused ask is answered after
0.1 s (a tarpit): one team asking in a tight loop cannot turn its refusals into load that
starves the others. A refused session message is
answered in-band and the stream goes on. The other calls pass untouched. With auth on, this
interceptor runs inside the auth one: only authorized calls are counted, and a refusal here is
audited there with its outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from hposerve.server.domain._access import parse_resource
from hposerve.server.domain._exceptions import ResourceExhausted
from hposerve.server.domain._names import StudyRef
from hposerve.server.domain._quotas import Quotas
from hposerve.server.transport._errors import abort_args, status_of
from hposerve.server.transport._gate import SESSION, gated_session
from hposerve.v1 import study_service_pb2 as pb

__all__ = ["TARPIT", "QuotaInterceptor"]

TARPIT = 0.1  # seconds a refused ask waits for its answer at most


@dataclasses.dataclass(frozen=True)
class _Bound:
    """What a call takes from its namespace's quotas."""

    namespace: str
    asks: int = 0
    studies: int = 0
    loading: StudyRef | None = None


def _namespace(name: str) -> str | None:
    resource = parse_resource(name)
    return resource.namespace if resource is not None else None


def _create_study(request: Any) -> _Bound | None:
    namespace = _namespace(request.parent)
    if namespace is None:
        return None
    loading = StudyRef(namespace, request.study_id) if request.load_if_exists else None
    return _Bound(namespace, studies=1, loading=loading)


def _ask(field: str, count: Callable[[Any], int]) -> Callable[[Any], _Bound | None]:
    def bound(request: Any) -> _Bound | None:
        namespace = _namespace(getattr(request, field))
        return _Bound(namespace, asks=count(request)) if namespace is not None else None

    return bound


def _create_comparison(request: Any) -> _Bound | None:
    namespace = _namespace(request.parent)
    studies = max(len(request.arms), 1) * max(request.seeds, 1)  # one study per arm and seed
    return _Bound(namespace, studies=studies) if namespace is not None else None


_ASK_TRIALS = _ask("parent", lambda r: max(r.count, 1))


def _tell_and_ask(request: Any) -> _Bound | None:
    return _ASK_TRIALS(request.ask)  # refused whole: the client then tells alone, and asks


# Full method name -> what a request of it takes (None: a name the servicer will reject).
BOUNDS: dict[str, Callable[[Any], _Bound | None]] = {
    "/hposerve.v1.StudyService/CreateStudy": _create_study,
    "/hposerve.v1.StudyService/AskTrials": _ASK_TRIALS,
    "/hposerve.v1.StudyService/TellAndAsk": _tell_and_ask,
    "/hposerve.v1.ComparisonService/CreateComparison": _create_comparison,
    "/hposerve.v1.ComparisonService/AskComparisonTrial": _ask("comparison", lambda r: 1),
}


class QuotaInterceptor(grpc.aio.ServerInterceptor):
    """Refuses the calls that would exceed a namespace's quota.

    Thread-safety: the quotas are thread-safe; a check that reads a database runs on a
    thread, never on the event loop.
    """

    def __init__(self, quotas: Quotas) -> None:
        self._quotas = quotas

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if method == SESSION and handler.request_streaming and handler.response_streaming:
            behaviour = handler.stream_stream

            async def session(requests: Any, context: Any) -> Any:
                async for response in gated_session(behaviour, requests, context, self._check):
                    yield response

            return grpc.stream_stream_rpc_method_handler(
                session,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        bound = BOUNDS.get(method)
        if bound is None or handler.request_streaming or handler.response_streaming:
            return handler
        inner = handler.unary_unary
        wrap = self._async_unary if inspect.iscoroutinefunction(inner) else self._sync_unary
        return grpc.unary_unary_rpc_method_handler(
            wrap(inner, method, bound),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _admit(self, bound: _Bound | None) -> None:
        if bound is None:
            return
        if bound.studies:
            self._quotas.admit_studies(bound.namespace, bound.studies, loading=bound.loading)
        if bound.asks:
            self._quotas.admit_asks(bound.namespace, bound.asks)

    async def _admit_async(self, bound: _Bound | None) -> None:
        """``_admit`` in place when it needs no database, else on a thread. A refusal is
        answered after ``TARPIT`` seconds: a client that asks again at once, as fast as it
        can, then costs the server a timer, not a core."""
        if bound is None:
            return
        try:
            if bound.studies or self._quotas.needs_io(bound.namespace):
                await asyncio.get_running_loop().run_in_executor(None, self._admit, bound)
            else:
                self._admit(bound)
        except ResourceExhausted:
            await asyncio.sleep(TARPIT)
            raise

    def _sync_unary(
        self, behaviour: Callable[..., Any], method: str, bound: Callable[[Any], _Bound | None]
    ) -> Callable[[Any, Any], Any]:
        def unary(request: Any, context: Any) -> Any:
            try:
                self._admit(bound(request))
            except ResourceExhausted as e:
                context.abort(*abort_args(e, method))
            return behaviour(request, context)

        return unary

    def _async_unary(
        self, behaviour: Callable[..., Any], method: str, bound: Callable[[Any], _Bound | None]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            try:
                await self._admit_async(bound(request))
            except ResourceExhausted as e:
                await context.abort(*abort_args(e, method))
            return await behaviour(request, context)

        return unary

    async def _check(
        self, request: pb.SessionRequest
    ) -> tuple[pb.SessionResponse | None, Callable[[str], None] | None]:
        call = request.WhichOneof("call")
        if call not in ("ask_trials", "tell_and_ask"):
            return None, None
        ask = request.ask_trials if call == "ask_trials" else request.tell_and_ask.ask
        try:
            await self._admit_async(_ASK_TRIALS(ask))
        except ResourceExhausted as e:
            method = "AskTrials" if call == "ask_trials" else "TellAndAsk"
            status = pb.Status.FromString(status_of(e, method).SerializeToString())
            return pb.SessionResponse(error=status), None
        return None, None

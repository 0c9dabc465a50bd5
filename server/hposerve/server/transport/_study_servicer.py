"""The StudyService servicer: unpack the request, make one domain call, pack the answer.

It holds no domain state (only which sessions are open); errors are mapped in ``_errors``.
Trial calls (ask, suggest, report, should-prune, tell, set attributes), over a session or as
unary RPCs, run on the server's event loop when quick (the registry says which are) and on its
thread pool otherwise; so does a heartbeat sent on a session. The other methods (and the
unary Heartbeat) are plain functions the server runs on the pool.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2

from hposerve.server.domain import InvalidArgument, NotFound, StudyInfo, StudyRef, StudyRegistry
from hposerve.server.domain import _names as names
from hposerve.server.domain._access import visible_studies
from hposerve.server.transport import _converters as conv
from hposerve.server.transport._auth import current_principal
from hposerve.server.transport._call_threads import CallThreads
from hposerve.server.transport._errors import abort_args, rpc, status_of, undecodable_reason
from hposerve.server.transport._trial_calls import TrialCalls, report_refs
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc

F = TypeVar("F", bound=Callable[..., Any])
_STUDY_PAGE = {"default": 100, "maximum": 1000}
_TRIAL_PAGE = {"default": 1000, "maximum": 10_000}


def trial_call(method: F) -> F:
    """Makes a trial call (one a session can carry) an async RPC served like a session call.

    The plain method stays reachable as ``__wrapped__``; errors become their status.
    """

    @functools.wraps(method)
    async def unary(self: StudyServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await self._dispatch(method, request, context)
        except Exception as e:
            await context.abort(*abort_args(e, method.__name__))

    return unary  # type: ignore[return-value]


class StudyServicer(study_service_pb2_grpc.StudyServiceServicer):
    """Serves a ``StudyRegistry`` over gRPC."""

    def __init__(self, registry: StudyRegistry, *, pool: CallThreads, max_sessions: int) -> None:
        self._registry = registry
        self._max_sessions = max_sessions
        # Open sessions (touched on the event loop only): each one's task, and whether it is
        # serving a call, so that a stop ends the idle ones now.
        self._open: dict[asyncio.Task[object], bool] = {}
        self._stopping = False
        self._calls = TrialCalls(registry, pool)

    def close_sessions(self) -> None:
        """Ends the idle sessions now and the busy ones after their current call (on the loop)."""
        self._stopping = True
        for task, busy in list(self._open.items()):
            if not busy:
                task.cancel()

    @rpc
    def CreateStudy(
        self, request: pb.CreateStudyRequest, context: grpc.ServicerContext
    ) -> pb.Study:
        namespace = names.namespace_from_name(request.parent)
        info = self._registry.create_study(
            StudyRef(namespace, request.study_id),
            directions=conv.directions_from_proto(request.directions),
            sampler=request.sampler if request.HasField("sampler") else None,
            pruner=request.pruner if request.HasField("pruner") else None,
            options=conv.options_from_proto(request.options),
            load_if_exists=request.load_if_exists,
            request_id=request.request_id,
        )
        return conv.study_to_proto(info)

    @rpc
    def GetStudy(self, request: pb.GetStudyRequest, context: grpc.ServicerContext) -> pb.Study:
        return conv.study_to_proto(
            self._registry.get_study(names.study_ref_from_name(request.name))
        )

    @rpc
    def ListStudies(
        self, request: pb.ListStudiesRequest, context: grpc.ServicerContext
    ) -> pb.ListStudiesResponse:
        limit = conv.page_size(request.page_size, **_STUDY_PAGE)
        infos = self._list_visible(
            names.namespace_from_name(request.parent),
            after=conv.decode_page_token(request.page_token, ""),
            limit=limit + 1,
        )
        infos, token = conv.page(infos, limit, lambda info: info.ref.study)
        return pb.ListStudiesResponse(
            studies=[conv.study_to_proto(i) for i in infos], next_page_token=token
        )

    def _list_visible(self, namespace: str, *, after: str, limit: int) -> list[StudyInfo]:
        """The studies of ``namespace`` the caller may see, in name order, after ``after``:
        filtered before paging, so that a page is full and a hidden name never shows."""
        visible = visible_studies(current_principal(), namespace)
        if visible.everything:
            return self._registry.list_studies(namespace, after=after, limit=limit)
        infos: list[StudyInfo] = []
        for study in sorted(n for n in visible.names if n > after):
            if len(infos) == limit:
                break
            try:
                infos.append(self._registry.get_study(StudyRef(namespace, study)))
            except (NotFound, InvalidArgument):
                continue  # shared before it was created, or deleted since
        return infos

    @rpc
    def DeleteStudy(
        self, request: pb.DeleteStudyRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._registry.delete_study(
            names.study_ref_from_name(request.name), request_id=request.request_id
        )
        return empty_pb2.Empty()

    @trial_call
    def AskTrials(
        self, request: pb.AskTrialsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AskTrialsResponse:
        records = self._registry.ask(
            names.study_ref_from_name(request.parent, "parent"),
            search_space=conv.search_space_from_proto(request.search_space),
            count=request.count or 1,
            request_id=request.request_id,
        )
        return pb.AskTrialsResponse(trials=[conv.trial_to_proto(r) for r in records])

    @trial_call
    def SuggestParameter(
        self, request: pb.SuggestParameterRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuggestParameterResponse:
        name, distribution = conv.parameter_from_proto(request.parameter, "parameter")
        value = self._registry.suggest(names.trial_ref_from_name(request.trial), name, distribution)
        return pb.SuggestParameterResponse(value=conv.param_value_to_proto(value, distribution))

    @trial_call
    def ReportIntermediateValue(
        self, request: pb.ReportIntermediateValueRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportIntermediateValueResponse:
        prune = self._registry.report(
            names.trial_ref_from_name(request.trial), step=request.step, value=request.value
        )
        return pb.ReportIntermediateValueResponse(should_prune=prune)

    @trial_call
    def ReportIntermediateValues(
        self, request: pb.ReportIntermediateValuesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportIntermediateValuesResponse:
        # Every name is checked before the first report is applied (auth checked every trial
        # already); then each report as ReportIntermediateValue applies it, stopping at the
        # first error, which is the answer.
        refs = report_refs(request)
        for ref, report in zip(refs, request.reports, strict=True):
            self._registry.report(ref, step=report.step, value=report.value)
        return pb.ReportIntermediateValuesResponse()

    @trial_call
    def ShouldPrune(
        self, request: pb.ShouldPruneRequest, context: grpc.aio.ServicerContext
    ) -> pb.ShouldPruneResponse:
        prune = self._registry.should_prune(names.trial_ref_from_name(request.trial))
        return pb.ShouldPruneResponse(should_prune=prune)

    @trial_call
    def TellTrial(
        self, request: pb.TellTrialRequest, context: grpc.aio.ServicerContext
    ) -> pb.Trial:
        record = self._registry.tell(names.trial_ref_from_name(request.trial), **_tell(request))
        return conv.trial_to_proto(record)

    @trial_call
    def TellAndAsk(
        self, request: pb.TellAndAskRequest, context: grpc.aio.ServicerContext
    ) -> pb.TellAndAskResponse:
        return _tell_and_ask(self._registry, request)

    @rpc
    def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.ServicerContext
    ) -> pb.HeartbeatResponse:
        refs = [names.trial_ref_from_name(t, f"trials[{i}]") for i, t in enumerate(request.trials)]
        records = self._registry.heartbeat(refs)
        return pb.HeartbeatResponse(
            leases=[
                pb.LeaseStatus(
                    trial=name,
                    running=record is not None,
                    expire_time=conv.timestamp(record.lease_expires if record else None),
                )
                for name, record in zip(request.trials, records, strict=True)
            ]
        )

    @rpc
    def GetTrial(self, request: pb.GetTrialRequest, context: grpc.ServicerContext) -> pb.Trial:
        return conv.trial_to_proto(
            self._registry.get_trial(names.trial_ref_from_name(request.name, "name"))
        )

    @rpc
    def ListTrials(
        self, request: pb.ListTrialsRequest, context: grpc.ServicerContext
    ) -> pb.ListTrialsResponse:
        limit = conv.page_size(request.page_size, **_TRIAL_PAGE)
        records = self._registry.list_trials(
            names.study_ref_from_name(request.parent, "parent"),
            states=[conv.state_from_proto(s, "states") for s in request.states],
            after=conv.decode_page_token(request.page_token, -1),
            limit=limit + 1,
        )
        records, token = conv.page(records, limit, lambda record: record.ref.number)
        return pb.ListTrialsResponse(
            trials=[conv.trial_to_proto(r) for r in records], next_page_token=token
        )

    @rpc
    def EnqueueTrial(
        self, request: pb.EnqueueTrialRequest, context: grpc.ServicerContext
    ) -> pb.Trial:
        record = self._registry.enqueue(
            names.study_ref_from_name(request.parent, "parent"),
            params=conv.params_from_proto(request.params),
            user_attrs=conv.user_attrs_from(request),
            skip_if_exists=request.skip_if_exists,
            request_id=request.request_id,
        )
        return conv.trial_to_proto(record) if record else pb.Trial()

    @trial_call
    def SetTrialUserAttributes(
        self, request: pb.SetTrialUserAttributesRequest, context: grpc.aio.ServicerContext
    ) -> pb.Trial:
        record = self._registry.set_user_attrs(
            names.trial_ref_from_name(request.trial), conv.user_attrs_from(request)
        )
        return conv.trial_to_proto(record)

    @rpc
    def GetBestTrial(
        self, request: pb.GetBestTrialRequest, context: grpc.ServicerContext
    ) -> pb.Trial:
        ref = names.study_ref_from_name(request.parent, "parent")
        return conv.trial_to_proto(self._registry.best_trial(ref))

    @rpc
    def GetParetoFront(
        self, request: pb.GetParetoFrontRequest, context: grpc.ServicerContext
    ) -> pb.GetParetoFrontResponse:
        records = self._registry.pareto_front(names.study_ref_from_name(request.parent, "parent"))
        return pb.GetParetoFrontResponse(trials=[conv.trial_to_proto(r) for r in records])

    @rpc
    def AddTrials(
        self, request: pb.AddTrialsRequest, context: grpc.ServicerContext
    ) -> pb.AddTrialsResponse:
        records = self._registry.add_trials(
            names.study_ref_from_name(request.parent, "parent"),
            [conv.added_trial_from_proto(t, f"trials[{i}]") for i, t in enumerate(request.trials)],
            request_id=request.request_id,
        )
        return pb.AddTrialsResponse(trials=[conv.trial_to_proto(r) for r in records])

    @rpc
    def GetStudyAttributes(
        self, request: pb.GetStudyAttributesRequest, context: grpc.ServicerContext
    ) -> pb.StudyAttributes:
        attrs = self._registry.study_attributes(names.study_ref_from_name(request.name))
        return conv.study_attrs_to_proto(attrs)

    @rpc
    def UpdateStudyAttributes(
        self, request: pb.UpdateStudyAttributesRequest, context: grpc.ServicerContext
    ) -> pb.StudyAttributes:
        user_attrs = {}
        if request.user_attrs_json:
            user_attrs = conv.attrs_from_json(request.user_attrs_json, "user_attrs_json")
        attrs = self._registry.update_study_attributes(
            names.study_ref_from_name(request.name),
            user_attrs=user_attrs,
            metric_names=request.metric_names,
        )
        return conv.study_attrs_to_proto(attrs)

    async def Session(
        self, requests: AsyncIterator[pb.SessionRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SessionResponse]:
        if len(self._open) >= self._max_sessions:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "no session free; use unary calls"
            )
        task = asyncio.current_task()
        assert task is not None
        self._open[task] = False
        try:
            async for request in requests:
                self._open[task] = True
                yield await self._session_call(request, context)
                self._open[task] = False
                if self._stopping:
                    return
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Ended by close_sessions while idle: close the stream with OK, so the client
            # knows at once to send its next call elsewhere.
        finally:
            self._open.pop(task, None)

    async def _session_call(
        self, request: pb.SessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.SessionResponse:
        call = request.WhichOneof("call")
        try:
            if call is None:
                raise _no_call(request)
            result = await self._dispatch(_SESSION_CALLS[call], getattr(request, call), context)
            return pb.SessionResponse(**{call: result})
        except Exception as e:  # answered in-band: the stream goes on
            status = status_of(e, call or "Session")
            return pb.SessionResponse(error=pb.Status.FromString(status.SerializeToString()))

    async def _dispatch(
        self, method: Callable[..., Any], request: Any, context: grpc.aio.ServicerContext
    ) -> Any:
        return await self._calls.run(self, method, request, context)


def _no_call(request: pb.SessionRequest) -> InvalidArgument:
    """The error answering a session message that names no call, or could not be decoded."""
    reason = undecodable_reason(request)
    if reason is not None:  # framed apart from the next message: the stream goes on
        return InvalidArgument(f"the session message cannot be decoded ({reason})", field="call")
    return InvalidArgument("a session request names no call", field="call")


# Session call (a SessionRequest field) -> the plain method that serves it.
_SESSION_CALLS = {
    field.name: getattr(StudyServicer, field.message_type.name.removesuffix("Request")).__wrapped__
    for field in pb.SessionRequest.DESCRIPTOR.oneofs_by_name["call"].fields
}


def _tell(request: pb.TellTrialRequest) -> dict[str, Any]:
    """The registry's ``tell`` arguments of a tell request."""
    return {
        "state": conv.state_from_proto(request.state),
        "values": request.values,
        "constraints": dict(request.constraints),
        "reports": [(r.step, r.value) for r in request.intermediate_values],
    }


def _tell_and_ask(registry: StudyRegistry, request: pb.TellAndAskRequest) -> pb.TellAndAskResponse:
    """Serves TellAndAsk: the ask must name the told trial's study; an ask refused once the
    tell is recorded is answered in ``ask_error``."""
    tell, ask = request.tell, request.ask
    ref = names.trial_ref_from_name(tell.trial, "tell.trial")
    if names.study_ref_from_name(ask.parent, "ask.parent") != ref.study:
        raise InvalidArgument(
            f"ask.parent must be the told trial's study {ref.study}, got {ask.parent!r}",
            field="ask.parent",
        )
    told, asked = registry.tell_and_ask(
        ref,
        **_tell(tell),
        search_space=conv.search_space_from_proto(ask.search_space, "ask.search_space"),
        count=ask.count or 1,
        request_id=ask.request_id,
    )
    response = pb.TellAndAskResponse(told=conv.trial_to_proto(told))
    if isinstance(asked, Exception):
        response.ask_error.ParseFromString(status_of(asked, "TellAndAsk").SerializeToString())
    else:
        response.asked.extend(conv.trial_to_proto(r) for r in asked)
    return response

"""The StudyService servicer: unpack the request, make one domain call, pack the answer.

It holds no state of its own; errors are mapped in ``_errors``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
from google.protobuf import empty_pb2

from hposerve.server import _converters as conv
from hposerve.server._errors import rpc, status_of
from hposerve.server._exceptions import InvalidArgument
from hposerve.server._studies import StudyRegistry
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc

_STUDY_PAGE = {"default": 100, "maximum": 1000}
_TRIAL_PAGE = {"default": 1000, "maximum": 10_000}


class StudyServicer(study_service_pb2_grpc.StudyServiceServicer):
    """Serves a ``StudyRegistry`` over gRPC."""

    def __init__(self, registry: StudyRegistry, *, max_sessions: int = 64) -> None:
        self._registry = registry
        # A session holds a server thread for its lifetime: past this many, clients are told
        # RESOURCE_EXHAUSTED and fall back to unary calls, so unary calls always find a thread.
        self._sessions = threading.BoundedSemaphore(max_sessions)
        # Open sessions, and whether each is serving a call, so that a stop ends idle ones now.
        self._open: dict[grpc.ServicerContext, bool] = {}
        self._open_lock = threading.Lock()
        self._stopping = threading.Event()

    def close_sessions(self) -> None:
        """Ends the idle sessions now and the busy ones after their current call."""
        self._stopping.set()
        with self._open_lock:
            idle = [context for context, busy in self._open.items() if not busy]
        for context in idle:
            context.cancel()

    @rpc
    def CreateStudy(self, request: pb.CreateStudyRequest, context) -> pb.Study:
        namespace = conv.namespace_from_name(request.parent)
        info = self._registry.create_study(
            conv.StudyRef(namespace, request.study_id),
            directions=conv.directions_from_proto(request.directions),
            sampler=request.sampler if request.HasField("sampler") else None,
            pruner=request.pruner if request.HasField("pruner") else None,
            options=conv.options_from_proto(request.options),
            load_if_exists=request.load_if_exists,
            request_id=request.request_id,
        )
        return conv.study_to_proto(info)

    @rpc
    def GetStudy(self, request: pb.GetStudyRequest, context) -> pb.Study:
        return conv.study_to_proto(self._registry.get_study(conv.study_ref_from_name(request.name)))

    @rpc
    def ListStudies(self, request: pb.ListStudiesRequest, context) -> pb.ListStudiesResponse:
        limit = conv.page_size(request.page_size, **_STUDY_PAGE)
        infos = self._registry.list_studies(
            conv.namespace_from_name(request.parent),
            after=conv.decode_page_token(request.page_token, ""),
            limit=limit + 1,
        )
        infos, token = conv.page(infos, limit, lambda info: info.ref.study)
        return pb.ListStudiesResponse(
            studies=[conv.study_to_proto(i) for i in infos], next_page_token=token
        )

    @rpc
    def DeleteStudy(self, request: pb.DeleteStudyRequest, context) -> empty_pb2.Empty:
        self._registry.delete_study(conv.study_ref_from_name(request.name))
        return empty_pb2.Empty()

    @rpc
    def AskTrials(self, request: pb.AskTrialsRequest, context) -> pb.AskTrialsResponse:
        records = self._registry.ask(
            conv.study_ref_from_name(request.parent, "parent"),
            search_space=conv.search_space_from_proto(request.search_space),
            count=request.count or 1,
            request_id=request.request_id,
        )
        return pb.AskTrialsResponse(trials=[conv.trial_to_proto(r) for r in records])

    @rpc
    def SuggestParameter(
        self, request: pb.SuggestParameterRequest, context
    ) -> pb.SuggestParameterResponse:
        name, distribution = conv.parameter_from_proto(request.parameter, "parameter")
        value = self._registry.suggest(conv.trial_ref_from_name(request.trial), name, distribution)
        return pb.SuggestParameterResponse(value=conv.param_value_to_proto(value, distribution))

    @rpc
    def ReportIntermediateValue(
        self, request: pb.ReportIntermediateValueRequest, context
    ) -> pb.ReportIntermediateValueResponse:
        prune = self._registry.report(
            conv.trial_ref_from_name(request.trial), step=request.step, value=request.value
        )
        return pb.ReportIntermediateValueResponse(should_prune=prune)

    @rpc
    def ShouldPrune(self, request: pb.ShouldPruneRequest, context) -> pb.ShouldPruneResponse:
        prune = self._registry.should_prune(conv.trial_ref_from_name(request.trial))
        return pb.ShouldPruneResponse(should_prune=prune)

    @rpc
    def TellTrial(self, request: pb.TellTrialRequest, context) -> pb.Trial:
        record = self._registry.tell(
            conv.trial_ref_from_name(request.trial),
            state=conv.state_from_proto(request.state),
            values=request.values,
        )
        return conv.trial_to_proto(record)

    @rpc
    def Heartbeat(self, request: pb.HeartbeatRequest, context) -> pb.HeartbeatResponse:
        refs = [conv.trial_ref_from_name(t, f"trials[{i}]") for i, t in enumerate(request.trials)]
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
    def GetTrial(self, request: pb.GetTrialRequest, context) -> pb.Trial:
        return conv.trial_to_proto(
            self._registry.get_trial(conv.trial_ref_from_name(request.name, "name"))
        )

    @rpc
    def ListTrials(self, request: pb.ListTrialsRequest, context) -> pb.ListTrialsResponse:
        limit = conv.page_size(request.page_size, **_TRIAL_PAGE)
        records = self._registry.list_trials(
            conv.study_ref_from_name(request.parent, "parent"),
            states=[conv.state_from_proto(s, "states") for s in request.states],
            after=conv.decode_page_token(request.page_token, -1),
            limit=limit + 1,
        )
        records, token = conv.page(records, limit, lambda record: record.ref.number)
        return pb.ListTrialsResponse(
            trials=[conv.trial_to_proto(r) for r in records], next_page_token=token
        )

    @rpc
    def EnqueueTrial(self, request: pb.EnqueueTrialRequest, context) -> pb.Trial:
        record = self._registry.enqueue(
            conv.study_ref_from_name(request.parent, "parent"),
            params=conv.params_from_proto(request.params),
            user_attrs=conv.attrs_from_proto(request.user_attrs),
            skip_if_exists=request.skip_if_exists,
            request_id=request.request_id,
        )
        return conv.trial_to_proto(record) if record else pb.Trial()

    @rpc
    def SetTrialUserAttributes(
        self, request: pb.SetTrialUserAttributesRequest, context
    ) -> pb.Trial:
        record = self._registry.set_user_attrs(
            conv.trial_ref_from_name(request.trial), conv.attrs_from_proto(request.user_attrs)
        )
        return conv.trial_to_proto(record)

    @rpc
    def GetBestTrial(self, request: pb.GetBestTrialRequest, context) -> pb.Trial:
        ref = conv.study_ref_from_name(request.parent, "parent")
        return conv.trial_to_proto(self._registry.best_trial(ref))

    @rpc
    def GetParetoFront(
        self, request: pb.GetParetoFrontRequest, context
    ) -> pb.GetParetoFrontResponse:
        records = self._registry.pareto_front(conv.study_ref_from_name(request.parent, "parent"))
        return pb.GetParetoFrontResponse(trials=[conv.trial_to_proto(r) for r in records])

    def Session(
        self, requests: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse]:
        if not self._sessions.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no session free; use unary calls")
        self._set_busy(context, False)
        try:
            for request in requests:
                self._set_busy(context, True)
                yield self._session_call(request, context)
                self._set_busy(context, False)
                if self._stopping.is_set():
                    return
        finally:
            with self._open_lock:
                self._open.pop(context, None)
            self._sessions.release()

    def _set_busy(self, context: grpc.ServicerContext, busy: bool) -> None:
        with self._open_lock:
            self._open[context] = busy

    def _session_call(
        self, request: pb.SessionRequest, context: grpc.ServicerContext
    ) -> pb.SessionResponse:
        call = request.WhichOneof("call")
        try:
            if call is None:
                raise InvalidArgument("a session request names no call", field="call")
            result = _SESSION_CALLS[call](self, getattr(request, call), context)
            return pb.SessionResponse(**{call: result})
        except Exception as e:  # answered in-band: the stream goes on
            status = status_of(e, call or "Session")
            return pb.SessionResponse(error=pb.Status.FromString(status.SerializeToString()))


# Session call (a SessionRequest field) -> the undecorated unary method that serves it.
_SESSION_CALLS = {
    field.name: getattr(StudyServicer, field.message_type.name.removesuffix("Request")).__wrapped__
    for field in pb.SessionRequest.DESCRIPTOR.oneofs_by_name["call"].fields
}

"""A fake StudyService for the client's unit tests, and a way to serve any servicer."""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from hposerve.client._session import SESSION_FIELDS
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc, types_pb2


def quota_status(delay: float) -> Any:
    """A google.rpc.Status: RESOURCE_EXHAUSTED, retry after ``delay`` seconds.

    Needs googleapis-common-protos (the tests that use it skip without it).
    """
    from google.rpc import error_details_pb2, status_pb2

    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromTimedelta(datetime.timedelta(seconds=delay))
    status = status_pb2.Status(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="quota: asks per second"
    )
    status.details.add().Pack(info)
    return status


@contextlib.contextmanager
def serving(servicer: Any, *, workers: int = 8) -> Iterator[str]:
    """Serves a StudyService servicer in-process on a free port; yields its address."""
    server = grpc.server(ThreadPoolExecutor(max_workers=workers))
    study_service_pb2_grpc.add_StudyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


# A fake service: just enough state to drive the client, and a record of every call.


class FakeStudyService(study_service_pb2_grpc.StudyServiceServicer):
    """Records each call (method, request, time remaining, metadata); can fail on demand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, Any, float | None, dict[str, str]]] = []
        # method -> status codes to abort with, one per call, before answering normally.
        self.failures: dict[str, list[grpc.StatusCode]] = {}
        self.studies: dict[str, pb.Study] = {}
        self.study_attrs: dict[str, pb.StudyAttributes] = {}
        self.trials: dict[str, pb.Trial] = {}
        self.prune_above = float("inf")
        self.not_running: set[str] = set()
        self.page_size = 2
        self.ask_extra_params: list[pb.Parameter] = []
        # method -> hook run on each call after it is recorded (may sleep or abort).
        self.hooks: dict[str, Callable[[Any, grpc.ServicerContext], None]] = {}
        # method -> retry delays: each call is refused RESOURCE_EXHAUSTED with the next one as
        # its google.rpc.RetryInfo (a quota), before answering normally.
        self.quota: dict[str, list[float]] = {}

    # Helpers.

    def _enter(self, method: str, request: Message, context: grpc.ServicerContext) -> None:
        copy = type(request)()
        copy.CopyFrom(request)
        with self.lock:
            self.calls.append(
                (method, copy, context.time_remaining(), dict(context.invocation_metadata()))
            )
            planned = self.failures.get(method)
            code = planned.pop(0) if planned else None
            delays = self.quota.get(method)
            delay = delays.pop(0) if delays else None
        if code is not None:
            context.abort(code, f"planned {code.name}")
        if delay is not None:
            from grpc_status import rpc_status

            context.abort_with_status(rpc_status.to_status(quota_status(delay)))
        hook = self.hooks.get(method)
        if hook is not None:
            hook(request, context)

    def calls_of(self, method: str) -> list[Any]:
        with self.lock:
            return [request for m, request, _, _ in self.calls if m == method]

    def methods(self) -> list[str]:
        with self.lock:
            return [m for m, _, _, _ in self.calls]

    def _study(self, name: str, context: grpc.ServicerContext) -> pb.Study:
        if name not in self.studies:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no study {name}")
        return self.studies[name]

    def _trial(self, name: str, context: grpc.ServicerContext) -> pb.Trial:
        if name not in self.trials:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no trial {name}")
        return self.trials[name]

    @staticmethod
    def _sample(distribution: types_pb2.Distribution) -> types_pb2.Value:
        kind = distribution.WhichOneof("kind")
        if kind == "float":
            return types_pb2.Value(double_value=distribution.float.low)
        if kind == "int":
            return types_pb2.Value(int_value=distribution.int.high)
        return distribution.categorical.choices[-1]

    # RPCs.

    def CreateStudy(self, request, context):  # noqa: N802
        self._enter("CreateStudy", request, context)
        name = f"{request.parent}/studies/{request.study_id}"
        if name in self.studies and not request.load_if_exists:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"{name} exists")
        if name not in self.studies:
            self.studies[name] = pb.Study(
                name=name,
                directions=request.directions or [types_pb2.MINIMIZE],
                sampler=request.sampler,
                pruner=request.pruner,
                options=request.options,
            )
        return self.studies[name]

    def GetStudy(self, request, context):  # noqa: N802
        self._enter("GetStudy", request, context)
        return self._study(request.name, context)

    def ListStudies(self, request, context):  # noqa: N802
        self._enter("ListStudies", request, context)
        studies = sorted(self.studies.values(), key=lambda s: s.name)
        start = int(request.page_token or 0)
        end = start + self.page_size
        token = str(end) if end < len(studies) else ""
        return pb.ListStudiesResponse(studies=studies[start:end], next_page_token=token)

    def DeleteStudy(self, request, context):  # noqa: N802
        self._enter("DeleteStudy", request, context)
        self._study(request.name, context)
        del self.studies[request.name]
        return empty_pb2.Empty()

    def AskTrials(self, request, context):  # noqa: N802
        self._enter("AskTrials", request, context)
        return self._ask(request, context)

    def _ask(self, request, context):
        self._study(request.parent, context)
        trials = []
        for _ in range(request.count or 1):
            number = sum(1 for t in self.trials if t.startswith(request.parent + "/"))
            trial = pb.Trial(
                name=f"{request.parent}/trials/{number}",
                number=number,
                state=types_pb2.RUNNING,
                params=[
                    pb.Parameter(
                        name=p.name, value=self._sample(p.distribution), distribution=p.distribution
                    )
                    for p in request.search_space
                ]
                + self.ask_extra_params,
            )
            trial.start_time.GetCurrentTime()
            self.trials[trial.name] = trial
            trials.append(trial)
        return pb.AskTrialsResponse(trials=trials)

    def SuggestParameter(self, request, context):  # noqa: N802
        self._enter("SuggestParameter", request, context)
        trial = self._trial(request.trial, context)
        value = self._sample(request.parameter.distribution)
        trial.params.append(
            pb.Parameter(
                name=request.parameter.name,
                value=value,
                distribution=request.parameter.distribution,
            )
        )
        return pb.SuggestParameterResponse(value=value)

    def ReportIntermediateValue(self, request, context):  # noqa: N802
        self._enter("ReportIntermediateValue", request, context)
        trial = self._trial(request.trial, context)
        point = pb.IntermediateValue(step=request.step, value=request.value)
        trial.intermediate_values.append(point)
        return pb.ReportIntermediateValueResponse(should_prune=request.value > self.prune_above)

    def ReportIntermediateValues(self, request, context):  # noqa: N802
        self._enter("ReportIntermediateValues", request, context)
        for report in request.reports:
            trial = self._trial(report.trial, context)
            trial.intermediate_values.append(
                pb.IntermediateValue(step=report.step, value=report.value)
            )
        return pb.ReportIntermediateValuesResponse()

    def ShouldPrune(self, request, context):  # noqa: N802
        self._enter("ShouldPrune", request, context)
        self._trial(request.trial, context)
        return pb.ShouldPruneResponse(should_prune=False)

    def TellTrial(self, request, context):  # noqa: N802
        self._enter("TellTrial", request, context)
        return self._tell(request, context)

    def TellAndAsk(self, request, context):  # noqa: N802
        self._enter("TellAndAsk", request, context)
        told = self._tell(request.tell, context)
        return pb.TellAndAskResponse(told=told, asked=self._ask(request.ask, context).trials)

    def _tell(self, request, context):
        trial = self._trial(request.trial, context)
        if trial.state != types_pb2.RUNNING:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{trial.name} is finished")
        trial.state = request.state
        if request.state == types_pb2.COMPLETE:
            trial.values[:] = request.values
        trial.complete_time.GetCurrentTime()
        return trial

    def Heartbeat(self, request, context):  # noqa: N802
        self._enter("Heartbeat", request, context)
        return pb.HeartbeatResponse(
            leases=[
                pb.LeaseStatus(trial=name, running=name not in self.not_running)
                for name in request.trials
            ]
        )

    def GetTrial(self, request, context):  # noqa: N802
        self._enter("GetTrial", request, context)
        return self._trial(request.name, context)

    def ListTrials(self, request, context):  # noqa: N802
        self._enter("ListTrials", request, context)
        trials = [
            t
            for name, t in self.trials.items()
            if name.startswith(request.parent + "/")
            and (not request.states or t.state in request.states)
        ]
        start = int(request.page_token or 0)
        end = start + self.page_size
        token = str(end) if end < len(trials) else ""
        return pb.ListTrialsResponse(trials=trials[start:end], next_page_token=token)

    def EnqueueTrial(self, request, context):  # noqa: N802
        self._enter("EnqueueTrial", request, context)
        return pb.Trial(
            name=f"{request.parent}/trials/99",
            number=99,
            state=types_pb2.WAITING,
            params=[pb.Parameter(name=k, value=v) for k, v in request.params.items()],
            user_attrs=request.user_attrs,
            user_attrs_json=request.user_attrs_json,
        )

    def SetTrialUserAttributes(self, request, context):  # noqa: N802
        self._enter("SetTrialUserAttributes", request, context)
        trial = self._trial(request.trial, context)
        trial.user_attrs.update(request.user_attrs)
        if request.user_attrs_json:
            attrs = {
                **json.loads(trial.user_attrs_json or "{}"),
                **json.loads(request.user_attrs_json),
            }
            trial.user_attrs_json = json.dumps(attrs)
        return trial

    def GetBestTrial(self, request, context):  # noqa: N802
        self._enter("GetBestTrial", request, context)
        complete = [
            t
            for name, t in self.trials.items()
            if name.startswith(request.parent + "/") and t.state == types_pb2.COMPLETE
        ]
        if not complete:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no complete trial")
        return min(complete, key=lambda t: t.values[0])

    def AddTrials(self, request, context):  # noqa: N802
        self._enter("AddTrials", request, context)
        return pb.AddTrialsResponse(trials=request.trials)

    def GetStudyAttributes(self, request, context):  # noqa: N802
        self._enter("GetStudyAttributes", request, context)
        return self.study_attrs.get(request.name, pb.StudyAttributes())

    def UpdateStudyAttributes(self, request, context):  # noqa: N802
        self._enter("UpdateStudyAttributes", request, context)
        attrs = self.study_attrs.setdefault(request.name, pb.StudyAttributes())
        merged = {**json.loads(attrs.user_attrs_json or "{}")}
        merged.update(json.loads(request.user_attrs_json or "{}"))
        attrs.user_attrs_json = json.dumps(merged)
        if request.metric_names:
            attrs.metric_names[:] = request.metric_names
        return attrs

    def GetParetoFront(self, request, context):  # noqa: N802
        self._enter("GetParetoFront", request, context)
        return pb.GetParetoFrontResponse(
            trials=[
                t
                for name, t in self.trials.items()
                if name.startswith(request.parent + "/") and t.state == types_pb2.COMPLETE
            ]
        )


class SessionQuotaService(FakeStudyService):
    """Serves sessions too; a call planned in ``session_quota`` is refused in-band (a message
    answering RESOURCE_EXHAUSTED with a RetryInfo, the stream going on), like a server's."""

    def __init__(self) -> None:
        super().__init__()
        self.session_quota: dict[str, list[float]] = {}

    def Session(self, request_iterator, context):  # noqa: N802
        methods = {field: method for method, field in SESSION_FIELDS.items()}
        for request in request_iterator:
            field = request.WhichOneof("call")
            method = methods[field]
            with self.lock:
                delays = self.session_quota.get(method)
                delay = delays.pop(0) if delays else None
            if delay is not None:
                refusal = pb.Status.FromString(quota_status(delay).SerializeToString())
                yield pb.SessionResponse(error=refusal)
                continue
            answer = getattr(self, method)(getattr(request, field), context)
            yield pb.SessionResponse(**{field: answer})

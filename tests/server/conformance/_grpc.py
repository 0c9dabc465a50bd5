"""``GrpcBackend``: the suite's cases through a real server in-process, over the raw stub.

The conversions here are the suite's own, written apart from both the server's converters and
the client's, so that a mistake shared by those two does not cancel out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hposerve.server import make_server
from hposerve.v1 import specs_pb2, study_service_pb2_grpc, types_pb2
from hposerve.v1 import study_service_pb2 as pb

from ._domain import reaped
from .backends import (
    DEFAULT_NAMESPACE,
    Backend,
    BackendError,
    Study,
    Trial,
    study_name,
    trial_name,
)

_PROTO_STATES = {
    "running": types_pb2.RUNNING,
    "complete": types_pb2.COMPLETE,
    "pruned": types_pb2.PRUNED,
    "failed": types_pb2.FAILED,
    "waiting": types_pb2.WAITING,
}
_PROTO_STATE_NAMES = {v: k for k, v in _PROTO_STATES.items()}
_PROTO_DIRECTIONS = {"minimize": types_pb2.MINIMIZE, "maximize": types_pb2.MAXIMIZE}
_DIRECTION_NAMES = {v: k for k, v in _PROTO_DIRECTIONS.items()}


def value_to_proto(value: Any) -> types_pb2.Value:
    if isinstance(value, bool):
        return types_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return types_pb2.Value(int_value=value)
    if isinstance(value, float):
        return types_pb2.Value(double_value=value)
    if isinstance(value, str):
        return types_pb2.Value(string_value=value)
    assert value is None, value
    return types_pb2.Value(null_value=struct_pb2.NULL_VALUE)


def value_from_proto(value: types_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    return None if kind in (None, "null_value") else getattr(value, kind)


def distribution_to_proto(d: BaseDistribution) -> types_pb2.Distribution:
    if isinstance(d, FloatDistribution):
        f = types_pb2.FloatDistribution(low=d.low, high=d.high, log=d.log, step=d.step)
        return types_pb2.Distribution(float=f)
    if isinstance(d, IntDistribution):
        i = types_pb2.IntDistribution(low=d.low, high=d.high, log=d.log, step=d.step)
        return types_pb2.Distribution(int=i)
    assert isinstance(d, CategoricalDistribution), d
    choices = [value_to_proto(c) for c in d.choices]
    return types_pb2.Distribution(categorical=types_pb2.CategoricalDistribution(choices=choices))


def distribution_from_proto(d: types_pb2.Distribution) -> BaseDistribution:
    kind = d.WhichOneof("kind")
    if kind == "float":
        step = d.float.step if d.float.HasField("step") else None
        return FloatDistribution(d.float.low, d.float.high, log=d.float.log, step=step)
    if kind == "int":
        step_i = d.int.step if d.int.HasField("step") else 1
        return IntDistribution(d.int.low, d.int.high, log=d.int.log, step=step_i)
    return CategoricalDistribution([value_from_proto(c) for c in d.categorical.choices])


def space_to_proto(space: Mapping[str, BaseDistribution]) -> list[types_pb2.ParameterSpec]:
    return [
        types_pb2.ParameterSpec(name=name, distribution=distribution_to_proto(d))
        for name, d in space.items()
    ]


def _struct(attrs: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(dict(attrs))
    return s


def _ts(ts: timestamp_pb2.Timestamp, present: bool) -> float | None:
    return ts.ToNanoseconds() / 1e9 if present else None


def _trial_from_proto(t: pb.Trial) -> Trial:
    _, namespace, _, study, _, _ = t.name.split("/")
    return Trial(
        namespace=namespace,
        study=study,
        number=t.number,
        state=_PROTO_STATE_NAMES[t.state],
        values=tuple(t.values),
        params={p.name: value_from_proto(p.value) for p in t.params},
        distributions={p.name: distribution_from_proto(p.distribution) for p in t.params},
        intermediate_values={v.step: v.value for v in t.intermediate_values},
        user_attrs=json_format.MessageToDict(t.user_attrs),
        lease_expires=_ts(t.lease_expire_time, t.HasField("lease_expire_time")),
        start=_ts(t.start_time, t.HasField("start_time")),
        complete=_ts(t.complete_time, t.HasField("complete_time")),
        sample_seconds=t.sample_seconds,
    )


def _study_from_proto(s: pb.Study) -> Study:
    _, namespace, _, study = s.name.split("/")
    return Study(
        namespace=namespace,
        study=study,
        directions=tuple(_DIRECTION_NAMES[d] for d in s.directions),
        sampler=s.sampler,
        pruner=s.pruner,
        options={
            "lease_seconds": s.options.lease_seconds,
            "retry_expired_trials": s.options.retry_expired_trials,
            "max_retries": s.options.max_retries,
        },
        trial_count=s.trial_count,
        complete_trial_count=s.complete_trial_count,
    )


class GrpcBackend(Backend):
    """A real server, started in-process on a free port, called through the raw stub."""

    kind = "grpc"

    def __init__(self, data_dir: Path) -> None:
        self.server = make_server("127.0.0.1:0", data_dir=data_dir, reap_interval=0.05).start()
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}")
        self._stub = study_service_pb2_grpc.StudyServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()
        self.server.stop(grace=1)

    def _call(self, rpc: str, request: Any) -> Any:
        try:
            return getattr(self._stub, rpc)(request, timeout=60)
        except grpc.RpcError as e:
            status = rpc_status.from_call(e)  # type: ignore[arg-type]
            if status is None:  # no details: INTERNAL, UNAVAILABLE...
                status = status_pb2.Status(code=e.code().value[0], message=e.details() or "")  # type: ignore[attr-defined]
            assert status.code == e.code().value[0], (status, e)  # type: ignore[attr-defined]
            assert status.message == e.details(), (status, e)  # type: ignore[attr-defined]
            raise BackendError.from_status(status) from None

    def create_study(
        self,
        study: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        directions: Sequence[str] = (),
        sampler: specs_pb2.SamplerSpec | None = None,
        pruner: specs_pb2.PrunerSpec | None = None,
        options: Mapping[str, Any] | None = None,
        load_if_exists: bool = False,
        request_id: str = "",
    ) -> Study:
        request = pb.CreateStudyRequest(
            parent=f"namespaces/{namespace}",
            study_id=study,
            directions=[_PROTO_DIRECTIONS[d] for d in directions],
            sampler=sampler,
            pruner=pruner,
            options=pb.StudyOptions(**(options or {})),
            load_if_exists=load_if_exists,
            request_id=request_id,
        )
        return _study_from_proto(self._call("CreateStudy", request))

    def get_study(self, study: str, *, namespace: str = DEFAULT_NAMESPACE) -> Study:
        request = pb.GetStudyRequest(name=study_name(study, namespace))
        return _study_from_proto(self._call("GetStudy", request))

    def study_pages(
        self, *, namespace: str = DEFAULT_NAMESPACE, page_size: int
    ) -> list[list[Study]]:
        pages: list[list[Study]] = []
        request = pb.ListStudiesRequest(parent=f"namespaces/{namespace}", page_size=page_size)
        while True:
            response = self._call("ListStudies", request)
            if response.studies or not pages:
                pages.append([_study_from_proto(s) for s in response.studies])
            if not response.next_page_token:
                return [p for p in pages if p]
            request.page_token = response.next_page_token

    def delete_study(self, study: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._call("DeleteStudy", pb.DeleteStudyRequest(name=study_name(study, namespace)))

    def ask(
        self,
        study: str,
        space: Mapping[str, BaseDistribution] | None = None,
        *,
        count: int = 1,
        request_id: str = "",
    ) -> list[Trial]:
        request = pb.AskTrialsRequest(
            parent=study_name(study),
            search_space=space_to_proto(space or {}),
            count=count,
            request_id=request_id,
        )
        return [_trial_from_proto(t) for t in self._call("AskTrials", request).trials]

    def suggest(self, study: str, number: int, name: str, distribution: BaseDistribution) -> Any:
        parameter = types_pb2.ParameterSpec(
            name=name, distribution=distribution_to_proto(distribution)
        )
        request = pb.SuggestParameterRequest(trial=trial_name(study, number), parameter=parameter)
        return value_from_proto(self._call("SuggestParameter", request).value)

    def report(self, study: str, number: int, *, step: int, value: float) -> bool:
        request = pb.ReportIntermediateValueRequest(
            trial=trial_name(study, number), step=step, value=value
        )
        return bool(self._call("ReportIntermediateValue", request).should_prune)

    def should_prune(self, study: str, number: int) -> bool:
        request = pb.ShouldPruneRequest(trial=trial_name(study, number))
        return bool(self._call("ShouldPrune", request).should_prune)

    def tell(
        self, study: str, number: int, state: str = "complete", values: Sequence[float] = ()
    ) -> Trial:
        request = pb.TellTrialRequest(
            trial=trial_name(study, number), state=_PROTO_STATES[state], values=values
        )
        return _trial_from_proto(self._call("TellTrial", request))

    def heartbeat(self, study: str, numbers: Sequence[int]) -> list[float | None]:
        names = [trial_name(study, n) for n in numbers]
        leases = self._call("Heartbeat", pb.HeartbeatRequest(trials=names)).leases
        assert [lease.trial for lease in leases] == names
        return [_ts(lease.expire_time, True) if lease.running else None for lease in leases]

    def get_trial(self, study: str, number: int) -> Trial:
        request = pb.GetTrialRequest(name=trial_name(study, number))
        return _trial_from_proto(self._call("GetTrial", request))

    def trial_pages(
        self, study: str, *, states: Sequence[str] = (), page_size: int
    ) -> list[list[Trial]]:
        pages: list[list[Trial]] = []
        request = pb.ListTrialsRequest(
            parent=study_name(study),
            states=[_PROTO_STATES[s] for s in states],
            page_size=page_size,
        )
        while True:
            response = self._call("ListTrials", request)
            pages.append([_trial_from_proto(t) for t in response.trials])
            if not response.next_page_token:
                return [p for p in pages if p]
            request.page_token = response.next_page_token

    def best_trial(self, study: str) -> Trial:
        request = pb.GetBestTrialRequest(parent=study_name(study))
        return _trial_from_proto(self._call("GetBestTrial", request))

    def pareto_front(self, study: str) -> list[Trial]:
        request = pb.GetParetoFrontRequest(parent=study_name(study))
        return [_trial_from_proto(t) for t in self._call("GetParetoFront", request).trials]

    def enqueue(
        self,
        study: str,
        params: Mapping[str, Any],
        *,
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
        request_id: str = "",
    ) -> Trial | None:
        request = pb.EnqueueTrialRequest(
            parent=study_name(study),
            params={k: value_to_proto(v) for k, v in params.items()},
            user_attrs=_struct(user_attrs or {}),
            skip_if_exists=skip_if_exists,
            request_id=request_id,
        )
        trial = self._call("EnqueueTrial", request)
        return None if trial == pb.Trial() else _trial_from_proto(trial)

    def set_user_attrs(self, study: str, number: int, attrs: Mapping[str, Any]) -> Trial:
        request = pb.SetTrialUserAttributesRequest(
            trial=trial_name(study, number), user_attrs=_struct(attrs)
        )
        return _trial_from_proto(self._call("SetTrialUserAttributes", request))

    def reap(self, now: float | None = None) -> list[tuple[str, int]]:
        # The server's own registry, which its reaper thread also reaps every 0.05 s.
        return reaped(self.server.registry, now)

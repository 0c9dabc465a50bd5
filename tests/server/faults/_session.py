"""A scripted session of mutations over the raw stubs, and what of its answers must not change.

``CALLS`` is the session: every mutation that takes a request id carries one, and the calls
that carry none (report, tell) are idempotent by what they name. ``identity`` keeps the part of
an answer that a retry must repeat exactly (names, numbers, parameters, definitions) and drops
what moves on legitimately (a trial's state once it is told, lease times, progress counts);
``snapshot`` is everything the session left in storage, to check each effect happened once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format, message

from hposerve.v1 import (
    comparison_service_pb2 as cpb,
)
from hposerve.v1 import (
    comparison_service_pb2_grpc,
    specs_pb2,
    study_service_pb2_grpc,
    types_pb2,
)
from hposerve.v1 import study_service_pb2 as pb

NS = "namespaces/default"
S1, S2 = f"{NS}/studies/s1", f"{NS}/studies/s2"
CMP = f"{NS}/comparisons/cmp"
X = [
    types_pb2.ParameterSpec(
        name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1))
    )
]
XY = [
    *X,
    types_pb2.ParameterSpec(
        name="y", distribution=types_pb2.Distribution(int=types_pb2.IntDistribution(high=9))
    ),
]
RANDOM = specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=3))
LONG_LEASE = pb.StudyOptions(lease_seconds=3600)


def _trial(number: int) -> str:
    return f"{S1}/trials/{number}"


def _done(value: float) -> pb.Trial:
    x = types_pb2.Value(double_value=value)
    param = pb.Parameter(name="x", value=x, distribution=X[0].distribution)
    return pb.Trial(state=types_pb2.COMPLETE, values=[value], params=[param])


@dataclasses.dataclass(frozen=True)
class Call:
    service: str  # "study" or "comparison"
    rpc: str
    request: message.Message
    moving: frozenset[str] = frozenset()  # more fields later calls change
    # False for a call without a request id that a client makes again only until answered:
    # a report, refused once its trial is told.
    retried_when_answered: bool = True


# An enqueued trial's answer, retried after it was asked, has its parameters and start.
_ASKED_SINCE = frozenset({"params", "start_time"})


CALLS: list[Call] = [
    Call(
        "study",
        "CreateStudy",
        pb.CreateStudyRequest(
            parent=NS,
            study_id="s1",
            sampler=RANDOM,
            pruner=specs_pb2.PrunerSpec(none=specs_pb2.NopPruner()),
            options=LONG_LEASE,
            request_id="create-s1",
        ),
    ),
    Call(
        "study",
        "AskTrials",
        pb.AskTrialsRequest(parent=S1, search_space=XY, count=2, request_id="ask-1"),
    ),
    Call(
        "study",
        "EnqueueTrial",
        pb.EnqueueTrialRequest(
            parent=S1, params={"x": types_pb2.Value(double_value=0.25)}, request_id="enqueue-1"
        ),
        _ASKED_SINCE,
    ),
    Call("study", "AskTrials", pb.AskTrialsRequest(parent=S1, search_space=XY, request_id="ask-2")),
    Call(
        "study",
        "ReportIntermediateValue",
        pb.ReportIntermediateValueRequest(trial=_trial(0), step=0, value=2.0),
        retried_when_answered=False,
    ),
    Call(
        "study",
        "TellTrial",
        pb.TellTrialRequest(trial=_trial(0), state=types_pb2.COMPLETE, values=[1.0]),
    ),
    Call(
        "study",
        "TellTrial",
        pb.TellTrialRequest(trial=_trial(2), state=types_pb2.COMPLETE, values=[0.5]),
    ),
    Call(
        "study",
        "AddTrials",
        pb.AddTrialsRequest(parent=S1, trials=[_done(0.1), _done(0.2)], request_id="add-1"),
    ),
    Call("study", "AskTrials", pb.AskTrialsRequest(parent=S1, request_id="ask-3")),  # define-by-run
    Call(
        "study",
        "CreateStudy",
        pb.CreateStudyRequest(
            parent=NS, study_id="s2", sampler=RANDOM, load_if_exists=True, request_id="create-s2"
        ),
    ),
    Call(
        "study",
        "EnqueueTrial",
        pb.EnqueueTrialRequest(
            parent=S2,
            params={"x": types_pb2.Value(double_value=0.5)},
            skip_if_exists=True,
            request_id="enqueue-2",
        ),
    ),
    Call(
        "comparison",
        "CreateComparison",
        cpb.CreateComparisonRequest(
            parent=NS,
            comparison_id="cmp",
            search_space=X,
            arms=[
                cpb.ComparisonArm(name="a", sampler=RANDOM),
                cpb.ComparisonArm(
                    name="b", sampler=specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler())
                ),
            ],
            seeds=1,
            trials_per_study=2,
            options=LONG_LEASE,
            request_id="create-cmp",
        ),
    ),
    Call(
        "comparison",
        "AskComparisonTrial",
        cpb.AskComparisonTrialRequest(comparison=CMP, request_id="cask-1"),
    ),
    Call(
        "comparison",
        "AskComparisonTrial",
        cpb.AskComparisonTrialRequest(comparison=CMP, request_id="cask-2"),
    ),
    Call(
        "comparison",
        "AskComparisonTrial",
        cpb.AskComparisonTrialRequest(comparison=CMP, request_id="cask-3"),
    ),
]


class Stubs:
    """The two services of one server."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.study = study_service_pb2_grpc.StudyServiceStub(self.channel)
        self.comparison = comparison_service_pb2_grpc.ComparisonServiceStub(self.channel)

    def call(self, call: Call) -> message.Message | grpc.StatusCode:
        """The answer, or the status code of a refusal."""
        rpc: Callable[..., message.Message] = getattr(getattr(self, call.service), call.rpc)
        try:
            return rpc(call.request, timeout=30)
        except grpc.RpcError as e:
            return e.code()  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self.channel.close()


# Fields a retry may answer differently: times that move (leases, the sampler's time), and
# what later calls of the session change (a trial's outcome, a study's or member's counts).
_MOVING = {
    "lease_expire_time",
    "sample_seconds",
    "state",
    "values",
    "intermediate_values",
    "complete_time",
    "trial_count",
    "complete_trial_count",
    "members",
    "done",
    "finished",
    "system_attrs_json",
}


def _strip(value: Any, *, values: bool, moving: frozenset[str]) -> Any:
    if isinstance(value, dict):
        out = {
            k: _strip(v, values=values, moving=moving)
            for k, v in value.items()
            if k not in _MOVING | moving
        }
        if not values and "params" in out:  # a call re-run after the crash samples afresh
            out["params"] = sorted(p["name"] for p in out["params"])
        if not values:
            out.pop("start_time", None)
            out.pop("create_time", None)
        return out
    if isinstance(value, list):
        return [_strip(v, values=values, moving=moving) for v in value]
    return value


def identity(call: Call, answer: message.Message | grpc.StatusCode, *, values: bool) -> Any:
    """What a retry must answer again; ``values``: the sampled values and times too."""
    if isinstance(answer, grpc.StatusCode):
        return answer.name
    raw = json_format.MessageToDict(answer, preserving_proto_field_name=True)
    return _strip(raw, values=values, moving=call.moving)


def snapshot(stubs: Stubs) -> dict[str, Any]:
    """The studies, trials and comparisons in storage, as a retry must leave them."""
    studies = stubs.study.ListStudies(pb.ListStudiesRequest(parent=NS, page_size=100)).studies
    out: dict[str, Any] = {}
    for study in studies:
        config = json_format.MessageToDict(study, preserving_proto_field_name=True)
        for key in ("create_time", "trial_count", "complete_trial_count"):
            config.pop(key, None)
        trials = stubs.study.ListTrials(pb.ListTrialsRequest(parent=study.name, page_size=100))
        out[study.name] = {
            "config": config,
            "trials": [
                (
                    t.number,
                    types_pb2.TrialState.Name(t.state),
                    list(t.values),
                    sorted(p.name for p in t.params),
                    {v.step: v.value for v in t.intermediate_values},
                )
                for t in trials.trials
            ],
        }
    comparisons = stubs.comparison.ListComparisons(cpb.ListComparisonsRequest(parent=NS))
    for comparison in comparisons.comparisons:
        info = json_format.MessageToDict(comparison, preserving_proto_field_name=True)
        info.pop("create_time", None)
        out[comparison.name] = info
    return out

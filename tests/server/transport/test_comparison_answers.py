"""What a Comparison answer says: each member's budget, and the direction defaulted as a study's."""

from __future__ import annotations

import grpc
import pytest

from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc, specs_pb2, types_pb2
from hposerve.v1 import study_service_pb2 as pb

PARENT = "namespaces/default"
SPACE = [
    types_pb2.ParameterSpec(
        name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1))
    )
]
RANDOM = specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler())
GRID = specs_pb2.SamplerSpec(grid=specs_pb2.GridSampler())


@pytest.fixture
def cstub(target):
    with grpc.insecure_channel(target) as channel:
        yield comparison_service_pb2_grpc.ComparisonServiceStub(channel)


def create(cstub, name: str, **kwargs) -> cpb.Comparison:
    return cstub.CreateComparison(
        cpb.CreateComparisonRequest(
            parent=PARENT,
            comparison_id=name,
            search_space=SPACE,
            arms=kwargs.pop("arms", [cpb.ComparisonArm(sampler=RANDOM)]),
            seeds=2,
            trials_per_study=kwargs.pop("trials", 3),
            **kwargs,
        )
    )


def test_every_member_states_its_budget(cstub):
    # Once 0 for every member: ComparisonMember.budget was never filled.
    made = create(
        cstub, "budgets", arms=[cpb.ComparisonArm(sampler=RANDOM), cpb.ComparisonArm(sampler=GRID)]
    )
    assert [(m.arm, m.budget) for m in made.members] == [
        ("random", 3),
        ("random", 3),
        ("grid", 3),
        ("grid", 3),
    ]
    got = cstub.GetComparison(cpb.GetComparisonRequest(name=made.name))
    assert [m.budget for m in got.members] == [3] * 4
    listed = cstub.ListComparisons(cpb.ListComparisonsRequest(parent=PARENT)).comparisons
    assert [m.budget for m in listed[0].members] == [3] * 4
    # Asked until done, each member has handed out exactly its budget.
    while not cstub.AskComparisonTrial(cpb.AskComparisonTrialRequest(comparison=made.name)).done:
        pass
    done = cstub.GetComparison(cpb.GetComparisonRequest(name=made.name))
    assert done.done and [(m.trials_asked, m.budget) for m in done.members] == [(3, 3)] * 4


def test_an_unset_direction_defaults_as_a_study_does(cstub, stub):
    study = stub.CreateStudy(pb.CreateStudyRequest(parent=PARENT, study_id="plain"))
    made = create(cstub, "unset")
    assert list(study.directions) == [made.direction] == [types_pb2.MINIMIZE]
    member = stub.GetStudy(pb.GetStudyRequest(name=made.members[0].study))
    assert list(member.directions) == [types_pb2.MINIMIZE]
    # Retried with the direction spelled out, it is the same comparison.
    again = create(cstub, "unset", direction=types_pb2.MINIMIZE, load_if_exists=True)
    assert again.name == made.name and again.direction == types_pb2.MINIMIZE


def test_a_maximized_comparison_has_maximized_members(cstub, stub):
    made = create(cstub, "maxed", direction=types_pb2.MAXIMIZE, trials=2)
    member = stub.GetStudy(pb.GetStudyRequest(name=made.members[0].study))
    assert made.direction == types_pb2.MAXIMIZE
    assert list(member.directions) == [types_pb2.MAXIMIZE]
    told = {0: [], 1: []}
    for value in (0.25, 0.5, 0.75, 0.5):
        ask = cstub.AskComparisonTrial(cpb.AskComparisonTrialRequest(comparison=made.name))
        told[ask.seed].append(value)
        tell = pb.TellTrialRequest(trial=ask.trial.name, state=types_pb2.COMPLETE, values=[value])
        stub.TellTrial(tell)
    got = cstub.GetComparison(cpb.GetComparisonRequest(name=made.name))
    assert [m.best_value for m in got.members] == [max(told[0]), max(told[1])] == [0.75, 0.5]


def test_an_unknown_direction_is_refused(cstub):
    with pytest.raises(grpc.RpcError) as e:
        create(cstub, "bad", direction=7)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "direction" in e.value.details()

"""Proto <-> domain values of comparisons: definitions, members' progress, asks.

Every ``*_from_proto`` validates and raises ``InvalidArgument`` naming the field at fault.
"""

from __future__ import annotations

from hposerve.server.domain import (
    ComparisonArm,
    ComparisonAsk,
    ComparisonInfo,
    ComparisonSpec,
    MemberProgress,
)
from hposerve.server.transport import _converters as conv
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import types_pb2


def arm_from_proto(arm: cpb.ComparisonArm) -> ComparisonArm:
    return ComparisonArm(
        name=arm.name,
        sampler=arm.sampler,
        pruner=arm.pruner if arm.HasField("pruner") else None,
        shuffle_grid=arm.shuffle_grid,
    )


def arm_to_proto(arm: ComparisonArm, grid_size: int = 0) -> cpb.ComparisonArm:
    return cpb.ComparisonArm(
        name=arm.name,
        sampler=arm.sampler,
        pruner=arm.pruner,
        shuffle_grid=arm.shuffle_grid,
        grid_size=grid_size,
    )


def comparison_spec_from_proto(request: cpb.CreateComparisonRequest) -> ComparisonSpec:
    """The definition in a CreateComparison request (validated further by the domain)."""
    return ComparisonSpec(
        search_space=conv.search_space_from_proto(request.search_space),
        arms=tuple(arm_from_proto(a) for a in request.arms),
        seeds=request.seeds,
        trials_per_study=request.trials_per_study,
        direction=conv.direction_from_proto(request.direction),
        options=conv.options_from_proto(request.options),
    )


def member_to_proto(member: MemberProgress) -> cpb.ComparisonMember:
    return cpb.ComparisonMember(
        arm=member.arm,
        seed=member.seed,
        study=str(member.study),
        budget=member.budget,
        trials_asked=member.asked,
        trials_finished=member.finished,
        trials_complete=member.complete,
        best_value=member.best_value,
    )


def comparison_to_proto(info: ComparisonInfo) -> cpb.Comparison:
    spec = info.spec
    return cpb.Comparison(
        name=str(info.ref),
        direction=conv.direction_to_proto(spec.objective_direction),
        search_space=[
            types_pb2.ParameterSpec(name=name, distribution=conv.distribution_to_proto(d))
            for name, d in spec.search_space.items()
        ],
        arms=[arm_to_proto(a, info.grid_sizes.get(a.name, 0)) for a in spec.arms],
        seeds=spec.seeds,
        trials_per_study=spec.trials_per_study,
        options=conv.options_to_proto(spec.options),
        create_time=conv.timestamp(info.create_time or None),
        members=[member_to_proto(m) for m in info.members],
        done=info.done,
        finished=info.finished,
    )


def comparison_ask_to_proto(ask: ComparisonAsk) -> cpb.AskComparisonTrialResponse:
    if ask.trial is None:
        return cpb.AskComparisonTrialResponse(done=True)
    return cpb.AskComparisonTrialResponse(
        trial=conv.trial_to_proto(ask.trial), arm=ask.arm, seed=ask.seed, study=str(ask.study)
    )

"""The create requests, built from the client's keyword arguments and checked before any call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import specs_pb2
from hposerve.v1 import study_service_pb2 as pb

from ._distributions import search_space_to_proto
from ._enums import direction_to_proto
from ._errors import InvalidArgument
from ._specs import pruner_spec, sampler_spec

SamplerArg = dict[str, Any] | specs_pb2.SamplerSpec | None
PrunerArg = dict[str, Any] | specs_pb2.PrunerSpec | None


def study_options(
    *,
    lease_seconds: float | None = None,
    retry_expired_trials: bool = False,
    max_retries: int | None = None,
) -> pb.StudyOptions:
    """The options of a study (or of every member study of a comparison); None: unset."""
    options = pb.StudyOptions(retry_expired_trials=retry_expired_trials)
    if lease_seconds is not None:
        options.lease_seconds = lease_seconds
    if max_retries is not None:
        options.max_retries = max_retries
    return options


def study_request(
    *,
    parent: str,
    name: str,
    direction: Any,
    directions: Sequence[Any] | None,
    sampler: SamplerArg,
    pruner: PrunerArg,
    options: pb.StudyOptions,
    load_if_exists: bool,
    request_id: str | None,
) -> pb.CreateStudyRequest:
    """Builds a CreateStudy request; see ``Client.create_study``.

    Raises:
        InvalidArgument: Both ``direction`` and ``directions``, an unknown direction, or a bad
            sampler or pruner.
    """
    if direction is not None and directions is not None:
        raise InvalidArgument(
            "give either direction or directions, not both",
            field_violations=[("directions", "given with direction")],
        )
    wanted = [direction] if direction is not None else list(directions or [])
    request = pb.CreateStudyRequest(
        parent=parent,
        study_id=name,
        directions=[direction_to_proto(d) for d in wanted],
        options=options,
        load_if_exists=load_if_exists,
        request_id=request_id or "",
    )
    sampler_proto = sampler_spec(sampler)
    if sampler_proto is not None:
        request.sampler.CopyFrom(sampler_proto)
    pruner_proto = pruner_spec(pruner)
    if pruner_proto is not None:
        request.pruner.CopyFrom(pruner_proto)
    return request


_ARM_KEYS = frozenset({"name", "sampler", "pruner", "shuffle_grid"})


def arm_to_proto(arm: Any, index: int) -> cpb.ComparisonArm:
    """Converts ``"tpe"``, ``{"name": ..., "sampler": ..., "pruner": ...}`` or a proto arm.

    Raises:
        InvalidArgument: Not one of those, an unknown key, or a bad sampler or pruner.
    """
    if isinstance(arm, cpb.ComparisonArm):
        return arm
    if isinstance(arm, str):
        arm = {"sampler": arm}
    if not isinstance(arm, Mapping):
        raise InvalidArgument(
            f"arms[{index}] must be a sampler type such as 'tpe' or a dict "
            f"{{'name', 'sampler', 'pruner', 'shuffle_grid'}}, got {type(arm).__name__}"
        )
    unknown = sorted(set(arm) - _ARM_KEYS)
    if unknown:
        raise InvalidArgument(
            f"arms[{index}] has unknown key(s) {', '.join(unknown)}; known: "
            + ", ".join(sorted(_ARM_KEYS)),
            field_violations=[(f"arms[{index}].{k}", "unknown key") for k in unknown],
        )
    proto = cpb.ComparisonArm(
        name=arm.get("name") or "", shuffle_grid=bool(arm.get("shuffle_grid"))
    )
    sampler = arm.get("sampler")
    if sampler is None:
        raise InvalidArgument(
            f"arms[{index}] needs a sampler",
            field_violations=[(f"arms[{index}].sampler", "missing")],
        )
    sampler_proto = sampler_spec({"type": sampler} if isinstance(sampler, str) else sampler)
    assert sampler_proto is not None
    proto.sampler.CopyFrom(sampler_proto)
    pruner = arm.get("pruner")
    pruner_proto = pruner_spec({"type": pruner} if isinstance(pruner, str) else pruner)
    if pruner_proto is not None:
        proto.pruner.CopyFrom(pruner_proto)
    return proto


def comparison_request(
    *,
    parent: str,
    name: str,
    direction: Any,
    search_space: Mapping[str, Any],
    arms: Sequence[Any],
    seeds: int,
    trials_per_study: int,
    options: pb.StudyOptions,
    load_if_exists: bool,
    request_id: str | None,
) -> cpb.CreateComparisonRequest:
    """Builds a CreateComparison request (arms converted by :func:`arm_to_proto`).

    Raises:
        InvalidArgument: An unknown direction, a bad space, or arms that are not a list of arms.
    """
    if isinstance(arms, (str, bytes, Mapping)):
        raise InvalidArgument("arms must be a list of arms, e.g. ['tpe', 'random', 'grid']")
    return cpb.CreateComparisonRequest(
        parent=parent,
        comparison_id=name,
        direction=direction_to_proto(direction),
        search_space=search_space_to_proto(search_space),
        arms=[arm_to_proto(a, i) for i, a in enumerate(arms)],
        seeds=seeds,
        trials_per_study=trials_per_study,
        options=options,
        load_if_exists=load_if_exists,
        request_id=request_id or "",
    )

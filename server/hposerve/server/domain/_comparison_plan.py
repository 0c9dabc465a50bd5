"""Planning a comparison: validating its definition, resolving arms, grids and members.

A comparison ``c`` in namespace ``ns`` runs each of its arms (a sampler, optionally with a
pruner) ``seeds`` times: one ordinary study ``ns/c.{arm}.s{seed}`` per (arm, seed), each with a
budget of ``trials_per_study`` trials of the same fixed search space. Member study ``s`` of an
arm whose sampler sets no seed gets seed ``s`` (so every arm sees the same seeds); one that sets
a seed gets ``seed + s``. A grid arm given no grid gets one derived from the search space for
the budget (``_grid``).

The definition is stored as JSON with every member (``definition``), and read back
(``plan_from_definition``); nothing here touches storage.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from google.protobuf import json_format
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection

from hposerve.server.domain import _grid, _optuna, _specs
from hposerve.server.domain._config import (
    MAX_ARMS,
    MAX_COMPARISON_MEMBERS,
    MAX_COMPARISON_TRIALS,
    MAX_GRID_POINTS,
    MAX_PARAMS,
    MAX_SEEDS,
    MAX_TRIALS_PER_STUDY,
    StudyOptions,
    directions_or_default,
)
from hposerve.server.domain._exceptions import FailedPrecondition, InvalidArgument
from hposerve.server.domain._names import (
    MAX_STUDY_ID,
    ComparisonRef,
    StudyRef,
    check_arm,
    member_study_id,
)
from hposerve.v1 import specs_pb2

__all__ = [
    "ComparisonArm",
    "ComparisonSpec",
    "Member",
    "Plan",
    "check_same_definition",
    "parse_attr",
    "plan",
    "plan_from_definition",
]

VERSION = 1  # of the stored definition


@dataclasses.dataclass(frozen=True)
class ComparisonArm:
    """A method under comparison.

    Attributes:
        name: Unique within the comparison; empty means the sampler type.
        sampler: The sampler spec as given (seed and grid resolved per member).
        pruner: The pruner spec; None for no pruning.
        shuffle_grid: Grid arms: accept a grid larger than the budget, evaluate a random subset.
    """

    name: str
    sampler: specs_pb2.SamplerSpec
    pruner: specs_pb2.PrunerSpec | None = None
    shuffle_grid: bool = False


@dataclasses.dataclass(frozen=True)
class ComparisonSpec:
    """What a comparison is created with.

    ``direction`` None means the default, as for a study (``directions_or_default``).
    """

    search_space: Mapping[str, BaseDistribution]
    arms: tuple[ComparisonArm, ...]
    seeds: int
    trials_per_study: int
    direction: StudyDirection | None = None
    options: StudyOptions = dataclasses.field(default_factory=StudyOptions)

    @property
    def objective_direction(self) -> StudyDirection:
        """The direction of the objective, defaulted as a study's is."""
        (direction,) = directions_or_default([self.direction] if self.direction else [])
        return direction


@dataclasses.dataclass(frozen=True)
class Member:
    """One member study of a plan."""

    arm: str
    arm_index: int
    seed: int
    study: StudyRef
    sampler: specs_pb2.SamplerSpec  # seed and grid resolved
    pruner: specs_pb2.PrunerSpec


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated comparison: resolved arms, members, and the definition that is stored."""

    ref: ComparisonRef
    spec: ComparisonSpec  # arm names and direction resolved
    grid_sizes: dict[str, int]
    members: tuple[Member, ...]
    definition: dict[str, Any]  # compared by get-or-create: equal means the same comparison


# -- the stored definition ---------------------------------------------------------------------


def parse_attr(raw: Any) -> dict[str, Any] | None:
    """A member's comparison attribute as a dict; None if it is not one this server wrote."""
    try:
        attr = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(attr, dict) or not isinstance(attr.get("comparison"), str):
        return None
    return attr


def member_attr(plan: Plan, member: Member, record: Mapping[str, Any]) -> str:
    """The comparison attribute stored with ``member``: the definition and who it is."""
    return json.dumps(
        {
            **record,
            "version": VERSION,
            "comparison": plan.ref.comparison,
            "definition": plan.definition,
            "grid_sizes": plan.grid_sizes,
            "arm": member.arm,
            "seed": member.seed,
        }
    )


def _definition(spec: ComparisonSpec, names: Sequence[str]) -> dict[str, Any]:
    return {
        "direction": spec.objective_direction.name.lower(),
        "search_space": [
            [name, optuna.distributions.distribution_to_json(d)]
            for name, d in spec.search_space.items()
        ],
        "arms": [
            {
                "name": name,
                "sampler": json_format.MessageToDict(arm.sampler),
                "pruner": None if arm.pruner is None else json_format.MessageToDict(arm.pruner),
                "shuffle_grid": arm.shuffle_grid,
            }
            for name, arm in zip(names, spec.arms, strict=True)
        ],
        "seeds": spec.seeds,
        "trials_per_study": spec.trials_per_study,
        "options": spec.options.to_dict(),
    }


def plan_from_definition(
    ref: ComparisonRef, definition: Mapping[str, Any], grid_sizes: Mapping[str, int]
) -> Plan:
    """The plan of a stored comparison. Raises: KeyError, TypeError, ValueError on bad JSON."""
    arms = tuple(
        ComparisonArm(
            name=a["name"],
            sampler=json_format.ParseDict(a["sampler"], specs_pb2.SamplerSpec()),
            pruner=(
                None
                if a["pruner"] is None
                else json_format.ParseDict(a["pruner"], specs_pb2.PrunerSpec())
            ),
            shuffle_grid=a["shuffle_grid"],
        )
        for a in definition["arms"]
    )
    spec = ComparisonSpec(
        search_space={
            name: optuna.distributions.json_to_distribution(d)
            for name, d in definition["search_space"]
        },
        arms=arms,
        seeds=definition["seeds"],
        trials_per_study=definition["trials_per_study"],
        direction=StudyDirection[definition["direction"].upper()],
        options=StudyOptions.from_dict(definition["options"]),
    )
    # The members' specs live in their own studies; a stored plan needs only their identity.
    members = tuple(
        Member(arm.name, i, s, ref.member(arm.name, s), arm.sampler, specs_pb2.PrunerSpec())
        for i, arm in enumerate(arms)
        for s in range(spec.seeds)
    )
    return Plan(ref, spec, dict(grid_sizes), members, dict(definition))


def check_same_definition(
    ref: ComparisonRef, stored: Mapping[str, Any], wanted: Mapping[str, Any]
) -> None:
    """Raises FailedPrecondition naming what differs between two definitions."""
    differing = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    if differing:
        raise FailedPrecondition(
            f"{ref} exists with another definition (different {', '.join(differing)}); "
            "delete it or choose another name",
            field="comparison_id",
        )


# -- validating and resolving ------------------------------------------------------------------


def plan(ref: ComparisonRef, spec: ComparisonSpec) -> Plan:
    """Validates a definition and resolves its arms and members; writes nothing.

    Raises:
        InvalidArgument: naming the field at fault.
    """
    _check_sizes(spec)
    names: list[str] = []
    grid_sizes: dict[str, int] = {}
    members: list[Member] = []
    for i, arm in enumerate(spec.arms):
        at = f"arms[{i}]"
        kind = _sampler_kind(arm.sampler, at)
        name = _arm_name(ref, spec, arm.name or kind, names, at)
        names.append(name)
        pruner = _arm_pruner(arm, at)
        grid = None
        if kind == "grid":
            grid = _arm_grid(arm, spec, at)
            grid_sizes[name] = _check_grid_size(_grid.grid_size(grid), spec.seeds, at)
        elif arm.shuffle_grid:
            raise InvalidArgument(
                f"{at}.shuffle_grid applies to grid samplers only, not {kind}",
                field=f"{at}.shuffle_grid",
            )
        for seed in range(spec.seeds):
            sampler = _member_sampler(arm.sampler, kind, seed, grid)
            if seed in (0, spec.seeds - 1):  # the seed range is checked at both ends
                _checked(
                    functools.partial(_specs.build_sampler, sampler, n_objectives=1),
                    f"{at}.sampler",
                )
            members.append(Member(name, i, seed, ref.member(name, seed), sampler, pruner))
    resolved = dataclasses.replace(
        spec,
        arms=tuple(dataclasses.replace(a, name=n) for a, n in zip(spec.arms, names, strict=True)),
        direction=spec.objective_direction,
    )
    return Plan(ref, resolved, grid_sizes, tuple(members), _definition(resolved, names))


def _check_sizes(spec: ComparisonSpec) -> None:
    if not spec.search_space:
        raise InvalidArgument("search_space needs at least one parameter", field="search_space")
    if not 1 <= spec.seeds <= MAX_SEEDS:
        raise InvalidArgument(f"seeds must be in [1, {MAX_SEEDS}], got {spec.seeds}", field="seeds")
    if not 1 <= spec.trials_per_study <= MAX_TRIALS_PER_STUDY:
        raise InvalidArgument(
            f"trials_per_study must be in [1, {MAX_TRIALS_PER_STUDY}], got {spec.trials_per_study}",
            field="trials_per_study",
        )
    if not 1 <= len(spec.arms) <= MAX_ARMS:
        raise InvalidArgument(
            f"a comparison needs 1 to {MAX_ARMS} arms, got {len(spec.arms)}", field="arms"
        )
    if len(spec.search_space) > MAX_PARAMS:
        raise InvalidArgument(
            f"search_space has {len(spec.search_space)} parameters, more than the limit "
            f"MAX_PARAMS = {MAX_PARAMS}",
            field="search_space",
        )
    members = spec.seeds * len(spec.arms)
    if members > MAX_COMPARISON_MEMBERS:
        raise InvalidArgument(
            f"seeds × arms = {members} member studies, more than the limit "
            f"MAX_COMPARISON_MEMBERS = {MAX_COMPARISON_MEMBERS}",
            field="seeds",
        )
    if members * spec.trials_per_study > MAX_COMPARISON_TRIALS:
        raise InvalidArgument(
            f"seeds × arms × trials_per_study = {members * spec.trials_per_study} trials, more "
            f"than the limit MAX_COMPARISON_TRIALS = {MAX_COMPARISON_TRIALS}",
            field="trials_per_study",
        )


def _arm_name(
    ref: ComparisonRef, spec: ComparisonSpec, name: str, taken: list[str], at: str
) -> str:
    check_arm(name, f"{at}.name")
    if name in taken:
        raise InvalidArgument(
            f"{at}.name {name!r} repeats the name of arms[{taken.index(name)}]; give the "
            "arms distinct names",
            field=f"{at}.name",
        )
    longest = member_study_id(ref.comparison, name, spec.seeds - 1)
    if len(longest) > MAX_STUDY_ID:
        raise InvalidArgument(
            f"member study ids such as {longest!r} would be longer than {MAX_STUDY_ID} "
            "characters; shorten the comparison or arm name",
            field="comparison_id",
        )
    return name


def _arm_pruner(arm: ComparisonArm, at: str) -> specs_pb2.PrunerSpec:
    if arm.pruner is not None:  # an unknown kind (a newer client) is refused here
        _checked(functools.partial(_specs.build_pruner, arm.pruner, n_objectives=1), f"{at}.pruner")
    pruner = specs_pb2.PrunerSpec()
    if arm.pruner is not None and arm.pruner.WhichOneof("kind"):
        pruner.CopyFrom(arm.pruner)
    else:
        pruner.none.SetInParent()  # no pruner means no pruning, not Optuna's median
    return pruner


def _sampler_kind(sampler: specs_pb2.SamplerSpec, at: str) -> str:
    kind = sampler.WhichOneof("kind")
    if kind is None:
        # An unknown kind (a newer client) is reported as such by build_sampler.
        _checked(lambda: _specs.build_sampler(sampler, n_objectives=1), f"{at}.sampler")
        raise InvalidArgument(
            f"{at}.sampler is required: one of {', '.join(_specs.SAMPLER_NAMES)}",
            field=f"{at}.sampler",
        )
    return kind


def _checked(build: Callable[[], object], at: str) -> None:
    """Runs a spec builder, naming the arm in its InvalidArgument."""
    try:
        build()
    except InvalidArgument as e:
        field = e.field or ""
        # The builders name fields from "sampler." / "pruner."; put the arm in front.
        leaf = field.split(".", 1)[1] if "." in field else ""
        raise InvalidArgument(f"{at}: {e.message}", field=f"{at}.{leaf}" if leaf else at) from None


def _arm_grid(
    arm: ComparisonArm, spec: ComparisonSpec, at: str
) -> dict[str, list[_grid.GridValue]]:
    """The grid of a grid arm: given (and checked against the space) or derived from it."""
    field = f"{at}.sampler.grid.search_space"
    budget = spec.trials_per_study
    if not arm.sampler.grid.search_space:
        if arm.shuffle_grid and budget > MAX_GRID_POINTS:
            raise InvalidArgument(
                f"{at}: a shuffled grid of at least trials_per_study {budget} points would be "
                f"larger than the limit MAX_GRID_POINTS = {MAX_GRID_POINTS}",
                field="trials_per_study",
            )
        try:
            # A budget past the limit gets the largest grid the limit allows.
            return _grid.derive_grid(
                spec.search_space, min(budget, MAX_GRID_POINTS), at_least=arm.shuffle_grid
            )
        except ValueError as e:
            raise InvalidArgument(
                f"{at}: cannot derive a grid that fits the budget: {e}; raise "
                "trials_per_study, give the grid yourself, or set shuffle_grid to evaluate a "
                "random subset of a larger grid",
                field=field,
            ) from None
    grid: dict[str, list[_grid.GridValue]] = {}
    for j, axis in enumerate(arm.sampler.grid.search_space):
        distribution = spec.search_space.get(axis.name)
        if distribution is None:
            raise InvalidArgument(
                f"{field}[{j}] {axis.name!r} is not a parameter of the search space "
                f"{sorted(spec.search_space)}",
                field=f"{field}[{j}].name",
            )
        values = [
            _specs.value_from_proto(v, field=f"{field}[{j}].values[{k}]")
            for k, v in enumerate(axis.values)
        ]
        for value in values:
            if not _contains(distribution, value):
                raise InvalidArgument(
                    f"{field}[{j}]: {value!r} is outside {axis.name!r}'s distribution "
                    f"{distribution}",
                    field=f"{field}[{j}].values",
                )
        grid[axis.name] = values
    missing = [name for name in spec.search_space if name not in grid]
    if missing:
        raise InvalidArgument(
            f"{at}: the grid has no axis for parameters {missing} of the search space",
            field=field,
        )
    if _grid.grid_size(grid) > budget and not arm.shuffle_grid:
        raise InvalidArgument(
            f"{at}: the grid has {_grid.describe(grid)}, more than trials_per_study {budget}; "
            "raise the budget, shrink the grid, or set shuffle_grid to evaluate a random "
            "subset of it",
            field=field,
        )
    return grid


def _check_grid_size(points: int, seeds: int, at: str) -> int:
    """A grid arm's grid size, refused past the limits (its members each hold the grid)."""
    if points > MAX_GRID_POINTS:
        raise InvalidArgument(
            f"{at}: the grid has {points} points, more than the limit MAX_GRID_POINTS = "
            f"{MAX_GRID_POINTS}",
            field=f"{at}.sampler.grid.search_space",
        )
    if points * seeds > MAX_COMPARISON_TRIALS:
        raise InvalidArgument(
            f"{at}: seeds × grid points = {points * seeds}, more than the limit "
            f"MAX_COMPARISON_TRIALS = {MAX_COMPARISON_TRIALS}",
            field=f"{at}.sampler.grid.search_space",
        )
    return points


def _contains(distribution: BaseDistribution, value: Any) -> bool:
    try:
        internal = distribution.to_internal_repr(value)
    except (ValueError, TypeError):
        return False
    return _optuna.contains(distribution, internal) and math.isfinite(internal)


def _member_sampler(
    sampler: specs_pb2.SamplerSpec,
    kind: str,
    seed: int,
    grid: Mapping[str, Sequence[_grid.GridValue]] | None,
) -> specs_pb2.SamplerSpec:
    """The sampler of member ``seed``: the arm's, with its seed offset and its grid filled."""
    resolved = specs_pb2.SamplerSpec()
    resolved.CopyFrom(sampler)
    inner = getattr(resolved, kind)
    # Every sampler spec has a seed: unset means the seed index, set means an offset of it.
    inner.seed = inner.seed + seed if inner.HasField("seed") else seed
    if grid is not None and not inner.search_space:
        inner.search_space.extend(
            specs_pb2.GridAxis(name=name, values=[_specs.value_to_proto(v) for v in values])
            for name, values in grid.items()
        )
    return resolved

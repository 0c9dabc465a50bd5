"""The domain of method comparisons: sibling studies that share a task, a space and a budget.

A comparison ``c`` in namespace ``ns`` runs each of its arms (a sampler, optionally with a
pruner) ``seeds`` times: one ordinary study ``ns/c.{arm}.s{seed}`` per (arm, seed), each with a
budget of ``trials_per_study`` trials of the same fixed search space. Member study ``s`` of an
arm whose sampler sets no seed gets seed ``s`` (so every arm sees the same seeds); one that sets
a seed gets ``seed + s``. A grid arm given no grid gets one derived from the search space for
the budget (``_grid``).

Persistence: the definition is a JSON study system attribute (``hposerve:comparison``) of every
member, so any server on the same storage, and a restarted one, rebuilds the comparison from
its members; listing scans the studies for that attribute. Creating writes the members one
after another, so a crash can leave some missing: such a comparison refuses asks until the
next create (a retry, or ``load_if_exists``) completes it.

Scheduling: a trainer asks the comparison, not a study. The ask goes to the member that has
handed out the fewest trials and is below its budget (ties: lowest seed, then first arm), so
all arms progress at the same pace whatever the number and speed of trainers. Counts come
from storage at each ask, under a lock per comparison held over the pick and the study's ask:
the pace is exact within one server (replicas sharing a database may hand out one trial of
difference between them). Holding the lock while the sampler runs serializes the asks of one
comparison; comparisons and ordinary studies are not held up.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from google.protobuf import json_format
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hposerve.server.domain import _grid
from hposerve.server.domain import _specs
from hposerve.server.domain._exceptions import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from hposerve.server.domain._studies import (
    StudyOptions,
    StudyRef,
    StudyRegistry,
    TrialRecord,
    check_namespace,
)
from hposerve.v1 import specs_pb2

__all__ = [
    "COMPARISON_ATTR",
    "ComparisonArm",
    "ComparisonAsk",
    "ComparisonInfo",
    "ComparisonRef",
    "ComparisonRegistry",
    "ComparisonSpec",
    "MemberProgress",
]

COMPARISON_ATTR = "hposerve:comparison"
MAX_ARMS = 100
MAX_SEEDS = 1000
MAX_TRIALS_PER_STUDY = 1_000_000
_VERSION = 1
_COMPARISON_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
# No '.' in arm names: it separates the parts of a member's study id.
_ARM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_MAX_STUDY_ID = 128
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_MAX_REMEMBERED_ASKS = 10_000


@dataclasses.dataclass(frozen=True)
class ComparisonRef:
    """A comparison's identity: ``namespaces/{namespace}/comparisons/{comparison}``."""

    namespace: str
    comparison: str

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        if not _COMPARISON_RE.match(self.comparison):
            raise InvalidArgument(
                f"invalid comparison name {self.comparison!r}: use 1-120 letters, digits, '.', "
                "'_' and '-', starting with a letter or digit",
                field="comparison_id",
            )

    def member(self, arm: str, seed: int) -> StudyRef:
        """The member study of ``arm`` and seed index ``seed``."""
        return StudyRef(self.namespace, f"{self.comparison}.{arm}.s{seed}")

    def __str__(self) -> str:
        return f"namespaces/{self.namespace}/comparisons/{self.comparison}"


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
    """What a comparison is created with."""

    search_space: Mapping[str, BaseDistribution]
    arms: tuple[ComparisonArm, ...]
    seeds: int
    trials_per_study: int
    direction: StudyDirection = StudyDirection.MINIMIZE
    options: StudyOptions = dataclasses.field(default_factory=StudyOptions)


@dataclasses.dataclass(frozen=True)
class MemberProgress:
    """One member study and how far it has got."""

    arm: str
    seed: int
    study: StudyRef
    asked: int  # trials handed out, in any state
    finished: int  # complete, pruned or failed
    complete: int
    best_value: float | None


@dataclasses.dataclass(frozen=True)
class ComparisonInfo:
    """A comparison as callers see it: its definition and its members' progress.

    ``spec.arms`` carry resolved names; ``grid_sizes`` has the grid size of each grid arm.
    """

    ref: ComparisonRef
    spec: ComparisonSpec
    grid_sizes: Mapping[str, int]
    create_time: float
    members: tuple[MemberProgress, ...]

    @property
    def done(self) -> bool:
        """Every member has handed out its budget."""
        return all(m.asked >= self.spec.trials_per_study for m in self.members)

    @property
    def finished(self) -> bool:
        """Done, and every trial handed out has finished."""
        return self.done and all(m.finished >= m.asked for m in self.members)


@dataclasses.dataclass(frozen=True)
class ComparisonAsk:
    """The answer to an ask: a running trial of one member, or done (``trial`` is None)."""

    trial: TrialRecord | None
    arm: str = ""
    seed: int = 0
    study: StudyRef | None = None

    @property
    def done(self) -> bool:
        return self.trial is None


@dataclasses.dataclass(frozen=True)
class _Member:
    arm: str
    arm_index: int
    seed: int
    study: StudyRef
    sampler: specs_pb2.SamplerSpec  # seed and grid resolved
    pruner: specs_pb2.PrunerSpec


@dataclasses.dataclass(frozen=True)
class _Plan:
    """A validated comparison: resolved arms, members, and the definition that is stored."""

    ref: ComparisonRef
    spec: ComparisonSpec
    grid_sizes: dict[str, int]
    members: tuple[_Member, ...]
    definition: dict[str, Any]  # compared by get-or-create: equal means the same comparison


@dataclasses.dataclass(frozen=True)
class _Stored:
    """What the member studies of a comparison found in storage say."""

    record: dict[str, Any]  # the JSON of the comparison attribute, minus the member's identity
    members: frozenset[StudyRef]


class _LiveComparison:
    def __init__(self, plan: _Plan, create_time: float) -> None:
        self.plan = plan
        self.create_time = create_time
        # Held over the pick of a member and its ask, so the pace is exact.
        self.lock = threading.Lock()
        # request id -> (member, trial number), or None for a "done" answer; bounded.
        self.asks: collections.OrderedDict[str, tuple[_Member, int] | None] = (
            collections.OrderedDict()
        )

    def remember(self, request_id: str, answer: tuple[_Member, int] | None) -> None:
        if not request_id:
            return
        self.asks[request_id] = answer
        while len(self.asks) > _MAX_REMEMBERED_ASKS:
            self.asks.popitem(last=False)


class ComparisonRegistry:
    """The comparisons of one storage, built on the studies of a ``StudyRegistry``.

    Thread-safety: every public method may be called from any thread. Asks take a lock per
    comparison; creates and deletes take one lock for all comparisons (they are rare).

    Raises (from every method): InvalidArgument, NotFound, AlreadyExists, FailedPrecondition
    as documented on each; nothing else on purpose.
    """

    def __init__(self, studies: StudyRegistry) -> None:
        self._studies = studies
        self._live: dict[ComparisonRef, _LiveComparison] = {}
        self._live_lock = threading.Lock()
        self._create_lock = threading.Lock()

    # -- creating and deleting -----------------------------------------------------------------

    def create_comparison(
        self,
        ref: ComparisonRef,
        spec: ComparisonSpec,
        *,
        load_if_exists: bool = False,
        request_id: str = "",
    ) -> ComparisonInfo:
        """Creates a comparison and its member studies; or returns (and completes) it.

        An existing comparison is returned when ``load_if_exists`` is set or it was created
        with the same ``request_id``, and its definition is the same; members missing after an
        interrupted create are created then.

        Raises:
            InvalidArgument: a bad definition (nothing is created).
            AlreadyExists: the comparison exists and neither load_if_exists nor the same
                request id was given; or a study with a member's name exists outside it.
            FailedPrecondition: the comparison exists with another definition.
        """
        plan = _plan(ref, spec)
        with self._create_lock:
            stored = self._stored(ref)
            if stored is None:
                record = {"create_time": time.time(), "request_id": request_id}
                existing: frozenset[StudyRef] = frozenset()
            else:
                same_request = bool(request_id) and stored.record.get("request_id") == request_id
                complete = len(stored.members) == len(plan.members)
                if complete and not (load_if_exists or same_request):
                    raise AlreadyExists(
                        f"{ref} already exists; pass load_if_exists to use it",
                        field="comparison_id",
                    )
                _check_same_definition(ref, stored.record["definition"], plan.definition)
                record, existing = stored.record, stored.members
            missing = [m for m in plan.members if m.study not in existing]
            for member in missing:  # refuse before anything is written
                self._check_free(ref, member.study)
            for member in missing:
                attr = {
                    **record,
                    "version": _VERSION,
                    "comparison": ref.comparison,
                    "definition": plan.definition,
                    "grid_sizes": plan.grid_sizes,
                    "arm": member.arm,
                    "seed": member.seed,
                }
                self._studies.create_study(
                    member.study,
                    directions=[plan.spec.direction],
                    sampler=member.sampler,
                    pruner=member.pruner,
                    options=plan.spec.options,
                    load_if_exists=True,
                    request_id=request_id,
                    system_attrs={COMPARISON_ATTR: json.dumps(attr)},
                )
            self._forget(ref)
        return self.get_comparison(ref)

    def _check_free(self, ref: ComparisonRef, study: StudyRef) -> None:
        try:
            attrs = self._studies.study_system_attrs(study)
        except NotFound:
            return
        raise AlreadyExists(
            f"cannot create {ref}: its member study {study} already exists"
            + (
                " as part of another comparison"
                if COMPARISON_ATTR in attrs
                # A crash inside one member's creation, between Optuna creating the study and
                # the service writing its attributes, leaves such a study behind.
                else "; delete it if an interrupted create left it behind"
            ),
            field="comparison_id",
        )

    def delete_comparison(self, ref: ComparisonRef) -> None:
        """Deletes the member studies (those that exist) and their trials.

        Raises:
            NotFound: no member study of the comparison exists.
        """
        with self._create_lock:
            stored = self._stored(ref)
            self._forget(ref)
            if stored is None:
                raise NotFound(f"{ref} does not exist", field="name")
            for study in sorted(stored.members, key=str):
                try:
                    self._studies.delete_study(study)
                except NotFound:
                    continue  # deleted meanwhile

    # -- reading -------------------------------------------------------------------------------

    def get_comparison(self, ref: ComparisonRef) -> ComparisonInfo:
        """Raises: NotFound; FailedPrecondition (a half-created comparison)."""
        try:
            return self._info(self._get_live(ref))
        except NotFound:
            # A member was deleted behind this process's back (another replica): look again.
            self._forget(ref)
            return self._info(self._get_live(ref))

    def list_comparisons(self, namespace: str, *, after: str, limit: int) -> list[ComparisonInfo]:
        """Comparisons of a namespace in name order, those with names after ``after``.

        Half-created comparisons are left out (a create completes them; a delete removes them).
        """
        grouped: dict[str, list[tuple[StudyRef, dict[str, Any]]]] = {}
        for study, raw in self._studies.studies_with_system_attr(
            namespace, COMPARISON_ATTR
        ).items():
            attr = _parse_attr(raw)
            if attr is not None and attr["comparison"] > after:
                grouped.setdefault(attr["comparison"], []).append((study, attr))
        infos: list[ComparisonInfo] = []
        for name in sorted(grouped):
            if len(infos) >= limit:
                break
            try:
                ref = ComparisonRef(namespace, name)
                live = self._live.get(ref) or self._live_from(ref, grouped[name])
                infos.append(self._info(live))
            except (InvalidArgument, NotFound, FailedPrecondition):
                continue  # half-created, deleted meanwhile, or not one of ours
        return infos

    def _info(self, live: _LiveComparison) -> ComparisonInfo:
        plan = live.plan
        members = tuple(self._progress(m, plan.spec.direction) for m in plan.members)
        return ComparisonInfo(plan.ref, plan.spec, plan.grid_sizes, live.create_time, members)

    def _progress(self, member: _Member, direction: StudyDirection) -> MemberProgress:
        records = self._studies.list_trials(member.study, states=(), after=-1, limit=sys.maxsize)
        states = collections.Counter(r.trial.state for r in records)
        values = [r.trial.value for r in records if r.trial.state == TrialState.COMPLETE]
        pick = min if direction == StudyDirection.MINIMIZE else max
        return MemberProgress(
            arm=member.arm,
            seed=member.seed,
            study=member.study,
            asked=len(records) - states[TrialState.WAITING],
            finished=sum(states[s] for s in _FINISHED),
            complete=states[TrialState.COMPLETE],
            best_value=pick(values) if values else None,
        )

    # -- asking --------------------------------------------------------------------------------

    def ask(self, ref: ComparisonRef, *, request_id: str = "") -> ComparisonAsk:
        """Starts a trial of the member furthest behind, all parameters sampled; or done.

        A retried request (same ``request_id``) returns the first answer.

        Raises:
            NotFound: no such comparison.
            FailedPrecondition: the comparison is half-created.
            InvalidArgument: a member's sampler cannot sample the space.
        """
        try:
            return self._ask(self._get_live(ref), request_id)
        except NotFound:
            # A member was deleted behind this process's back (another replica): look again.
            self._forget(ref)
            return self._ask(self._get_live(ref), request_id)

    def _ask(self, live: _LiveComparison, request_id: str) -> ComparisonAsk:
        plan = live.plan
        with live.lock:
            if request_id:
                replay = self._replay(live, request_id)
                if replay is not None:
                    return replay
            candidates = []
            for member in plan.members:
                asked = self._asked(member.study)
                if asked < plan.spec.trials_per_study:
                    candidates.append((asked, member.seed, member.arm_index, member))
            if not candidates:
                live.remember(request_id, None)
                return ComparisonAsk(None)
            member = min(candidates, key=lambda c: c[:3])[3]
            (record,) = self._studies.ask(
                member.study, search_space=plan.spec.search_space, request_id=request_id
            )
            live.remember(request_id, (member, record.ref.number))
            return ComparisonAsk(record, member.arm, member.seed, member.study)

    def _asked(self, study: StudyRef) -> int:
        records = self._studies.list_trials(study, states=(), after=-1, limit=sys.maxsize)
        return sum(r.trial.state != TrialState.WAITING for r in records)

    def _replay(self, live: _LiveComparison, request_id: str) -> ComparisonAsk | None:
        if request_id in live.asks:
            answer = live.asks[request_id]
            if answer is None:
                return ComparisonAsk(None)
            member, number = answer
            records = self._studies.list_trials(member.study, states=(), after=number - 1, limit=1)
            return ComparisonAsk(records[0], member.arm, member.seed, member.study)
        # Not asked through this process (a restart, another replica): the trial's request
        # attribute, which each study reloads, still knows it.
        for member in live.plan.members:
            found = self._studies.asked_by_request(member.study, request_id)
            if found:
                live.remember(request_id, (member, found[0].ref.number))
                return ComparisonAsk(found[0], member.arm, member.seed, member.study)
        return None

    # -- loading -------------------------------------------------------------------------------

    def _stored(self, ref: ComparisonRef) -> _Stored | None:
        found = self._members_in_storage(ref)
        if not found:
            return None
        # Every member stores the same record; take the first.
        attr = found[0][1]
        record = {k: v for k, v in attr.items() if k not in ("arm", "seed")}
        return _Stored(record, frozenset(study for study, _ in found))

    def _members_in_storage(self, ref: ComparisonRef) -> list[tuple[StudyRef, dict[str, Any]]]:
        prefix = ref.comparison + "."
        found = []
        attrs = self._studies.studies_with_system_attr(ref.namespace, COMPARISON_ATTR)
        for study, raw in sorted(attrs.items(), key=lambda item: item[0].study):
            if study.study.startswith(prefix):
                attr = _parse_attr(raw)
                if attr is not None and attr["comparison"] == ref.comparison:
                    found.append((study, attr))
        return found

    def _get_live(self, ref: ComparisonRef) -> _LiveComparison:
        live = self._live.get(ref)
        if live is not None:
            return live
        found = self._members_in_storage(ref)
        if not found:
            raise NotFound(f"{ref} does not exist", field="name")
        live = self._live_from(ref, found)
        with self._live_lock:
            return self._live.setdefault(ref, live)

    def _live_from(
        self, ref: ComparisonRef, found: Sequence[tuple[StudyRef, dict[str, Any]]]
    ) -> _LiveComparison:
        """Rebuilds a complete comparison from its members' attributes."""
        attr = found[0][1]
        try:
            plan = _plan_from_definition(ref, attr["definition"], attr.get("grid_sizes", {}))
        except (KeyError, TypeError, ValueError, json_format.ParseError) as e:
            raise FailedPrecondition(
                f"{ref} has a definition this server cannot read: {e}", field="name"
            ) from None
        present = {study for study, _ in found}
        missing = [m.study for m in plan.members if m.study not in present]
        if missing:
            raise FailedPrecondition(
                f"{ref} is half-created: {len(missing)} of its {len(plan.members)} member "
                "studies are missing; create it again (same request, or load_if_exists) to "
                "complete it, or delete it",
                field="name",
            )
        return _LiveComparison(plan, float(attr.get("create_time", 0.0)))

    def _forget(self, ref: ComparisonRef) -> None:
        with self._live_lock:
            self._live.pop(ref, None)


# -- the definition ----------------------------------------------------------------------------


def _parse_attr(raw: Any) -> dict[str, Any] | None:
    try:
        attr = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(attr, dict) or not isinstance(attr.get("comparison"), str):
        return None
    return attr


def _definition(spec: ComparisonSpec, names: Sequence[str]) -> dict[str, Any]:
    return {
        "direction": spec.direction.name.lower(),
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
        "options": dataclasses.asdict(spec.options),
    }


def _plan_from_definition(
    ref: ComparisonRef, definition: Mapping[str, Any], grid_sizes: Mapping[str, int]
) -> _Plan:
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
        options=StudyOptions(**definition["options"]),
    )
    # The members' specs live in their own studies; a stored plan needs only their identity.
    members = tuple(
        _Member(arm.name, i, s, ref.member(arm.name, s), arm.sampler, specs_pb2.PrunerSpec())
        for i, arm in enumerate(arms)
        for s in range(spec.seeds)
    )
    return _Plan(ref, spec, dict(grid_sizes), members, dict(definition))


def _check_same_definition(
    ref: ComparisonRef, stored: Mapping[str, Any], wanted: Mapping[str, Any]
) -> None:
    differing = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    if differing:
        raise FailedPrecondition(
            f"{ref} exists with another definition (different {', '.join(differing)}); "
            "delete it or choose another name",
            field="comparison_id",
        )


def _plan(ref: ComparisonRef, spec: ComparisonSpec) -> _Plan:
    """Validates a definition and resolves its arms and members; writes nothing.

    Raises:
        InvalidArgument: naming the field at fault.
    """
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
    names: list[str] = []
    grid_sizes: dict[str, int] = {}
    members: list[_Member] = []
    for i, arm in enumerate(spec.arms):
        at = f"arms[{i}]"
        kind = _sampler_kind(arm.sampler, at)
        name = arm.name or kind
        if not _ARM_RE.match(name):
            raise InvalidArgument(
                f"{at}.name {name!r} is not a valid arm name: use 1-64 letters, digits, '_' "
                "and '-', starting with a letter or digit",
                field=f"{at}.name",
            )
        if name in names:
            raise InvalidArgument(
                f"{at}.name {name!r} repeats the name of arms[{names.index(name)}]; give the "
                "arms distinct names",
                field=f"{at}.name",
            )
        names.append(name)
        longest = f"{ref.comparison}.{name}.s{spec.seeds - 1}"
        if len(longest) > _MAX_STUDY_ID:
            raise InvalidArgument(
                f"member study ids such as {longest!r} would be longer than {_MAX_STUDY_ID} "
                "characters; shorten the comparison or arm name",
                field="comparison_id",
            )
        if arm.pruner is not None:  # an unknown kind (a newer client) is refused here
            _checked(lambda p=arm.pruner: _specs.build_pruner(p, n_objectives=1), f"{at}.pruner")
        pruner = specs_pb2.PrunerSpec()
        if arm.pruner is not None and arm.pruner.WhichOneof("kind"):
            pruner.CopyFrom(arm.pruner)
        else:
            pruner.none.SetInParent()  # no pruner means no pruning, not Optuna's median
        grid = None
        if kind == "grid":
            grid = _arm_grid(arm, spec, at)
            grid_sizes[name] = _grid.grid_size(grid)
        elif arm.shuffle_grid:
            raise InvalidArgument(
                f"{at}.shuffle_grid applies to grid samplers only, not {kind}",
                field=f"{at}.shuffle_grid",
            )
        for seed in range(spec.seeds):
            sampler = _member_sampler(arm.sampler, kind, seed, grid)
            if seed in (0, spec.seeds - 1):  # the seed range is checked at both ends
                _checked(lambda s=sampler: _specs.build_sampler(s, n_objectives=1), f"{at}.sampler")
            members.append(_Member(name, i, seed, ref.member(name, seed), sampler, pruner))
    definition = _definition(spec, names)
    resolved = dataclasses.replace(
        spec,
        arms=tuple(dataclasses.replace(a, name=n) for a, n in zip(spec.arms, names, strict=True)),
    )
    return _Plan(ref, resolved, grid_sizes, tuple(members), definition)


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


def _checked(build: Any, at: str) -> None:
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
        try:
            return _grid.derive_grid(spec.search_space, budget, at_least=arm.shuffle_grid)
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


def _contains(distribution: BaseDistribution, value: Any) -> bool:
    try:
        internal = distribution.to_internal_repr(value)
    except (ValueError, TypeError):
        return False
    return bool(distribution._contains(internal)) and math.isfinite(internal)


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

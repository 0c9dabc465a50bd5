"""The domain of method comparisons: sibling studies that share a task, a space and a budget.

What a comparison is and how it is planned: ``_comparison_plan``. This module keeps them.

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
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hposerve.server.domain._cache import LiveCache
from hposerve.server.domain._comparison_plan import (
    ComparisonArm,
    ComparisonSpec,
    Member,
    Plan,
    check_same_definition,
    member_attr,
    parse_attr,
    plan,
    plan_from_definition,
)
from hposerve.server.domain._config import COMPARISON_ATTR, CONFIG_ATTR, FINISHED_STATES
from hposerve.server.domain._consistency import each_call_sees_earlier_writes
from hposerve.server.domain._exceptions import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from hposerve.server.domain._live_study import TrialRecord
from hposerve.server.domain._names import ComparisonRef, StudyRef
from hposerve.server.domain._requests import RequestMemo
from hposerve.server.domain._studies import StudyRegistry

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


@dataclasses.dataclass(frozen=True)
class MemberProgress:
    """One member study and how far it has got."""

    arm: str
    seed: int
    study: StudyRef
    budget: int  # trials it hands out
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
        return all(m.asked >= m.budget for m in self.members)

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


# An ask's first answer: the member and trial number, or None for "done".
_Answer = tuple[Member, int] | None


@dataclasses.dataclass(frozen=True)
class _Stored:
    """What the member studies of a comparison found in storage say."""

    record: dict[str, Any]  # the JSON of the comparison attribute, minus the member's identity
    members: frozenset[StudyRef]  # every study that carries the attribute
    complete: frozenset[StudyRef]  # those whose creation finished (they have their config)


class _LiveComparison:
    def __init__(self, plan: Plan, create_time: float) -> None:
        self.plan = plan
        self.create_time = create_time
        # Held over the pick of a member and its ask, so the pace is exact.
        self.lock = threading.Lock()
        # request id -> the first answer; boxed, so that "done" (None) is remembered too.
        self.asks: RequestMemo[str, list[_Answer]] = RequestMemo()


@each_call_sees_earlier_writes
class ComparisonRegistry:
    """The comparisons of one storage, built on the studies of a ``StudyRegistry``.

    Thread-safety: every public method may be called from any thread. Asks take a lock per
    comparison; creates and deletes take one lock for all comparisons (they are rare).

    Raises (from every method): InvalidArgument, NotFound, AlreadyExists, FailedPrecondition
    as documented on each; nothing else on purpose.
    """

    def __init__(self, studies: StudyRegistry) -> None:
        self._studies = studies
        self._live: LiveCache[ComparisonRef, _LiveComparison] = LiveCache()
        self._write_lock = threading.Lock()

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
        planned = plan(ref, spec)
        with self._write_lock:
            stored = self._stored(ref)
            if stored is None:
                record: dict[str, Any] = {"create_time": time.time(), "request_id": request_id}
                existing: frozenset[StudyRef] = frozenset()
            else:
                same_request = bool(request_id) and stored.record.get("request_id") == request_id
                complete = len(stored.complete) == len(planned.members)
                if complete and not (load_if_exists or same_request):
                    raise AlreadyExists(
                        f"{ref} already exists; pass load_if_exists to use it",
                        field="comparison_id",
                    )
                check_same_definition(ref, stored.record["definition"], planned.definition)
                record, existing = stored.record, stored.complete
            missing = [m for m in planned.members if m.study not in existing]
            for member in missing:  # refuse before anything is written
                self._check_free(ref, member.study, stored)
            for member in missing:
                self._studies.create_study(
                    member.study,
                    directions=[planned.spec.objective_direction],
                    sampler=member.sampler,
                    pruner=member.pruner,
                    options=planned.spec.options,
                    load_if_exists=True,
                    request_id=request_id,
                    system_attrs={COMPARISON_ATTR: member_attr(planned, member, record)},
                )
            self._live.forget(ref)
        return self.get_comparison(ref)

    def _check_free(self, ref: ComparisonRef, study: StudyRef, stored: _Stored | None) -> None:
        try:
            attrs = self._studies.study_system_attrs(study)
        except NotFound:
            return
        # A crash inside this member's creation left it half-created (its config is written
        # last, and nothing is in it yet): ``create_study`` completes it.
        ours = COMPARISON_ATTR not in attrs or (stored is not None and study in stored.members)
        if ours and CONFIG_ATTR not in attrs and self._studies.get_study(study).trial_count == 0:
            return
        raise AlreadyExists(
            f"cannot create {ref}: its member study {study} already exists"
            + (" as part of another comparison" if COMPARISON_ATTR in attrs else ""),
            field="comparison_id",
        )

    def delete_comparison(self, ref: ComparisonRef, *, request_id: str = "") -> None:
        """Deletes the member studies (those that exist) and their trials.

        A retry with the same ``request_id`` answers as the first did, after a restart and on
        another replica too (``_tombstones``).

        Raises:
            NotFound: no member study of the comparison exists (and no earlier delete of it
                with ``request_id``).
        """
        with self._write_lock:
            stored = self._stored(ref)
            self._live.forget(ref)
            members = sorted(stored.members, key=str) if stored is not None else []
            what = f"comparison {ref}"
            if not self._studies.delete_studies(what, members, request_id=request_id):
                raise NotFound(f"{ref} does not exist", field="name")

    # -- reading -------------------------------------------------------------------------------

    def get_comparison(self, ref: ComparisonRef) -> ComparisonInfo:
        """Raises: NotFound; FailedPrecondition (a half-created comparison)."""
        try:
            return self._info(self._get_live(ref))
        except NotFound:
            # A member was deleted behind this process's back (another replica): look again.
            self._live.forget(ref)
            return self._info(self._get_live(ref))

    def list_comparisons(self, namespace: str, *, after: str, limit: int) -> list[ComparisonInfo]:
        """Comparisons of a namespace in name order, those with names after ``after``.

        Half-created comparisons are left out (a create completes them; a delete removes them).
        """
        grouped: dict[str, list[tuple[StudyRef, dict[str, Any]]]] = {}
        configured = self._configured(namespace)
        for study, raw in self._studies.studies_with_system_attr(
            namespace, COMPARISON_ATTR
        ).items():
            attr = parse_attr(raw)
            if attr is not None and attr["comparison"] > after and study in configured:
                grouped.setdefault(attr["comparison"], []).append((study, attr))
        infos: list[ComparisonInfo] = []
        for name in sorted(grouped):
            if len(infos) >= limit:
                break
            try:
                ref = ComparisonRef(namespace, name)
                live = self._live.peek(ref) or _live_from(ref, grouped[name])
                infos.append(self._info(live))
            except (InvalidArgument, NotFound, FailedPrecondition):
                continue  # half-created, deleted meanwhile, or not one of ours
        return infos

    def _info(self, live: _LiveComparison) -> ComparisonInfo:
        p = live.plan
        members = tuple(self._progress(m, p.spec) for m in p.members)
        return ComparisonInfo(p.ref, p.spec, p.grid_sizes, live.create_time, members)

    def _progress(self, member: Member, spec: ComparisonSpec) -> MemberProgress:
        records = self._trials(member.study)
        states = collections.Counter(r.trial.state for r in records)
        values = [
            r.trial.value
            for r in records
            if r.trial.state == TrialState.COMPLETE and r.trial.value is not None
        ]
        pick = min if spec.objective_direction == StudyDirection.MINIMIZE else max
        return MemberProgress(
            arm=member.arm,
            seed=member.seed,
            study=member.study,
            budget=spec.trials_per_study,
            asked=len(records) - states[TrialState.WAITING],
            finished=sum(states[s] for s in FINISHED_STATES),
            complete=states[TrialState.COMPLETE],
            best_value=pick(values) if values else None,
        )

    def _trials(self, study: StudyRef) -> list[TrialRecord]:
        return self._studies.list_trials(study, states=(), after=-1, limit=sys.maxsize)

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
            self._live.forget(ref)
            return self._ask(self._get_live(ref), request_id)

    def _ask(self, live: _LiveComparison, request_id: str) -> ComparisonAsk:
        asked: list[TrialRecord] = []  # the trial, when this call is the first to ask

        def pick_and_ask() -> list[_Answer]:
            p = live.plan
            candidates = []
            for member in p.members:
                n = sum(r.trial.state != TrialState.WAITING for r in self._trials(member.study))
                if n < p.spec.trials_per_study:
                    candidates.append((n, member.seed, member.arm_index, member))
            if not candidates:
                return [None]
            member = min(candidates, key=lambda c: c[:3])[3]
            asked.extend(
                self._studies.ask(
                    member.study, search_space=p.spec.search_space, request_id=request_id
                )
            )
            return [(member, asked[0].ref.number)]

        with live.lock:
            (answer,) = live.asks.once(
                request_id or None, pick_and_ask, recall=lambda: self._recall(live, request_id)
            )
        if answer is None:
            return ComparisonAsk(None)
        member, number = answer
        if not asked:  # a retry: the same trial, completed if a crash cut its ask short
            asked = self._studies.ask(
                member.study, search_space=live.plan.spec.search_space, request_id=request_id
            )
        return ComparisonAsk(asked[0], member.arm, member.seed, member.study)

    def _recall(self, live: _LiveComparison, request_id: str) -> list[_Answer] | None:
        # Not asked through this process (a restart, another replica): the trial's request
        # attribute, which each study reloads, still knows it.
        for member in live.plan.members:
            found = self._studies.asked_by_request(member.study, request_id)
            if found:
                return [(member, found[0].ref.number)]
        return None

    # -- loading -------------------------------------------------------------------------------

    def _stored(self, ref: ComparisonRef) -> _Stored | None:
        found = self._members_in_storage(ref)
        if not found:
            return None
        # Every member stores the same record; take the first.
        attr = found[0][1]
        record = {k: v for k, v in attr.items() if k not in ("arm", "seed")}
        members = frozenset(study for study, _ in found)
        return _Stored(record, members, members & self._configured(ref.namespace))

    def _configured(self, namespace: str) -> set[StudyRef]:
        """The studies of a namespace whose creation finished (``StudyCatalog.create_study``)."""
        return set(self._studies.studies_with_system_attr(namespace, CONFIG_ATTR))

    def _members_in_storage(self, ref: ComparisonRef) -> list[tuple[StudyRef, dict[str, Any]]]:
        prefix = ref.comparison + "."
        found = []
        attrs = self._studies.studies_with_system_attr(ref.namespace, COMPARISON_ATTR)
        for study, raw in sorted(attrs.items(), key=lambda item: item[0].study):
            if study.study.startswith(prefix):
                attr = parse_attr(raw)
                if attr is not None and attr["comparison"] == ref.comparison:
                    found.append((study, attr))
        return found

    def _get_live(self, ref: ComparisonRef) -> _LiveComparison:
        def load() -> _LiveComparison:
            found = self._members_in_storage(ref)
            if not found:
                raise NotFound(f"{ref} does not exist", field="name")
            configured = self._configured(ref.namespace)
            return _live_from(ref, [(s, attr) for s, attr in found if s in configured])

        return self._live.get(ref, load)


def _live_from(
    ref: ComparisonRef, found: Sequence[tuple[StudyRef, dict[str, Any]]]
) -> _LiveComparison:
    """Rebuilds a complete comparison from its members' attributes.

    Raises:
        FailedPrecondition: a definition this server cannot read, or members missing.
    """
    if not found:
        raise FailedPrecondition(_half_created(ref, "all"), field="name")
    attr = found[0][1]
    try:
        p = plan_from_definition(ref, attr["definition"], attr.get("grid_sizes", {}))
    except (KeyError, TypeError, ValueError, json_format.ParseError) as e:
        raise FailedPrecondition(
            f"{ref} has a definition this server cannot read: {e}", field="name"
        ) from None
    present = {study for study, _ in found}
    missing = [m.study for m in p.members if m.study not in present]
    if missing:
        raise FailedPrecondition(
            _half_created(ref, f"{len(missing)} of its {len(p.members)}"), field="name"
        )
    return _LiveComparison(p, float(attr.get("create_time", 0.0)))


def _half_created(ref: ComparisonRef, how_many: str) -> str:
    return (
        f"{ref} is half-created: {how_many} member studies are missing; create it again "
        "(same request, or load_if_exists) to complete it, or delete it"
    )

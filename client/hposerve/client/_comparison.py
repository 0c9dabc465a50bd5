"""The comparison handle: several methods on one task, with one ask for all their studies."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import study_service_pb2 as pb

from ._distributions import Distribution, distribution_from_proto
from ._enums import directions_from_proto
from ._heartbeat import Heartbeat
from ._names import member_study_id, parse_comparison, parse_study, study_name
from ._study import Study
from ._transport import Transport
from ._trial import FrozenTrial, Trial


@dataclass(frozen=True)
class ComparisonArm:
    """One method of a comparison.

    Attributes:
        name: The arm's name, unique within the comparison.
        sampler: The sampler type, e.g. ``"tpe"``.
        pruner: The pruner type, e.g. ``"median"``; None when the arm does not prune.
        shuffle_grid: A grid arm evaluating a random subset of a grid larger than the budget.
        grid_size: The number of points of a grid arm's grid; None for other arms.
        spec: The arm as the server describes it (full sampler and pruner specs).
    """

    name: str
    sampler: str
    pruner: str | None
    shuffle_grid: bool
    grid_size: int | None
    spec: cpb.ComparisonArm

    @classmethod
    def from_proto(cls, proto: cpb.ComparisonArm) -> ComparisonArm:
        """Builds an arm from a proto ``ComparisonArm``."""
        pruner = proto.pruner.WhichOneof("kind") if proto.HasField("pruner") else None
        sampler = proto.sampler.WhichOneof("kind") or ""
        return cls(
            name=proto.name,
            sampler=sampler,
            pruner=None if pruner in (None, "none") else pruner,
            shuffle_grid=proto.shuffle_grid,
            grid_size=proto.grid_size if sampler == "grid" else None,
            spec=proto,
        )


@dataclass(frozen=True)
class ComparisonMember:
    """One member study of a comparison and its progress.

    Attributes:
        arm: The member's arm.
        seed: Its seed index, from 0.
        study_name: The short name of its study, ``{comparison}.{arm}.s{seed}``.
        resource_name: ``namespaces/{namespace}/studies/{study_name}``.
        n_asked: Trials handed out so far (its budget is the comparison's trials_per_study).
        n_finished: Trials complete, pruned or failed.
        n_complete: Complete trials.
        best_value: The best value among its complete trials, or None.
    """

    arm: str
    seed: int
    study_name: str
    resource_name: str
    n_asked: int
    n_finished: int
    n_complete: int
    best_value: float | None

    @classmethod
    def from_proto(cls, proto: cpb.ComparisonMember) -> ComparisonMember:
        """Builds a member from a proto ``ComparisonMember``."""
        return cls(
            arm=proto.arm,
            seed=proto.seed,
            study_name=parse_study(proto.study).study,
            resource_name=proto.study,
            n_asked=proto.trials_asked,
            n_finished=proto.trials_finished,
            n_complete=proto.trials_complete,
            best_value=proto.best_value if proto.HasField("best_value") else None,
        )


class ComparisonRun(NamedTuple):
    """The trials of one member study: what a report of the comparison is built from."""

    arm: str
    seed: int
    trials: list[FrozenTrial]


class ComparisonTrial(Trial):
    """A running trial handed out by a comparison: a :class:`Trial` of a member study.

    Report and prune as with any trial; tell it with ``comparison.tell(trial, value)`` or
    ``trial.study.tell(trial, value)``.

    Attributes:
        arm: The arm whose member study the trial belongs to.
        seed: The member's seed index: pass it on to the task, so that every arm sees the same
            seeds.
    """

    def __init__(self, study: Study, proto: pb.Trial, *, arm: str, seed: int) -> None:
        super().__init__(study, proto)
        self.arm = arm
        self.seed = seed

    def __repr__(self) -> str:
        return f"ComparisonTrial(name={self.name!r}, arm={self.arm!r}, params={self.params!r})"


class Comparison:
    """A comparison on the server. Get one from ``Client.create_comparison`` or
    ``Client.get_comparison``.

    Trainers call :meth:`ask` until it returns None: each ask gets a trial of the member study
    that is furthest behind, so all arms progress at the same pace. Thread-safe.

    Example::

        comparison = client.create_comparison(
            name="branin-cmp",
            search_space={"x": FloatDistribution(-5, 10), "y": FloatDistribution(0, 15)},
            arms=["tpe", "random", "grid"],
            seeds=5,
            trials_per_study=100,
        )
        while (trial := comparison.ask()) is not None:
            comparison.tell(trial, evaluate(trial.params, seed=trial.seed))

    Attributes:
        name: The short comparison name.
        resource_name: ``namespaces/{namespace}/comparisons/{name}``.
        direction: ``"minimize"`` or ``"maximize"``.
        search_space: The fixed space of every trial, ``{name: distribution}``.
        arms: The arms, in order.
        seeds: Member studies per arm.
        trials_per_study: The budget of each member study.
    """

    def __init__(self, transport: Transport, heartbeat: Heartbeat, proto: cpb.Comparison) -> None:
        self._transport = transport
        self._heartbeat = heartbeat
        self._proto = proto
        self._studies: dict[str, Study] = {}
        self._lock = threading.Lock()
        self.resource_name: str = proto.name
        self.name: str = parse_comparison(proto.name).comparison
        # A name ("minimize"), as reports store it.
        direction = directions_from_proto([proto.direction] if proto.direction else [])[0]
        self.direction: str = direction.name.lower()
        self.search_space: dict[str, Distribution] = {
            p.name: distribution_from_proto(p.distribution) for p in proto.search_space
        }
        self.arms: list[ComparisonArm] = [ComparisonArm.from_proto(a) for a in proto.arms]
        self.seeds: int = proto.seeds
        self.trials_per_study: int = proto.trials_per_study

    def __repr__(self) -> str:
        arms = [a.name for a in self.arms]
        return f"Comparison(name={self.resource_name!r}, arms={arms!r}, seeds={self.seeds})"

    @property
    def proto(self) -> cpb.Comparison:
        """The comparison as the server last described it."""
        return self._proto

    @property
    def members(self) -> list[ComparisonMember]:
        """The member studies and their progress as last fetched (see :meth:`progress`)."""
        return [ComparisonMember.from_proto(m) for m in self._proto.members]

    @property
    def done(self) -> bool:
        """As last fetched: every member has handed out its budget."""
        return self._proto.done

    @property
    def finished(self) -> bool:
        """As last fetched: done, and every trial handed out has finished."""
        return self._proto.finished

    def arm(self, name: str) -> ComparisonArm:
        """The arm of that name.

        Raises:
            KeyError: No such arm.
        """
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    def progress(self) -> list[ComparisonMember]:
        """Fetches the comparison again and returns its members' progress."""
        proto = self._transport.call(
            "GetComparison", cpb.GetComparisonRequest(name=self.resource_name)
        )
        self._proto = proto
        return self.members

    def study(self, arm: str, seed: int) -> Study:
        """The member study of ``arm`` and seed index ``seed``.

        Raises:
            NotFound: No such member.
        """
        namespace = parse_comparison(self.resource_name).namespace
        return self._study(study_name(namespace, member_study_id(self.name, arm, seed)))

    def _study(self, resource_name: str) -> Study:
        with self._lock:
            study = self._studies.get(resource_name)
        if study is None:
            proto = self._transport.call("GetStudy", pb.GetStudyRequest(name=resource_name))
            study = Study(self._transport, self._heartbeat, proto)
            with self._lock:
                study = self._studies.setdefault(resource_name, study)
        return study

    def ask(self, *, request_id: str | None = None) -> ComparisonTrial | None:
        """Starts a trial of the member study that is furthest behind, all parameters sampled.

        Args:
            request_id: Idempotency key; a fresh one is made if None.

        Returns:
            The running trial (its ``params`` are set; its lease is renewed until it is told),
            or None when every member has handed out its budget.
        """
        request = cpb.AskComparisonTrialRequest(
            comparison=self.resource_name, request_id=request_id or ""
        )
        response = self._transport.call(
            "AskComparisonTrial", request, timeout=self._transport.config.ask_timeout
        )
        if response.done:
            return None
        study = self._study(response.study)
        trial = ComparisonTrial(study, response.trial, arm=response.arm, seed=response.seed)
        self._heartbeat.register(trial, study.lease_seconds)
        return trial

    def tell(
        self,
        trial: Trial,
        values: float | Sequence[float] | None = None,
        *,
        state: Any = "complete",
    ) -> FrozenTrial:
        """Finishes a trial of this comparison; the same as ``trial.study.tell(...)``.

        Args:
            trial: A trial from :meth:`ask`.
            values: The objective value; needed for ``"complete"``.
            state: ``"complete"``, ``"pruned"`` or ``"failed"``.

        Returns:
            The finished trial as recorded.
        """
        return trial.study.tell(trial, values, state=state)

    def runs(self) -> list[ComparisonRun]:
        """The trials of every member study (in any state), for a report.

        One ``(arm, seed, trials)`` per member, arms in order, then seeds ascending.
        """
        self.progress()
        return [
            ComparisonRun(m.arm, m.seed, self._study(m.resource_name).trials) for m in self.members
        ]

    def delete(self) -> None:
        """Deletes the member studies and their trials."""
        request = cpb.DeleteComparisonRequest(name=self.resource_name)
        self._transport.call("DeleteComparison", request)


__all__ = [
    "Comparison",
    "ComparisonArm",
    "ComparisonMember",
    "ComparisonRun",
    "ComparisonTrial",
]

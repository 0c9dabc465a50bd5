"""The studies of a client's namespace, with Optuna's functions' names and arguments.

``client.create_study(...)`` takes what ``optuna.create_study(...)`` takes (samplers and
pruners as Optuna objects or dicts); ``load_study``, ``delete_study``,
``get_all_study_summaries`` and ``get_all_study_names`` mirror Optuna's module functions.
"""

from __future__ import annotations

import datetime
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from hposerve.v1 import study_service_pb2 as pb

from ._enums import StudyDirection, directions_from_proto
from ._errors import InvalidArgument, NotFound
from ._frozen_trial import FrozenTrial
from ._names import namespace_name, parse_study, resolve_study
from ._optuna_specs import pruner_from_optuna, sampler_from_optuna
from ._requests import study_options, study_request
from ._study import ConstraintsFunc, Study

if TYPE_CHECKING:
    from ._config import ClientConfig
    from ._heartbeat import Heartbeat
    from ._transport import Transport

# Optuna's prefix of generated study names (optuna.storages._base.DEFAULT_STUDY_NAME_PREFIX).
_GENERATED_PREFIX = "no-name-"


@dataclass(frozen=True)
class StudySummary:
    """One study as listed by :meth:`Client.list_studies`, like ``optuna.study.StudySummary``.

    Attributes:
        name: The short study name (``study_name`` too).
        resource_name: ``namespaces/{namespace}/studies/{name}``.
        directions: One :class:`StudyDirection` per objective.
        n_trials: Number of trials in any state.
        n_complete_trials: Number of complete trials.
        sampler: The sampler type (``"tpe"``, ``"random"``...), or None for the default.
        pruner: The pruner type (``"median"``, ``"none"``...), or None for the default.
        datetime_start: When the study was created (naive, local time, as Optuna's).
        best_trial: The best trial (``get_all_study_summaries(include_best_trial=True)``,
            single-objective studies with a complete trial), else None.
        user_attrs: The study's user attributes (``get_all_study_summaries`` only).
    """

    name: str
    resource_name: str
    directions: list[StudyDirection]
    n_trials: int
    n_complete_trials: int
    sampler: str | None
    pruner: str | None
    datetime_start: datetime.datetime | None
    best_trial: FrozenTrial | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def study_name(self) -> str:
        """The short study name (Optuna's spelling)."""
        return self.name

    @property
    def direction(self) -> StudyDirection:
        """The direction of a single-objective study. Raises RuntimeError otherwise."""
        if len(self.directions) != 1:
            raise RuntimeError("this study has several objectives; use `directions`")
        return self.directions[0]

    @classmethod
    def from_proto(cls, proto: pb.Study) -> StudySummary:
        """Builds a summary from a proto ``Study``."""
        created = None
        if proto.HasField("create_time"):
            utc = proto.create_time.ToDatetime(tzinfo=datetime.timezone.utc)
            created = utc.astimezone().replace(tzinfo=None)
        return cls(
            name=parse_study(proto.name).study,
            resource_name=proto.name,
            directions=directions_from_proto(proto.directions),
            n_trials=proto.trial_count,
            n_complete_trials=proto.complete_trial_count,
            sampler=proto.sampler.WhichOneof("kind") if proto.HasField("sampler") else None,
            pruner=proto.pruner.WhichOneof("kind") if proto.HasField("pruner") else None,
            datetime_start=created,
        )


def _refuse_storage(storage: Any) -> None:
    # Storage is the server's: a script's own URL would be silently unused.
    if storage is not None:
        raise InvalidArgument(
            f"storage={storage!r}: the server keeps the studies in its own storage; drop the "
            "storage argument (hposerve serve --storage URL chooses it)",
            field_violations=[("storage", "not a client argument")],
        )


def _chosen_name(study_name: str | None, name: str | None) -> str:
    if name is not None and study_name is not None and name != study_name:
        raise InvalidArgument(f"study_name={study_name!r} and name={name!r}: give one")
    return study_name or name or f"{_GENERATED_PREFIX}{uuid.uuid4()}"


def _is_object(arg: Any) -> bool:
    """Whether a sampler or pruner argument is an object (Optuna's, or a custom class)."""
    return arg is not None and not isinstance(arg, (Mapping, Message))


def _sampler_arg(sampler: Any) -> tuple[Any, ConstraintsFunc | None]:
    # An Optuna object is translated; any other object is refused there, naming the dict form.
    if _is_object(sampler):
        return sampler_from_optuna(sampler)
    return sampler, None


class StudyMethods:
    """Creating, loading, listing and deleting studies; mixed into ``Client``."""

    config: ClientConfig
    _transport: Transport
    _heartbeat: Heartbeat

    @property
    def parent(self) -> str:
        """The resource name of this client's namespace: ``namespaces/{namespace}``."""
        return namespace_name(self.config.namespace)

    def _study_name(self, name: str) -> str:
        # A full resource name is accepted too, e.g. one taken from a Study or a trial.
        return resolve_study(self.config.namespace, name)

    def create_study(
        self,
        *,
        study_name: str | None = None,
        name: str | None = None,
        direction: Any = None,
        directions: Sequence[Any] | None = None,
        sampler: Any = None,
        pruner: Any = None,
        load_if_exists: bool = False,
        storage: Any = None,
        lease_seconds: float | None = None,
        retry_expired_trials: bool = False,
        max_retries: int | None = None,
        request_id: str | None = None,
    ) -> Study:
        """Creates a study (or loads it, with ``load_if_exists``), as ``optuna.create_study``:
        ``optuna.create_study(`` becomes ``client.create_study(``, without ``storage=``.

        Args:
            study_name: Short name, unique in the namespace (``name`` is the same); None
                generates one as Optuna does (``no-name-{uuid4}``).
            direction: ``"minimize"``, ``"maximize"`` or a ``StudyDirection`` (ours or
                Optuna's); ``directions``: one per objective. Neither: one minimized.
            sampler: An Optuna sampler object (``TPESampler(seed=0)``), translated exactly or
                refused, or a dict such as ``{"type": "tpe", "seed": 0}``; None: TPE. Its
                ``constraints_func`` runs in this process before each tell.
            pruner: An Optuna pruner object or a dict such as ``{"type": "median"}``.
            load_if_exists: Return the existing study instead of raising AlreadyExists.
            storage: Must be None: the server owns storage (InvalidArgument otherwise).
            lease_seconds: How long an asked trial lives without a heartbeat; None: 300 s.
            retry_expired_trials: Enqueue the parameters of a trial whose lease expired again
                (at most ``max_retries`` times; None: 3).
            request_id: Idempotency key; a fresh one is made if None.

        Raises:
            InvalidArgument: A bad argument (no exact spec for a sampler, a storage...).
            AlreadyExists: The study exists and ``load_if_exists`` is not set.
        """
        _refuse_storage(storage)
        sampler, constraints_func = _sampler_arg(sampler)
        options = study_options(
            lease_seconds=lease_seconds,
            retry_expired_trials=retry_expired_trials,
            max_retries=max_retries,
        )
        request = study_request(
            parent=self.parent,
            name=_chosen_name(study_name, name),
            direction=direction,
            directions=directions,
            sampler=sampler,
            pruner=pruner_from_optuna(pruner) if _is_object(pruner) else pruner,
            options=options,
            load_if_exists=load_if_exists,
            request_id=request_id,
        )
        study = self._study(self._transport.call("CreateStudy", request))
        study._constraints_func = constraints_func
        return study

    def load_study(
        self,
        *,
        study_name: str | None = None,
        storage: Any = None,
        sampler: Any = None,
        pruner: Any = None,
    ) -> Study:
        """Returns an existing study, as ``optuna.load_study``.

        The server keeps the sampler and pruner the study was created with: a ``sampler``
        given here is used for its ``constraints_func`` only, and a ``pruner`` is ignored
        (both with a warning when given).

        Raises:
            NotFound: No such study.
            InvalidArgument: ``storage`` given, or no name.
        """
        _refuse_storage(storage)
        if not study_name:
            raise InvalidArgument("load_study needs a study_name")
        if sampler is not None or pruner is not None:
            warnings.warn(
                "load_study: the server keeps the study's own sampler and pruner; a sampler's "
                "constraints_func is used, the rest is ignored",
                stacklevel=2,
            )
        study = self.get_study(study_name)
        study._constraints_func = _sampler_arg(sampler)[1]
        return study

    def get_study(self, name: str) -> Study:
        """Returns the study of that (short or resource) name.

        Raises:
            NotFound: No such study.
        """
        request = pb.GetStudyRequest(name=self._study_name(name))
        return self._study(self._transport.call("GetStudy", request))

    def list_studies(self) -> list[StudySummary]:
        """Returns the studies of the namespace, fetching them a page at a time."""
        request = pb.ListStudiesRequest(parent=self.parent)
        return [
            StudySummary.from_proto(s)
            for s in self._transport.pages("ListStudies", request, "studies")
        ]

    def get_all_study_summaries(
        self, include_best_trial: bool = True, *, storage: Any = None
    ) -> list[StudySummary]:
        """The studies of the namespace with their user attributes and (optionally) best
        trials, as ``optuna.get_all_study_summaries``. Two calls per study."""
        _refuse_storage(storage)
        summaries = []
        for summary in self.list_studies():
            study = self._study_of(summary)
            best = None
            if include_best_trial and len(summary.directions) == 1:
                try:
                    best = study.best_trial
                except (ValueError, NotFound):
                    best = None
            try:
                attrs = study.user_attrs
            except NotFound:
                continue  # deleted meanwhile
            summaries.append(
                StudySummary(**{**summary.__dict__, "best_trial": best, "user_attrs": attrs})
            )
        return summaries

    def get_all_study_names(self, *, storage: Any = None) -> list[str]:
        """The short names of the namespace's studies, as ``optuna.get_all_study_names``."""
        _refuse_storage(storage)
        return [s.name for s in self.list_studies()]

    def delete_study(
        self, name: str | None = None, *, study_name: str | None = None, storage: Any = None
    ) -> None:
        """Deletes the study of that (short or resource) name and all its trials.

        Raises:
            NotFound: No such study.
        """
        _refuse_storage(storage)
        target = name or study_name
        if not target:
            raise InvalidArgument("delete_study needs a study_name")
        request = pb.DeleteStudyRequest(name=self._study_name(target))
        self._transport.call("DeleteStudy", request)

    def _study_of(self, summary: StudySummary) -> Study:
        proto = pb.Study(name=summary.resource_name)
        return self._study(proto)

    def _study(self, proto: pb.Study) -> Study:
        return Study(self._transport, self._heartbeat, proto)

"""The studies of one storage: create, get, list, delete; and loading the live ones.

A study named ``study`` in namespace ``ns`` is the Optuna study ``ns/study``; its hposerve
configuration is the study system attribute ``hposerve:config`` (``_config``), so any process
that opens the same storage rebuilds the same study.

Creating a study writes several journal records (Optuna's study, then each attribute); the
config is the last. A study without it and without trials is half-created (a crash cut its
create short): the next create of that name completes it and answers as a fresh create, so a
retried CreateStudy, or a ``load_if_exists``, never gets a study with default settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hposerve.server.domain import _optuna, _specs
from hposerve.server.domain._cache import LiveCache
from hposerve.server.domain._config import (
    ASKED_BY_ATTR,
    CONFIG_ATTR,
    REQUEST_ATTR,
    StudyConfig,
    StudyOptions,
    directions_or_default,
)
from hposerve.server.domain._exceptions import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from hposerve.server.domain._live_study import LiveStudy
from hposerve.server.domain._names import StudyRef, check_namespace, study_ref_from_optuna_name
from hposerve.server.domain._sampling import SamplingProcesses
from hposerve.server.domain._tombstones import DeleteRecords
from hposerve.v1 import specs_pb2

__all__ = ["StudyCatalog", "StudyInfo"]


@dataclasses.dataclass(frozen=True)
class StudyInfo:
    """A study as callers see it."""

    ref: StudyRef
    config: StudyConfig
    trial_count: int
    complete_trial_count: int


class StudyCatalog:
    """The studies of one storage, and the live state of those in use.

    Thread-safety: every method may be called from any thread. Creates and deletes take one
    lock (they are rare); loading a study takes a lock of that study only.

    Raises (from every method): InvalidArgument, NotFound, AlreadyExists, FailedPrecondition
    as documented on each; nothing else on purpose.
    """

    def __init__(
        self, storage: BaseStorage, *, exclusive: bool, sampling: SamplingProcesses | None = None
    ) -> None:
        self._storage = storage
        self._exclusive = exclusive
        self._sampling = sampling
        self._live: LiveCache[StudyRef, LiveStudy] = LiveCache()
        # Creating a study writes its config right after it: one creation at a time, so that a
        # concurrent get-or-create never loads a study before its config is there. Deletes
        # take it too, so that a retried delete finds the first one's answer.
        self._write_lock = threading.Lock()
        self._deletes = DeleteRecords(storage)

    # -- live studies ------------------------------------------------------------------------

    def live(self, ref: StudyRef) -> LiveStudy:
        """The live study of ``ref``, loaded on first use. Raises: NotFound."""
        return self._live.get(ref, lambda: self._load(ref))

    def loaded(self, ref: StudyRef) -> LiveStudy | None:
        """The live study of ``ref`` if it is loaded, without loading it."""
        return self._live.peek(ref)

    def live_studies(self) -> list[LiveStudy]:
        """The studies loaded now."""
        return self._live.values()

    def forget_all(self) -> None:
        """Drops every live study (each reloads on its next use)."""
        for live in self._live.values():
            self._live.forget(live.ref, live)

    def load_with_running_trials(self) -> None:
        """Loads the studies that have running trials, so that their leases are watched."""
        running = (TrialState.RUNNING,)
        for frozen in self._storage.get_all_studies():
            ref = study_ref_from_optuna_name(frozen.study_name)
            study_id = _optuna.study_id_of(frozen)
            if ref is not None and self._storage.get_all_trials(study_id, False, running):
                try:
                    self.live(ref)
                except NotFound:
                    continue  # deleted meanwhile

    # -- create, get, list, delete -------------------------------------------------------------

    def create_study(
        self,
        ref: StudyRef,
        *,
        directions: Sequence[StudyDirection],
        sampler: specs_pb2.SamplerSpec | None,
        pruner: specs_pb2.PrunerSpec | None,
        options: StudyOptions,
        load_if_exists: bool,
        request_id: str = "",
        system_attrs: Mapping[str, Any] | None = None,
    ) -> StudyInfo:
        """Creates a study, or returns the existing one (load_if_exists, or the same request).

        ``system_attrs`` are stored with a new study (e.g. its comparison's definition); an
        existing study keeps its own.

        Raises:
            InvalidArgument: a bad spec, direction or option.
            AlreadyExists: the study exists and load_if_exists is false.
            FailedPrecondition: load_if_exists, but the study exists with other directions.
        """
        config = StudyConfig(
            directions=directions_or_default(directions),
            sampler=sampler or specs_pb2.SamplerSpec(),
            pruner=pruner or specs_pb2.PrunerSpec(),
            options=options,
            create_time=time.time(),
        )
        # Validate before anything is written: a bad spec changes nothing.
        n = len(config.directions)
        _specs.build_sampler(config.sampler, n_objectives=n)
        _specs.build_pruner(config.pruner, n_objectives=n)
        with self._write_lock:
            try:
                study_id = self._storage.create_new_study(list(config.directions), ref.optuna_name)
            except optuna.exceptions.DuplicatedStudyError:
                study_id = self._storage.get_study_id_from_name(ref.optuna_name)
                if not self._half_created(study_id):
                    return self._existing(ref, config, load_if_exists, request_id)
                self._check_directions(ref, self._storage.get_study_directions(study_id), config)
            # Optuna writes a study's name and directions as one record and each attribute as
            # one more: the config goes last, so a study that has it has all the others.
            for key, value in (system_attrs or {}).items():
                self._storage.set_study_system_attr(study_id, key, value)
            if request_id:
                self._storage.set_study_system_attr(study_id, REQUEST_ATTR, request_id)
            self._storage.set_study_system_attr(study_id, CONFIG_ATTR, config.to_json())
            self._live.forget(ref)  # loaded while half-created: with the defaults
            return self.get_study(ref)

    def _half_created(self, study_id: int) -> bool:
        """Whether a create was cut short: no config and nothing in it yet.

        Such a study is completed by the next create of its name (a retry, or anyone's create:
        the first caller never learnt it exists). A study made by plain Optuna has no config
        either; once it has trials or user attributes it is kept as it is.
        """
        return (
            CONFIG_ATTR not in self._storage.get_study_system_attrs(study_id)
            and not self._storage.get_study_user_attrs(study_id)
            and not self._storage.get_all_trials(study_id, deepcopy=False)
        )

    def _existing(
        self, ref: StudyRef, config: StudyConfig, load_if_exists: bool, request_id: str
    ) -> StudyInfo:
        existing = self.get_study(ref)
        retried = bool(request_id) and self.system_attrs(ref).get(REQUEST_ATTR) == request_id
        if not (load_if_exists or retried):
            raise AlreadyExists(
                f"{ref} already exists; pass load_if_exists to use it", field="study_id"
            )
        self._check_directions(ref, existing.config.directions, config)
        return existing

    @staticmethod
    def _check_directions(
        ref: StudyRef, directions: Sequence[StudyDirection], config: StudyConfig
    ) -> None:
        if tuple(directions) != config.directions:
            raise FailedPrecondition(
                f"{ref} exists with directions "
                f"{[d.name.lower() for d in directions]}, not "
                f"{[d.name.lower() for d in config.directions]}",
                field="directions",
            )

    def get_study(self, ref: StudyRef) -> StudyInfo:
        """Raises: NotFound."""
        live = self.live(ref)
        try:
            trials = live.study.get_trials(deepcopy=False)
        except KeyError:  # deleted behind this process's back
            self._live.forget(ref, live)
            raise NotFound(f"{ref} does not exist", field="name") from None
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        return StudyInfo(ref, live.config, len(trials), complete)

    def list_studies(self, namespace: str, *, after: str, limit: int) -> list[StudyInfo]:
        """Studies of a namespace in name order, those with names after ``after``."""
        check_namespace(namespace)
        prefix = namespace + "/"
        names = sorted(
            s.study_name[len(prefix) :]
            for s in self._storage.get_all_studies()
            if s.study_name.startswith(prefix) and s.study_name[len(prefix) :] > after
        )
        infos = []
        for name in names[:limit]:
            try:
                infos.append(self.get_study(StudyRef(namespace, name)))
            except (NotFound, InvalidArgument):
                continue  # deleted meanwhile, or an Optuna study whose name is not ours
        return infos

    def delete_study(self, ref: StudyRef, *, request_id: str = "") -> None:
        """Deletes a study and its trials; a retry of the same request answers as the first,
        after a restart and on another replica too (``_tombstones``).

        Raises:
            NotFound: no such study (and no earlier delete of it with ``request_id``).
        """
        if not self.delete_studies(str(ref), [ref], request_id=request_id):
            raise NotFound(f"{ref} does not exist", field="name")

    def delete_studies(self, what: str, refs: Sequence[StudyRef], *, request_id: str = "") -> bool:
        """Deletes those of ``refs`` that exist, as one delete of ``what`` (a study, a
        comparison's members); False when none existed and no earlier delete of ``what`` with
        ``request_id`` was recorded. A retry completes what a crash left of the first."""
        with self._write_lock:
            earlier = self._deletes.recorded(what, request_id) if request_id else None
            if earlier is None:
                earlier = [i for i in map(self._study_id, refs) if i is not None]
                if not earlier:
                    return False
                if request_id:
                    self._deletes.record(what, request_id, earlier)
            for study_id in earlier:
                with contextlib.suppress(KeyError):  # deleted by the first attempt, or meanwhile
                    self._storage.delete_study(study_id)
            for ref in refs:
                self._live.forget(ref)
            return True

    def _study_id(self, ref: StudyRef) -> int | None:
        try:
            return self._storage.get_study_id_from_name(ref.optuna_name)
        except KeyError:
            return None

    # -- what other parts stored ---------------------------------------------------------------

    def system_attrs(self, ref: StudyRef) -> dict[str, Any]:
        """A study's system attributes. Raises: NotFound."""
        try:
            study_id = self._storage.get_study_id_from_name(ref.optuna_name)
            return dict(self._storage.get_study_system_attrs(study_id))
        except KeyError:
            raise NotFound(f"{ref} does not exist", field="name") from None

    def studies_with_system_attr(self, namespace: str, key: str) -> dict[StudyRef, Any]:
        """The studies of a namespace that carry the system attribute ``key``, with its value.

        One scan of the storage's studies (in memory for the journal storages).
        """
        check_namespace(namespace)
        found: dict[StudyRef, Any] = {}
        for frozen in self._storage.get_all_studies():
            if key in frozen.system_attrs:
                ref = study_ref_from_optuna_name(frozen.study_name)
                if ref is not None and ref.namespace == namespace:
                    found[ref] = frozen.system_attrs[key]
        return found

    # -- loading -------------------------------------------------------------------------------

    def _load(self, ref: StudyRef) -> LiveStudy:
        try:
            study_id = self._storage.get_study_id_from_name(ref.optuna_name)
        except KeyError:
            raise NotFound(f"{ref} does not exist", field="name") from None
        config = StudyConfig.from_attrs(
            self._storage.get_study_directions(study_id),
            self._storage.get_study_system_attrs(study_id),
        )
        n = len(config.directions)
        study = optuna.load_study(
            study_name=ref.optuna_name,
            storage=self._storage,
            sampler=_specs.build_sampler(config.sampler, n_objectives=n),
            pruner=_specs.build_pruner(config.pruner, n_objectives=n),
        )
        live = LiveStudy(ref, study, config, exclusive=self._exclusive, sampling=self._sampling)
        requests: dict[str, list[int]] = {}
        for trial in study.get_trials(deepcopy=False):
            if trial.state == TrialState.RUNNING:
                live.adopt(trial, fresh=True)
            elif trial.state == TrialState.WAITING:
                live.waiting += 1
            for name, distribution in trial.distributions.items():
                live.distributions.setdefault(name, distribution)
            for key in (REQUEST_ATTR, ASKED_BY_ATTR):  # what created it, the ask that started it
                request = trial.system_attrs.get(key)
                if request:
                    requests.setdefault(request, []).append(trial.number)
        for request, numbers in requests.items():
            live.requests.remember(request, numbers)
        return live

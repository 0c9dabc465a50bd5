"""The domain: live Optuna studies, trials handed out under leases, idempotent requests.

A study named ``study`` in namespace ``ns`` is the Optuna study ``ns/study``; its hposerve
configuration (sampler and pruner specs, lease options) is a JSON study system attribute, so
any process that opens the same storage rebuilds the same study.

Each study in use has one live ``optuna.Study`` (with its sampler's state) kept in memory, so an
ask does not reload anything. Two locks per study, none global:

* ``sample_lock`` serializes the sampler (ask, define-by-run suggest): a seeded study suggests
  exactly what the same study run in-process would, and a slow sampler holds up only its own
  study's asks.
* ``lock`` guards the table of running trials and each trial's transitions (report, tell,
  lease expiry, heartbeat). It is held only for short storage calls, never while sampling.

Leases: a handed-out trial must be renewed by heartbeats. The expiry (wall-clock seconds) is
kept in memory and in the trial's system attribute ``hposerve:lease`` so that replicas sharing
one database, and a restarted server, agree on it. A reaper thread fails expired trials and,
if the study asks for it, enqueues their parameters again.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import optuna
from google.protobuf import json_format
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain import _specs
from hposerve.server.domain._exceptions import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from hposerve.server.storage._open import answers_from_memory, is_exclusive
from hposerve.v1 import specs_pb2

_logger = logging.getLogger(__name__)

CONFIG_ATTR = "hposerve:config"
LEASE_ATTR = "hposerve:lease"
REQUEST_ATTR = "hposerve:request"
RETRY_OF_ATTR = "hposerve:retry_of"
RETRIES_ATTR = "hposerve:retries"
EXPIRED_ATTR = "hposerve:expired"
SAMPLE_SECONDS_ATTR = "hposerve:sample_seconds"

_NAMESPACE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_STUDY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_MAX_REMEMBERED_REQUESTS = 10_000
MAX_ASK_COUNT = 1000
MAX_LEASE_SECONDS = 30 * 24 * 3600.0
MAX_STEP = 2**31 - 1  # Optuna's SQL schema keeps steps in 32 bits
_SAMPLING_ERRORS = (ValueError, TypeError, ArithmeticError)
# Samplers that fit no model to the trials: an ask costs about what its bookkeeping costs.
_QUICK_SAMPLERS = frozenset({"random", "grid", "qmc"})


def check_namespace(namespace: str) -> None:
    """Raises InvalidArgument unless ``namespace`` is a valid namespace id."""
    if not _NAMESPACE_RE.match(namespace):
        raise InvalidArgument(
            f"invalid namespace {namespace!r}: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
            field="namespace",
        )


@dataclasses.dataclass(frozen=True)
class StudyRef:
    """A study's identity: ``namespaces/{namespace}/studies/{study}``."""

    namespace: str
    study: str

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        if not _STUDY_RE.match(self.study):
            raise InvalidArgument(
                f"invalid study name {self.study!r}: use 1-128 letters, digits, '.', '_' "
                "and '-', starting with a letter or digit",
                field="study",
            )

    @property
    def optuna_name(self) -> str:
        return f"{self.namespace}/{self.study}"

    def __str__(self) -> str:
        return f"namespaces/{self.namespace}/studies/{self.study}"


@dataclasses.dataclass(frozen=True)
class TrialRef:
    """A trial's identity: its study and number."""

    study: StudyRef
    number: int

    def __str__(self) -> str:
        return f"{self.study}/trials/{self.number}"


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """Per-study service options (stored with the study)."""

    lease_seconds: float = 300.0
    retry_expired_trials: bool = False
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.lease_seconds <= MAX_LEASE_SECONDS:
            raise InvalidArgument(
                f"lease_seconds must be in (0, {MAX_LEASE_SECONDS:.0f}], got {self.lease_seconds}",
                field="options.lease_seconds",
            )
        if self.max_retries < 0:
            raise InvalidArgument(
                f"max_retries must be >= 0, got {self.max_retries}", field="options.max_retries"
            )


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """What a study was created with."""

    directions: tuple[StudyDirection, ...]
    sampler: specs_pb2.SamplerSpec
    pruner: specs_pb2.PrunerSpec
    options: StudyOptions
    create_time: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "sampler": json_format.MessageToDict(self.sampler),
                "pruner": json_format.MessageToDict(self.pruner),
                "options": dataclasses.asdict(self.options),
                "create_time": self.create_time,
            }
        )

    @classmethod
    def from_attrs(
        cls, directions: Sequence[StudyDirection], attrs: Mapping[str, Any]
    ) -> StudyConfig:
        """Reads the stored config; a study made by plain Optuna gets the defaults."""
        raw = json.loads(attrs.get(CONFIG_ATTR, "{}"))
        return cls(
            directions=tuple(directions),
            sampler=json_format.ParseDict(raw.get("sampler", {}), specs_pb2.SamplerSpec()),
            pruner=json_format.ParseDict(raw.get("pruner", {}), specs_pb2.PrunerSpec()),
            options=StudyOptions(**raw.get("options", {})),
            create_time=raw.get("create_time", 0.0),
        )


@dataclasses.dataclass(frozen=True)
class StudyInfo:
    """A study as callers see it."""

    ref: StudyRef
    config: StudyConfig
    trial_count: int
    complete_trial_count: int


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """A trial as callers see it: Optuna's frozen trial and, while running, its lease."""

    ref: TrialRef
    trial: FrozenTrial
    lease_expires: float | None


@dataclasses.dataclass
class _Lease:
    trial_id: int
    expires: float
    trial: optuna.Trial | None = None  # the live trial; rebuilt lazily after a restart


class _LiveStudy:
    def __init__(
        self, ref: StudyRef, study: optuna.Study, config: StudyConfig, *, exclusive: bool
    ) -> None:
        self.ref = ref
        self.study = study
        self.config = config
        self.sample_lock = threading.Lock()
        self.lock = threading.Lock()
        self.leases: dict[int, _Lease] = {}
        # request id -> trial numbers it created (ask, enqueue); bounded, oldest dropped.
        self.requests: collections.OrderedDict[str, list[int]] = collections.OrderedDict()
        # With a storage only this process writes, the WAITING (enqueued) trials are counted
        # here, so that an ask need not scan all trials for them (Optuna's journal storage
        # scans the whole study for each ask, a cost that grows with the number of trials).
        self.exclusive = exclusive
        self.waiting = 0
        # The first distribution seen for each parameter: Optuna refuses an incompatible one
        # (another kind, other choices) once a trial exists, so it is checked before.
        self.distributions: dict[str, BaseDistribution] = {}

    def check_compatible(self, space: Mapping[str, BaseDistribution], field: str) -> None:
        for name, distribution in space.items():
            known = self.distributions.setdefault(name, distribution)
            try:
                optuna.distributions.check_distribution_compatibility(known, distribution)
            except ValueError as e:
                raise InvalidArgument(
                    f"parameter {name!r} conflicts with its distribution in earlier trials "
                    f"({known}): {e}",
                    field=field,
                ) from None

    def ask(self, space: Mapping[str, BaseDistribution]) -> optuna.Trial:
        """``study.ask(space)``, without its scan for enqueued trials when there are none."""
        if not self.exclusive or self.waiting:
            self.waiting = max(0, self.waiting - 1)
            return self.study.ask(dict(space))
        # What study.ask does once it finds no enqueued trial.
        self.study._thread_local.cached_all_trials = None
        trial = optuna.Trial(self.study, self.storage.create_new_trial(self.study_id))
        try:
            for name, distribution in space.items():
                trial._suggest(name, distribution)
        except BaseException:
            self.tell(trial, None, TrialState.FAIL)  # no half-sampled trial is left running
            raise
        return trial

    @property
    def storage(self) -> BaseStorage:
        return self.study._storage

    @property
    def study_id(self) -> int:
        return self.study._study_id

    def remember(self, request_id: str, numbers: list[int]) -> None:
        self.requests[request_id] = numbers
        while len(self.requests) > _MAX_REMEMBERED_REQUESTS:
            self.requests.popitem(last=False)

    def frozen(self, number: int) -> FrozenTrial:
        try:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        except KeyError:
            raise NotFound(f"{self.ref}/trials/{number} does not exist") from None
        return self.storage.get_trial(trial_id)

    def record(self, trial: FrozenTrial) -> TrialRecord:
        lease = self.leases.get(trial.number)
        expires = lease.expires if lease and trial.state == TrialState.RUNNING else None
        return TrialRecord(TrialRef(self.ref, trial.number), trial, expires)

    def live_trial(self, number: int, lease: _Lease) -> optuna.Trial:
        if lease.trial is None:
            lease.trial = optuna.Trial(self.study, lease.trial_id)
        elif not self.exclusive:
            # Other replicas may have written this trial (a suggest, a report): Optuna's Trial
            # caches it, so re-read it rather than sample or prune from a stale copy.
            lease.trial._cached_frozen_trial = self.storage.get_trial(lease.trial_id)
        return lease.trial

    def running(self, number: int, action: str) -> _Lease:
        """The lease of a running trial; call with ``lock`` held."""
        lease = self.leases.get(number)
        if lease is not None:
            return lease
        trial = self.frozen(number)
        if trial.state == TrialState.RUNNING:
            # Handed out by another replica, or before a restart: adopt it.
            return self.adopt(trial)
        raise FailedPrecondition(
            f"cannot {action} {self.ref}/trials/{number}: it is {trial.state.name}"
            + (" (its lease expired)" if _expired(trial) else ""),
            field="trial",
        )

    def tell(
        self, trial: optuna.Trial | int, values: list[float] | None, state: TrialState
    ) -> FrozenTrial:
        # Samplers call study.stop() when they are done (the grid sampler, once its grid is
        # exhausted), which Optuna refuses outside optimize(). The service has no loop to stop,
        # so each tell runs as optimize() would run it (the flag is per thread).
        self.study._thread_local.in_optimize_loop = True
        try:
            # Study.tell's own logic, without the deep copy of the trial that it returns.
            _tell_with_warning(self.study, trial, values, state)
        finally:
            self.study._thread_local.in_optimize_loop = False
        return self.frozen(trial if isinstance(trial, int) else trial.number)

    def add_sample_seconds(self, trial: optuna.Trial, seconds: float) -> None:
        # Kept with the trial, so that comparisons can report each sampler's own cost.
        total = trial._cached_frozen_trial.system_attrs.get(SAMPLE_SECONDS_ATTR, 0.0) + seconds
        trial.storage.set_trial_system_attr(trial._trial_id, SAMPLE_SECONDS_ATTR, total)
        trial._cached_frozen_trial.system_attrs[SAMPLE_SECONDS_ATTR] = total

    def adopt(self, trial: FrozenTrial, *, fresh: bool = False) -> _Lease:
        """Watches the lease of a running trial this process did not hand out.

        With ``fresh``, the lease runs at least one more lease period from now: after a restart,
        trainers get the time to reconnect and heartbeat before their trials are failed.
        """
        stored = float(trial.system_attrs.get(LEASE_ATTR, 0.0))
        renewed = time.time() + self.config.options.lease_seconds
        expires = max(stored, renewed) if fresh or not stored else stored
        lease = _Lease(trial._trial_id, expires)
        self.leases[trial.number] = lease
        return lease

    def renew(self, lease: _Lease) -> None:
        lease.expires = time.time() + self.config.options.lease_seconds
        self.storage.set_trial_system_attr(lease.trial_id, LEASE_ATTR, lease.expires)


def _expired(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and trial.system_attrs.get(EXPIRED_ATTR, False)


def _check_finite(values: Iterable[float], field: str) -> None:
    for v in values:
        if not math.isfinite(v):
            raise InvalidArgument(f"{field} must be a finite number, got {v}", field=field)


class StudyRegistry:
    """All studies of one storage, and the live state of those in use.

    Thread-safety: every public method may be called from any thread. Locks are per study,
    apart from a short registry lock around the table of live studies.

    Raises (from every method): InvalidArgument, NotFound, AlreadyExists, FailedPrecondition
    as documented on each; nothing else on purpose.
    """

    def __init__(self, storage: BaseStorage, *, reap_interval: float = 1.0) -> None:
        self._storage = storage
        self._exclusive = is_exclusive(storage)
        self._in_memory = answers_from_memory(storage)
        self._live: dict[StudyRef, _LiveStudy] = {}
        self._live_lock = threading.Lock()
        # Creating a study writes its config right after it: one creation at a time, so that a
        # concurrent get-or-create never loads a study before its config is there.
        self._create_lock = threading.Lock()
        self._stopping = threading.Event()
        self._running_loaded = threading.Event()  # the studies with running trials, at start
        self._reaper = threading.Thread(
            target=self._reap_forever,
            args=(reap_interval,),
            name="hposerve-lease-reaper",
            daemon=True,
        )
        self._reaper.start()

    def close(self) -> None:
        """Stops the lease reaper. Idempotent."""
        self._stopping.set()
        if self._reaper.is_alive():
            self._reaper.join()

    # -- studies ---------------------------------------------------------------------------

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
        directions = tuple(directions) or (StudyDirection.MINIMIZE,)
        config = StudyConfig(
            directions=directions,
            sampler=sampler or specs_pb2.SamplerSpec(),
            pruner=pruner or specs_pb2.PrunerSpec(),
            options=options,
            create_time=time.time(),
        )
        # Validate before anything is written: a bad spec changes nothing.
        _specs.build_sampler(config.sampler, n_objectives=len(directions))
        _specs.build_pruner(config.pruner, n_objectives=len(directions))
        with self._create_lock:
            return self._create_or_load(ref, config, load_if_exists, request_id, system_attrs)

    def _create_or_load(
        self,
        ref: StudyRef,
        config: StudyConfig,
        load_if_exists: bool,
        request_id: str,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> StudyInfo:
        directions = config.directions
        try:
            study_id = self._storage.create_new_study(list(directions), ref.optuna_name)
        except optuna.exceptions.DuplicatedStudyError:
            existing = self.get_study(ref)
            retried = bool(request_id) and self._created_by(ref) == request_id
            if not (load_if_exists or retried):
                raise AlreadyExists(
                    f"{ref} already exists; pass load_if_exists to use it", field="study_id"
                ) from None
            if existing.config.directions != directions:
                raise FailedPrecondition(
                    f"{ref} exists with directions "
                    f"{[d.name.lower() for d in existing.config.directions]}, not "
                    f"{[d.name.lower() for d in directions]}",
                    field="directions",
                ) from None
            return existing
        self._storage.set_study_system_attr(study_id, CONFIG_ATTR, config.to_json())
        for key, value in (system_attrs or {}).items():
            self._storage.set_study_system_attr(study_id, key, value)
        if request_id:
            self._storage.set_study_system_attr(study_id, REQUEST_ATTR, request_id)
        return self._info(self._get_live(ref))

    def _created_by(self, ref: StudyRef) -> str | None:
        study_id = self._storage.get_study_id_from_name(ref.optuna_name)
        return self._storage.get_study_system_attrs(study_id).get(REQUEST_ATTR)

    def get_study(self, ref: StudyRef) -> StudyInfo:
        """Raises: NotFound."""
        return self._info(self._get_live(ref))

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

    def delete_study(self, ref: StudyRef) -> None:
        """Deletes a study and its trials. Raises: NotFound."""
        try:
            study_id = self._storage.get_study_id_from_name(ref.optuna_name)
            self._storage.delete_study(study_id)
        except KeyError:
            raise NotFound(f"{ref} does not exist", field="name") from None
        finally:
            with self._live_lock:
                self._live.pop(ref, None)

    def is_quick(self, ref: StudyRef, *, samples: bool) -> bool:
        """Whether a trial call on ``ref`` takes microseconds, so that an event loop may make it
        in place: the study is loaded, its storage answers from memory, and a call that
        ``samples`` meets a sampler that fits no model."""
        live = self._live.get(ref)
        if live is None or not self._in_memory:
            return False
        return not samples or live.config.sampler.WhichOneof("kind") in _QUICK_SAMPLERS

    def _get_live(self, ref: StudyRef) -> _LiveStudy:
        live = self._live.get(ref)
        if live is not None:
            return live
        with self._live_lock:
            live = self._live.get(ref)
            if live is None:
                live = self._load(ref)
                self._live[ref] = live
            return live

    def _load(self, ref: StudyRef) -> _LiveStudy:
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
        live = _LiveStudy(ref, study, config, exclusive=self._exclusive)
        for trial in study.get_trials(deepcopy=False):
            if trial.state == TrialState.RUNNING:
                live.adopt(trial, fresh=True)
            elif trial.state == TrialState.WAITING:
                live.waiting += 1
            for name, distribution in trial.distributions.items():
                live.distributions.setdefault(name, distribution)
            request = trial.system_attrs.get(REQUEST_ATTR)
            if request:
                live.requests.setdefault(request, []).append(trial.number)
        return live

    def _info(self, live: _LiveStudy) -> StudyInfo:
        try:
            trials = live.study.get_trials(deepcopy=False)
        except KeyError:
            self._forget(live)
            raise NotFound(f"{live.ref} does not exist", field="name") from None
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        return StudyInfo(live.ref, live.config, len(trials), complete)

    def _forget(self, live: _LiveStudy) -> None:
        with self._live_lock:
            if self._live.get(live.ref) is live:
                del self._live[live.ref]

    # -- asking ----------------------------------------------------------------------------

    def ask(
        self,
        ref: StudyRef,
        *,
        search_space: Mapping[str, BaseDistribution],
        count: int = 1,
        request_id: str = "",
    ) -> list[TrialRecord]:
        """Starts ``count`` trials; with a search space, samples all its parameters now.

        Raises:
            NotFound: no such study.
            InvalidArgument: count out of range; a space the study's sampler cannot sample.
        """
        if not 1 <= count <= MAX_ASK_COUNT:
            raise InvalidArgument(
                f"count must be in [1, {MAX_ASK_COUNT}], got {count}", field="count"
            )
        live = self._get_live(ref)
        self._check_space_fits_sampler(live, search_space)
        with live.sample_lock:
            if request_id and request_id in live.requests:
                return [live.record(live.frozen(n)) for n in live.requests[request_id]]
            live.check_compatible(search_space, "search_space")
            trials = []
            for _ in range(count):
                trial = self._ask_one(live, search_space)
                trials.append(trial)
                if request_id:
                    live.storage.set_trial_system_attr(trial._trial_id, REQUEST_ATTR, request_id)
            if request_id:
                live.remember(request_id, [t.number for t in trials])
        with live.lock:
            return [live.record(live.frozen(t.number)) for t in trials]

    def _ask_one(
        self, live: _LiveStudy, search_space: Mapping[str, BaseDistribution]
    ) -> optuna.Trial:
        start = time.perf_counter()
        try:
            trial = live.ask(search_space)
        except _SAMPLING_ERRORS as e:
            raise InvalidArgument(
                f"cannot sample this search space: {e}", field="search_space"
            ) from e
        live.add_sample_seconds(trial, time.perf_counter() - start)
        # The first lease is kept in memory only: storage learns of leases from heartbeats,
        # which is all other replicas need (a trial with no stored lease is theirs to adopt).
        lease = _Lease(trial._trial_id, time.time() + live.config.options.lease_seconds, trial)
        with live.lock:
            live.leases[trial.number] = lease
        return trial

    @staticmethod
    def _check_space_fits_sampler(live: _LiveStudy, space: Mapping[str, BaseDistribution]) -> None:
        # The grid sampler can only sample its own axes; refuse before a trial is created.
        grid = live.config.sampler.grid if live.config.sampler.HasField("grid") else None
        if grid is not None:
            axes = {axis.name for axis in grid.search_space}
            missing = sorted(set(space) - axes)
            if missing:
                raise InvalidArgument(
                    f"parameters {missing} are not in the grid sampler's search space "
                    f"{sorted(axes)}",
                    field="search_space",
                )
        # CMA-ES with a start point needs it for every numeric parameter (Optuna asserts it
        # only once sampling has begun, after the trial exists).
        sampler = live.config.sampler
        if sampler.HasField("cmaes") and sampler.cmaes.x0.fields:
            numeric = {n for n, d in space.items() if not isinstance(d, CategoricalDistribution)}
            missing = sorted(numeric - set(sampler.cmaes.x0.fields))
            if missing:
                raise InvalidArgument(
                    f"the cmaes sampler's x0 has no start value for parameters {missing}",
                    field="search_space",
                )

    def suggest(self, ref: TrialRef, name: str, distribution: BaseDistribution) -> Any:
        """Samples one parameter of a running trial (define-by-run); repeats return the same.

        Raises:
            NotFound: no such study or trial.
            FailedPrecondition: the trial is not running.
            InvalidArgument: a distribution that conflicts with the parameter's earlier one,
                or that the sampler cannot sample.
        """
        live = self._get_live(ref.study)
        self._check_space_fits_sampler(live, {name: distribution})
        with live.sample_lock:
            with live.lock:
                lease = live.running(ref.number, "suggest a parameter of")
                trial = live.live_trial(ref.number, lease)
            live.check_compatible({name: distribution}, "parameter")
            # Optuna caches the study's trials per thread for the duration of one trial;
            # requests of one trial arrive on any thread, so start each suggest afresh.
            live.study._thread_local.cached_all_trials = None
            try:
                start = time.perf_counter()
                value = trial._suggest(name, distribution)
                live.add_sample_seconds(trial, time.perf_counter() - start)
                return value
            except optuna.exceptions.UpdateFinishedTrialError:
                # Told, or its lease expired, while the sampler was at work.
                raise FailedPrecondition(
                    f"{ref} finished during the suggest", field="trial"
                ) from None
            except _SAMPLING_ERRORS as e:
                raise InvalidArgument(f"cannot suggest {name!r}: {e}", field="parameter") from e

    # -- reporting and telling -------------------------------------------------------------

    def report(self, ref: TrialRef, *, step: int, value: float) -> bool:
        """Records an intermediate value and returns whether the trial should be pruned.

        Raises:
            InvalidArgument: a negative step or a value that is not finite.
            FailedPrecondition: a multi-objective study, or a trial that is not running.
            NotFound: no such study or trial.
        """
        if not 0 <= step <= MAX_STEP:
            raise InvalidArgument(f"step must be in [0, 2**31 - 1], got {step}", field="step")
        _check_finite([value], "value")
        live = self._get_live(ref.study)
        if len(live.config.directions) > 1:
            raise FailedPrecondition(
                f"{ref.study} has {len(live.config.directions)} objectives; intermediate "
                "values and pruning need a single-objective study",
                field="trial",
            )
        with live.lock:
            lease = live.running(ref.number, "report to")
            trial = live.live_trial(ref.number, lease)
            if step not in trial._cached_frozen_trial.intermediate_values:
                trial.report(value, step)
            return trial.should_prune()

    def should_prune(self, ref: TrialRef) -> bool:
        """The pruning decision at the last reported step. Raises as ``report``."""
        live = self._get_live(ref.study)
        if len(live.config.directions) > 1:
            raise FailedPrecondition(
                f"{ref.study} is multi-objective: pruning needs a single-objective study",
                field="trial",
            )
        with live.lock:
            lease = live.running(ref.number, "check pruning of")
            return live.live_trial(ref.number, lease).should_prune()

    def tell(
        self, ref: TrialRef, *, state: TrialState, values: Sequence[float] = ()
    ) -> TrialRecord:
        """Finishes a trial. Telling a finished trial its own outcome again is a no-op.

        Raises:
            InvalidArgument: a state other than COMPLETE/PRUNED/FAIL; COMPLETE without one
                finite value per objective; values with another state.
            FailedPrecondition: the trial already finished with another outcome.
            NotFound: no such study or trial.
        """
        if state not in _FINISHED_STATES:
            raise InvalidArgument(
                f"a trial can be told COMPLETE, PRUNED or FAILED, not {state.name}", field="state"
            )
        live = self._get_live(ref.study)
        values = list(values)
        if state == TrialState.COMPLETE:
            n = len(live.config.directions)
            if len(values) != n:
                raise InvalidArgument(
                    f"{ref.study} has {n} objective(s); got {len(values)} value(s)", field="values"
                )
            _check_finite(values, "values")
        elif values:
            raise InvalidArgument(
                f"values go with state COMPLETE only, not {state.name}", field="values"
            )
        with live.lock:
            current = live.frozen(ref.number)
            if current.state.is_finished():
                if current.state == state and (
                    state != TrialState.COMPLETE or current.values == values
                ):
                    return live.record(current)
                told = f"{state.name} {values}" if values else state.name
                raise FailedPrecondition(
                    f"{ref} already finished as {current.state.name}"
                    + (f" {current.values}" if current.values else "")
                    + (" (its lease expired)" if _expired(current) else "")
                    + f"; cannot tell it {told}",
                    field="trial",
                )
            if current.state != TrialState.RUNNING:
                raise FailedPrecondition(
                    f"{ref} is {current.state.name}; ask for it first", field="trial"
                )
            lease = live.leases.pop(ref.number, None)
            trial = lease.trial if lease and lease.trial else ref.number
            frozen = live.tell(trial, values or None, state)
            return live.record(frozen)

    def heartbeat(self, refs: Sequence[TrialRef]) -> list[TrialRecord | None]:
        """Renews leases; None for a trial that is not running (or does not exist)."""
        out: list[TrialRecord | None] = []
        for ref in refs:
            try:
                live = self._get_live(ref.study)
                with live.lock:
                    lease = live.running(ref.number, "renew")
                    live.renew(lease)
                    out.append(live.record(live.frozen(ref.number)))
            except (NotFound, FailedPrecondition):
                out.append(None)
        return out

    # -- reading ---------------------------------------------------------------------------

    def get_trial(self, ref: TrialRef) -> TrialRecord:
        """Raises: NotFound."""
        live = self._get_live(ref.study)
        return live.record(live.frozen(ref.number))

    def list_trials(
        self, ref: StudyRef, *, states: Sequence[TrialState], after: int, limit: int
    ) -> list[TrialRecord]:
        """Trials with number > after, in number order, optionally of some states only."""
        live = self._get_live(ref)
        trials = live.study.get_trials(deepcopy=False, states=tuple(states) or None)
        start = _first_index_after(trials, after)
        return [live.record(t) for t in trials[start : start + limit]]

    def best_trial(self, ref: StudyRef) -> TrialRecord:
        """Raises: NotFound; FailedPrecondition (multi-objective, or no complete trial)."""
        live = self._get_live(ref)
        if len(live.config.directions) > 1:
            raise FailedPrecondition(
                f"{ref} is multi-objective: it has a Pareto front, not one best trial",
                field="parent",
            )
        try:
            return live.record(live.study.best_trial)
        except ValueError:
            raise FailedPrecondition(f"{ref} has no complete trial yet", field="parent") from None

    def pareto_front(self, ref: StudyRef) -> list[TrialRecord]:
        """The Pareto-optimal complete trials (the best trial when single-objective)."""
        live = self._get_live(ref)
        return [live.record(t) for t in live.study.best_trials]

    # -- writing trials --------------------------------------------------------------------

    def enqueue(
        self,
        ref: StudyRef,
        *,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any],
        skip_if_exists: bool,
        request_id: str = "",
    ) -> TrialRecord | None:
        """Enqueues parameters for a future ask. None when skipped as already existing."""
        live = self._get_live(ref)
        with live.sample_lock:
            if request_id and request_id in live.requests:
                numbers = live.requests[request_id]
                return live.record(live.frozen(numbers[0])) if numbers else None
            before = len(live.study.get_trials(deepcopy=False))
            live.study.enqueue_trial(
                dict(params), dict(user_attrs) or None, skip_if_exists=skip_if_exists
            )
            trials = live.study.get_trials(deepcopy=False)
            created = trials[before:] if len(trials) > before else []
            live.waiting += len(created)
            for trial in created:
                if request_id:
                    live.storage.set_trial_system_attr(trial._trial_id, REQUEST_ATTR, request_id)
            if request_id:
                live.remember(request_id, [t.number for t in created])
            return live.record(live.frozen(created[0].number)) if created else None

    def set_user_attrs(self, ref: TrialRef, attrs: Mapping[str, Any]) -> TrialRecord:
        """Sets user attributes on a running trial. Raises: NotFound, FailedPrecondition."""
        live = self._get_live(ref.study)
        with live.lock:
            lease = live.running(ref.number, "set user attributes of")
            trial = live.live_trial(ref.number, lease)
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            return live.record(live.frozen(ref.number))

    # -- leases ----------------------------------------------------------------------------

    def _reap_forever(self, interval: float) -> None:
        try:
            self._load_studies_with_running_trials()
        except Exception:
            _logger.exception("could not load the studies with running trials")
        finally:
            self._running_loaded.set()
        while not self._stopping.wait(interval):
            try:
                self.reap_expired()
            except Exception:  # the reaper must outlive any one bad study
                _logger.exception("lease reaper failed; retrying")

    def _load_studies_with_running_trials(self) -> None:
        # After a restart nothing else may touch a study whose trainers died: watch its leases.
        for frozen in self._storage.get_all_studies():
            namespace, slash, study = frozen.study_name.partition("/")
            running = (TrialState.RUNNING,)
            if slash and self._storage.get_all_trials(frozen._study_id, False, running):
                try:
                    self._get_live(StudyRef(namespace, study))
                except (InvalidArgument, NotFound):
                    continue  # not one of ours, or deleted meanwhile

    def reap_expired(self, now: float | None = None) -> list[TrialRef]:
        """Fails the trials whose lease expired; returns them. Runs in the reaper thread."""
        now = time.time() if now is None else now
        self._running_loaded.wait()  # so that a trial from before a restart is not missed
        reaped = []
        for live in list(self._live.values()):
            if not self._exclusive:  # a sole writer leased every running trial it knows of
                self._adopt_running(live)
            expired = [n for n, lease in list(live.leases.items()) if lease.expires < now]
            for number in expired:
                if self._expire(live, number, now):
                    reaped.append(TrialRef(live.ref, number))
        return reaped

    @staticmethod
    def _adopt_running(live: _LiveStudy) -> None:
        # Trials handed out by another replica that may have died: watch their leases too.
        try:
            running = live.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:  # the study was deleted
            return
        with live.lock:
            for trial in running:
                if trial.number not in live.leases:
                    live.adopt(trial)

    def _expire(self, live: _LiveStudy, number: int, now: float) -> bool:
        with live.lock:
            lease = live.leases.get(number)
            if lease is None or lease.expires >= now:
                return False
            try:
                trial = live.storage.get_trial(lease.trial_id)
            except KeyError:  # the study was deleted
                live.leases.pop(number, None)
                return False
            stored = float(trial.system_attrs.get(LEASE_ATTR, 0.0))
            if trial.state != TrialState.RUNNING:
                live.leases.pop(number, None)
                return False
            if stored >= now:  # renewed through another replica
                lease.expires = stored
                return False
            live.leases.pop(number)
            live.storage.set_trial_system_attr(lease.trial_id, EXPIRED_ATTR, True)
            live.tell(number, None, TrialState.FAIL)
        _logger.info("%s/trials/%d: lease expired, trial failed", live.ref, number)
        options = live.config.options
        retries = int(trial.system_attrs.get(RETRIES_ATTR, 0))
        if options.retry_expired_trials and retries < options.max_retries:
            with live.sample_lock:
                live.waiting += 1
                live.study.add_trial(
                    optuna.trial.create_trial(
                        state=TrialState.WAITING,
                        system_attrs={
                            "fixed_params": trial.params,
                            RETRY_OF_ATTR: number,
                            RETRIES_ATTR: retries + 1,
                        },
                        user_attrs=trial.user_attrs,
                    )
                )
        return True

    # -- comparisons -----------------------------------------------------------------------

    def study_system_attrs(self, ref: StudyRef) -> dict[str, Any]:
        """A study's system attributes (its hposerve config, a comparison's definition...).

        Raises:
            NotFound: no such study.
        """
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
        prefix = namespace + "/"
        found: dict[StudyRef, Any] = {}
        for frozen in self._storage.get_all_studies():
            if frozen.study_name.startswith(prefix) and key in frozen.system_attrs:
                try:
                    ref = StudyRef(namespace, frozen.study_name[len(prefix) :])
                except InvalidArgument:
                    continue  # an Optuna study whose name is not ours
                found[ref] = frozen.system_attrs[key]
        return found

    def asked_by_request(self, ref: StudyRef, request_id: str) -> list[TrialRecord] | None:
        """The trials that an earlier ask (or enqueue) with ``request_id`` created, or None.

        Raises:
            NotFound: no such study.
        """
        live = self._get_live(ref)
        with live.sample_lock:
            numbers = live.requests.get(request_id)
        if numbers is None:
            return None
        with live.lock:
            return [live.record(live.frozen(n)) for n in numbers]


def _first_index_after(trials: Sequence[FrozenTrial], after: int) -> int:
    lo, hi = 0, len(trials)
    while lo < hi:  # trials are in number order
        mid = (lo + hi) // 2
        if trials[mid].number <= after:
            lo = mid + 1
        else:
            hi = mid
    return lo

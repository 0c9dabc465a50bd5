"""A study in use: its live ``optuna.Study``, its locks, its leases and its request memo.

Each study in use has one live study kept in memory (``_cache``), so an ask does not reload
anything. Locks per study, none global, taken in this order:

* ``sample_lock`` serializes the sampler (ask, define-by-run suggest, enqueue): a seeded study
  suggests exactly what the same study run in-process would, and a slow sampler holds up only
  its own study's asks.
* ``trial_lock(number)`` serializes one trial's transitions (report, tell, lease expiry,
  heartbeat, attributes). Trials of one study change in parallel: on a database each change
  is a round trip, and one lock per study would queue every trainer of the study behind it.
  (One of 64 locks, by number: two trials rarely share one, and none is ever dropped.)
* ``lock`` guards the table of leases. It is held for in-memory work and reads, never for a
  write to storage nor while sampling.

Leases: a handed-out trial must be renewed by heartbeats. The expiry (wall-clock seconds) is
kept in memory and in the trial's system attribute ``hposerve:lease`` so that replicas sharing
one database, and a restarted server, agree on it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain import _optuna, _specs, _turns
from hposerve.server.domain._config import (
    ASKED_BY_ATTR,
    EXPIRED_ATTR,
    LEASE_ATTR,
    REQUEST_ATTR,
    SAMPLE_SECONDS_ATTR,
    StudyConfig,
)
from hposerve.server.domain._exceptions import FailedPrecondition, InvalidArgument, NotFound
from hposerve.server.domain._names import StudyRef, TrialRef
from hposerve.server.domain._provisional import trial_count
from hposerve.server.domain._requests import RequestMemo
from hposerve.server.domain._sampling import SamplingProcesses

__all__ = [
    "Lease",
    "LiveStudy",
    "TrialRecord",
    "check_finite",
    "deleted_is_not_found",
    "expired",
]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", StudyRef, TrialRef)

_logger = logging.getLogger("hposerve.server")

_TRIAL_LOCKS = 64


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """A trial as callers see it: Optuna's frozen trial and, while running, its lease."""

    ref: TrialRef
    trial: FrozenTrial
    lease_expires: float | None


@dataclasses.dataclass
class Lease:
    """A running trial's lease, as this process knows it."""

    trial_id: int
    expires: float
    trial: optuna.Trial | None = None  # the live trial; rebuilt lazily after a restart


def expired(trial: FrozenTrial) -> bool:
    """Whether a trial failed because its lease expired."""
    return trial.state == TrialState.FAIL and bool(trial.system_attrs.get(EXPIRED_ATTR, False))


def check_finite(values: Iterable[float], field: str) -> None:
    """Raises InvalidArgument unless every value is a finite number."""
    for v in values:
        if not math.isfinite(v):
            raise InvalidArgument(f"{field} must be a finite number, got {v}", field=field)


class _ReachesStudies(Protocol):
    _live: Callable[[StudyRef], LiveStudy]


S = TypeVar("S", bound=_ReachesStudies)


def deleted_is_not_found(
    method: Callable[Concatenate[S, R, P], T],
) -> Callable[Concatenate[S, R, P], T]:
    """Answers NotFound for a call whose study a DeleteStudy removed while the call ran.

    Storages raise KeyError for a record that is gone (the journal's ``Record does not
    exist.``), from whichever of their calls comes first. This is the one place that turns it
    into NotFound: only when the study is indeed gone (or replaced by a new one of that name),
    so a KeyError of any other cause still surfaces as the bug it is.
    """

    @functools.wraps(method)
    def call(self: S, ref: R, *a: P.args, **kw: P.kwargs) -> T:
        study = ref if isinstance(ref, StudyRef) else ref.study
        live = self._live(study)  # what the call will use (a cache hit); NotFound if gone
        try:
            return method(self, ref, *a, **kw)
        except KeyError:
            if live.exists():
                raise
            raise NotFound(f"{study} does not exist (deleted)", field="name") from None

    return call


class LiveStudy:
    """One study in use. Not thread-safe by itself: callers hold its locks as documented."""

    def __init__(
        self,
        ref: StudyRef,
        study: optuna.Study,
        config: StudyConfig,
        *,
        exclusive: bool,
        sampling: SamplingProcesses | None = None,
    ) -> None:
        self.ref = ref
        self.study = study
        self.config = config
        self.sample_lock = threading.Lock()
        self.lock = threading.Lock()
        self._trial_locks = tuple(threading.Lock() for _ in range(_TRIAL_LOCKS))
        self.leases: dict[int, Lease] = {}
        # request id -> the trial numbers it created (ask, enqueue).
        self.requests: RequestMemo[str, list[int]] = RequestMemo()
        self.handed_over = _turns.HandedOver()
        # Whether an ask may hand its turn over once its create is queued (``_turns``): the
        # sampler reads no trials (nor their number). Not a subclass: it could read them.
        self.draws_blind = type(study.sampler) is optuna.samplers.RandomSampler
        # With a storage only this process writes, the WAITING (enqueued) trials are counted
        # here, so that an ask need not scan all trials for them (Optuna's journal storage
        # scans the whole study for each ask, a cost that grows with the number of trials).
        self.exclusive = exclusive
        self.waiting = 0
        # The first distribution seen for each parameter: Optuna refuses an incompatible one
        # (another kind, other choices) once a trial exists, so it is checked before.
        self.distributions: dict[str, BaseDistribution] = {}
        self._next: int | None = None  # the number the next new trial probably gets
        # Where asks with a search space are sampled, when not in this process (``_sampling``).
        fits = _specs.fits_a_model(config.sampler) and not _specs.source_study_of(config.sampler)
        self.sampling = sampling if fits else None
        _bind_source_trials(self)

    def trial_lock(self, number: int) -> threading.Lock:
        """The lock of one trial's transitions (shared with 1 in 64 other trials)."""
        return self._trial_locks[number % _TRIAL_LOCKS]

    @property
    def storage(self) -> BaseStorage:
        return _optuna.storage_of(self.study)

    @property
    def study_id(self) -> int:
        return _optuna.study_id_of(self.study)

    def exists(self) -> bool:
        """Whether this study is still in storage (not deleted, nor replaced by a namesake)."""
        try:
            return self.storage.get_study_id_from_name(self.ref.optuna_name) == self.study_id
        except KeyError:
            return False

    # -- checks ------------------------------------------------------------------------------

    def check_single_objective(self, doing: str, field: str) -> None:
        """Raises FailedPrecondition on a multi-objective study, saying what needs one."""
        n = len(self.config.directions)
        if n > 1:
            raise FailedPrecondition(
                f"{self.ref} is multi-objective ({n} objectives): {doing}", field=field
            )

    def check_compatible(self, space: Mapping[str, BaseDistribution], field: str) -> None:
        """Raises InvalidArgument for a distribution that conflicts with earlier trials'."""
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

    # -- trials ------------------------------------------------------------------------------

    def ask(
        self,
        space: Mapping[str, BaseDistribution],
        *,
        request_id: str = "",
        turn: _turns.Turn | None = None,
    ) -> optuna.Trial:
        """A running, leased trial with the parameters of ``space`` sampled; call with
        ``sample_lock`` held (by ``turn``, if given, which a new trial hands over once its
        create is queued: ``_turns``; the caller gives it only where the sampler draws blind).

        An enqueued trial if there is one (its ask's ``request_id`` written before it starts;
        a failed sampling fails it, as a failing objective fails one in ``Study.optimize``, so
        that no trial is left running without a lease, and raises). Else a new trial, sampled
        first and then stored whole, with its parameters, request id, lease and sampling time,
        in one storage record (one journal line): a crash keeps all of it or none, and a failed
        sampling stores nothing. ``study.ask(space)`` otherwise, without its scan for enqueued
        trials when this process knows there are none.
        """
        start = time.perf_counter()
        trial = None
        if not self.exclusive or self.waiting:
            trial = _start_waiting(self, space, request_id)
        if trial is not None:
            self.add_sample_seconds(trial, time.perf_counter() - start)
            self.lease_new(trial)
            return trial
        expires = time.time() + self.config.options.lease_seconds
        attrs: dict[str, object] = {LEASE_ATTR: expires}
        if request_id:
            attrs[REQUEST_ATTR] = request_id

        def sampled(trial: FrozenTrial) -> None:
            trial.system_attrs[SAMPLE_SECONDS_ATTR] = time.perf_counter() - start

        number = self._next  # a blind draw reads no number: a stale hint will do
        if not self.draws_blind or number is None:
            number = trial_count(self.storage, self.study_id, hint=number)
        elsewhere = None
        if self.sampling is not None and space:
            elsewhere = self.sampling.sample(
                self.study_id, self.ref.optuna_name, self.config, space,
                system_attrs=attrs, number=number,
            )  # fmt: skip
        with _turns.hand_over_when_queued(turn):
            trial = _optuna.new_trial(
                self.study, space, system_attrs=attrs, on_sampled=sampled, number=number,
                sampled=elsewhere,
            )  # fmt: skip
        self._next = trial.number + 1
        self.lease_new(trial, expires)
        return trial

    def resume(self, number: int, space: Mapping[str, BaseDistribution], request_id: str) -> bool:
        """Completes a trial an earlier ask with ``request_id`` handed out; call with
        ``sample_lock`` held. False if the trial is no longer that request's.

        A crash may have cut that ask short: a waiting trial it had reserved is started now,
        and parameters of ``space`` that a running trial lacks are sampled. Raises as ``ask``.
        """
        frozen = self.frozen(number)
        attrs = frozen.system_attrs
        if request_id not in (attrs.get(REQUEST_ATTR), attrs.get(ASKED_BY_ATTR)):
            return False  # e.g. a waiting trial it had reserved, started by another ask since
        if frozen.state == TrialState.WAITING:
            self.waiting = max(0, self.waiting - 1)
            cleared = _cleared(request_id)
            trial = _optuna.start_waiting(self.study, frozen, space, clear_on_failure=cleared)
            if trial is None:
                return False
            self.lease_new(trial)
        elif frozen.state == TrialState.RUNNING and not set(space) <= set(frozen.params):
            with self.lock:
                lease = self.leases.get(number) or self.adopt(frozen)
            mine = [k for k in (REQUEST_ATTR, ASKED_BY_ATTR) if attrs.get(k) == request_id]
            lease.trial = _optuna.resume_trial(
                self.study, lease.trial_id, space, clear_on_failure=mine
            )
        return True

    def add_trial(self, trial: FrozenTrial) -> int:
        """Adds a trial as ``Study.add_trial`` does (one storage record); returns its number."""
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=trial)
        if trial.state == TrialState.WAITING:
            self.waiting += 1
        return self.storage.get_trial(trial_id).number

    def frozen(self, number: int) -> FrozenTrial:
        """The stored trial. Raises: NotFound."""
        lease = self.leases.get(number)  # a leased trial's id is known: one storage call less
        if lease is not None:
            return self.storage.get_trial(lease.trial_id)
        try:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        except KeyError:
            raise NotFound(f"{self.ref}/trials/{number} does not exist") from None
        return self.storage.get_trial(trial_id)

    def records(self, numbers: Sequence[int]) -> list[TrialRecord]:
        """The records of trials by number; call with ``lock`` held. Raises: NotFound."""
        return [self.record(self.frozen(n)) for n in numbers]

    def record(self, trial: FrozenTrial) -> TrialRecord:
        lease = self.leases.get(trial.number)
        expires = lease.expires if lease and trial.state == TrialState.RUNNING else None
        return TrialRecord(TrialRef(self.ref, trial.number), trial, expires)

    def live_trial(self, lease: Lease) -> optuna.Trial:
        """The live ``optuna.Trial`` of a leased trial, up to date with storage."""
        if lease.trial is None:
            lease.trial = optuna.Trial(self.study, lease.trial_id)
        elif not self.exclusive:
            # Other replicas may have written this trial (a suggest, a report): Optuna's Trial
            # caches it, so re-read it rather than sample or prune from a stale copy.
            _optuna.refresh_trial(lease.trial)
        return lease.trial

    def lease_of_running(self, number: int, action: str) -> Lease:
        """The lease of a running trial; call with ``lock`` held.

        Raises:
            NotFound: no such trial.
            FailedPrecondition: the trial is not running (``action`` says what was refused).
        """
        lease = self.leases.get(number)
        if lease is not None:
            return lease
        trial = self.frozen(number)
        if trial.state == TrialState.RUNNING:
            self.check_handed_out(number)
            # Handed out by another replica: adopt it.
            return self.adopt(trial)
        raise FailedPrecondition(
            f"cannot {action} {self.ref}/trials/{number}: it is {trial.state.name}"
            + (" (its lease expired)" if expired(trial) else ""),
            field="trial",
        )

    def check_handed_out(self, number: int) -> None:
        """Refuses a running trial with no lease when this process is the sole writer.

        A sole writer leases each trial as its ask hands it out (and every running trial when
        it loads a study): one without a lease is still being asked, and a call naming it
        must not finish it under the ask. Call with ``lock`` held.
        """
        if self.exclusive:
            raise FailedPrecondition(
                f"{self.ref}/trials/{number} is being asked; it is not handed out yet",
                field="trial",
            )

    def tell(
        self, trial: optuna.Trial | int, values: Sequence[float] | None, state: TrialState
    ) -> FrozenTrial:
        """Finishes a trial and returns it as stored."""
        _optuna.tell(self.study, trial, values, state)
        return self.frozen(trial if isinstance(trial, int) else trial.number)

    def add_sample_seconds(self, trial: optuna.Trial, seconds: float) -> None:
        """Adds to the trial's sampler time: comparisons report each sampler's own cost."""
        cached = _optuna.cached_trial(trial)
        total = cached.system_attrs.get(SAMPLE_SECONDS_ATTR, 0.0) + seconds
        try:
            trial.storage.set_trial_system_attr(
                _optuna.trial_id_of(trial), SAMPLE_SECONDS_ATTR, total
            )
        except optuna.exceptions.UpdateFinishedTrialError:
            return  # told (or expired) meanwhile: its time is bookkeeping only
        cached.system_attrs[SAMPLE_SECONDS_ATTR] = total

    # -- leases ------------------------------------------------------------------------------

    def lease_new(self, trial: optuna.Trial, expires: float | None = None) -> None:
        """Leases a trial just handed out; takes ``lock``.

        A new trial's first lease is stored with it (``ask``); an enqueued trial's is kept in
        memory only, and storage learns of it from heartbeats: a running trial with no stored
        lease is adopted with a fresh one by other replicas and after a restart.
        """
        if expires is None:
            expires = time.time() + self.config.options.lease_seconds
        with self.lock:
            self.leases[trial.number] = Lease(_optuna.trial_id_of(trial), expires, trial)

    def adopt(self, trial: FrozenTrial, *, fresh: bool = False) -> Lease:
        """Watches the lease of a running trial this process did not hand out.

        With ``fresh``, the lease runs at least one more lease period from now: after a restart,
        trainers get the time to reconnect and heartbeat before their trials are failed.
        """
        stored = float(trial.system_attrs.get(LEASE_ATTR) or 0.0)
        renewed = time.time() + self.config.options.lease_seconds
        expires = max(stored, renewed) if fresh or not stored else stored
        lease = Lease(_optuna.trial_id_of(trial), expires)
        self.leases[trial.number] = lease
        return lease

    def renew(self, lease: Lease) -> None:
        """Renews a lease for one lease period from now, in memory and in storage; call with
        its trial's ``trial_lock`` held."""
        lease.expires = time.time() + self.config.options.lease_seconds
        self.storage.set_trial_system_attr(lease.trial_id, LEASE_ATTR, lease.expires)


def _start_waiting(
    live: LiveStudy, space: Mapping[str, BaseDistribution], request_id: str
) -> optuna.Trial | None:
    """An enqueued trial started, or None.

    Only the waiting trials are listed, not all the study's (a list built at every ask).
    """
    attrs = {ASKED_BY_ATTR: request_id} if request_id else {}
    waiting = (TrialState.WAITING,)
    for frozen in live.storage.get_all_trials(live.study_id, deepcopy=False, states=waiting):
        live.waiting = max(0, live.waiting - 1)  # taken, started or failed
        trial = _optuna.start_waiting(
            live.study,
            frozen,
            space,
            system_attrs=attrs,
            clear_on_failure=_cleared(request_id),
        )
        if trial is not None:
            return trial
    live.waiting = 0
    return None


def _bind_source_trials(live: LiveStudy) -> None:
    """Gives a warm-started sampler (CMA-ES ``source_study``) the source's trials.

    They are read once, when the study is loaded, as Optuna reads ``source_trials`` once
    when the sampler is made. A source deleted since leaves the sampler without a warm start.
    """
    source = _specs.source_study_of(live.config.sampler)
    if source is None:
        return
    try:
        source_id = live.storage.get_study_id_from_name(
            StudyRef(live.ref.namespace, source).optuna_name
        )
        trials = live.storage.get_all_trials(source_id, deepcopy=False)
    except KeyError:
        _logger.warning("%s: its source study %r is gone; no warm start", live.ref, source)
        trials = None
    live.study.sampler = _specs.build_sampler(
        live.config.sampler, n_objectives=len(live.config.directions), source_trials=trials
    )


def _cleared(request_id: str) -> tuple[str, ...]:
    """The attributes a failed ask of an enqueued trial clears, so that it answers no retry."""
    return (ASKED_BY_ATTR,) if request_id else ()

"""``StudyRegistry``: the one entry point to the studies of a storage, over parts with one job each.

* ``_catalog.StudyCatalog``: create, get, list and delete studies; load the live ones.
* ``_asking.TrialAsking``: ask (both styles), define-by-run suggest, enqueue.
* ``_trials.TrialOutcomes``: report and pruning, tell, heartbeat, attributes; reading trials.
* ``_leases.LeaseExpiry``: failing trials whose leases expired (a ``LeaseReaper``, which the
  server starts and stops, calls ``reap_expired``; the registry starts no thread).

Every method may be called from any thread; locks are per study (``_live_study``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain import _specs
from hposerve.server.domain._asking import TrialAsking
from hposerve.server.domain._catalog import StudyCatalog, StudyInfo
from hposerve.server.domain._config import StudyOptions
from hposerve.server.domain._consistency import each_call_sees_earlier_writes
from hposerve.server.domain._exceptions import DomainError, NotFound
from hposerve.server.domain._leases import LeaseExpiry
from hposerve.server.domain._live_study import TrialRecord
from hposerve.server.domain._names import StudyRef, TrialRef
from hposerve.server.domain._sampling import SamplingProcesses
from hposerve.server.domain._study_attrs import StudyAttributes, StudyAttrs
from hposerve.server.domain._trials import TrialOutcomes
from hposerve.server.storage._open import answers_from_memory, is_exclusive
from hposerve.v1 import specs_pb2

__all__ = ["StudyInfo", "StudyOptions", "StudyRef", "StudyRegistry", "TrialRecord", "TrialRef"]


@each_call_sees_earlier_writes
class StudyRegistry:
    """All studies of one storage, and the live state of those in use.

    Thread-safety: every public method may be called from any thread. Locks are per study;
    creates and deletes take one short lock for all studies (they are rare).

    Raises (from every method): InvalidArgument, NotFound, AlreadyExists, FailedPrecondition
    as documented on each; nothing else on purpose.
    """

    def __init__(self, storage: BaseStorage, *, sampling: SamplingProcesses | None = None) -> None:
        """``sampling``: where asks of studies whose sampler fits a model are sampled (None:
        in the calling thread). The registry uses it; its owner closes it."""
        exclusive = is_exclusive(storage)
        self._in_memory = answers_from_memory(storage)
        self._catalog = StudyCatalog(storage, exclusive=exclusive, sampling=sampling)
        self._asking = TrialAsking(self._catalog.live)
        self._trials = TrialOutcomes(self._catalog.live)
        self._attrs = StudyAttributes(self._catalog.live)
        self._leases = LeaseExpiry(
            self._catalog.live_studies,
            self._catalog.load_with_running_trials,
            exclusive=exclusive,
        )

    def close(self) -> None:
        """Drops the live studies from memory; the registry starts no thread and owns no storage.

        Idempotent. The registry still works afterwards (studies reload on use).
        """
        self._catalog.forget_all()

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
        """Creates a study, or returns the existing one. See ``StudyCatalog.create_study``.

        Raises NotFound, before anything is written, when the sampler warm-starts from a study
        (CMA-ES ``source_study``) that does not exist.
        """
        source = _specs.source_study_of(sampler)
        if source is not None:
            try:
                self._catalog.get_study(StudyRef(ref.namespace, source))
            except NotFound:
                raise NotFound(
                    f"the source study {source!r} of sampler.cmaes does not exist",
                    field="sampler.cmaes.source_study",
                ) from None
        return self._catalog.create_study(
            ref,
            directions=directions,
            sampler=sampler,
            pruner=pruner,
            options=options,
            load_if_exists=load_if_exists,
            request_id=request_id,
            system_attrs=system_attrs,
        )

    def get_study(self, ref: StudyRef) -> StudyInfo:
        """Raises: NotFound."""
        return self._catalog.get_study(ref)

    def list_studies(self, namespace: str, *, after: str, limit: int) -> list[StudyInfo]:
        """Studies of a namespace in name order, those with names after ``after``."""
        return self._catalog.list_studies(namespace, after=after, limit=limit)

    def delete_study(self, ref: StudyRef, *, request_id: str = "") -> None:
        """Deletes a study and its trials; a retry with the same request id answers OK.

        Raises: NotFound.
        """
        self._catalog.delete_study(ref, request_id=request_id)

    def delete_studies(self, what: str, refs: Sequence[StudyRef], *, request_id: str = "") -> bool:
        """Deletes those of ``refs`` that exist as one delete of ``what``, a retry answering as
        the first; False when there was nothing to delete. See ``StudyCatalog``."""
        return self._catalog.delete_studies(what, refs, request_id=request_id)

    # -- starting trials -------------------------------------------------------------------

    def ask(
        self,
        ref: StudyRef,
        *,
        search_space: Mapping[str, BaseDistribution],
        count: int = 1,
        request_id: str = "",
    ) -> list[TrialRecord]:
        """Starts trials. See ``TrialAsking.ask``."""
        return self._asking.ask(ref, search_space=search_space, count=count, request_id=request_id)

    def suggest(self, ref: TrialRef, name: str, distribution: BaseDistribution) -> Any:
        """Samples one parameter of a running trial. See ``TrialAsking.suggest``."""
        return self._asking.suggest(ref, name, distribution)

    def enqueue(
        self,
        ref: StudyRef,
        *,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any],
        skip_if_exists: bool,
        request_id: str = "",
    ) -> TrialRecord | None:
        """Enqueues parameters for a future ask. See ``TrialAsking.enqueue``."""
        return self._asking.enqueue(
            ref,
            params=params,
            user_attrs=user_attrs,
            skip_if_exists=skip_if_exists,
            request_id=request_id,
        )

    # -- trials handed out -----------------------------------------------------------------

    def report(self, ref: TrialRef, *, step: int, value: float) -> bool:
        """Records an intermediate value; returns whether to prune. See ``TrialOutcomes``."""
        return self._trials.report(ref, step=step, value=value)

    def should_prune(self, ref: TrialRef) -> bool:
        """The pruning decision at the last reported step. See ``TrialOutcomes``."""
        return self._trials.should_prune(ref)

    def tell(
        self,
        ref: TrialRef,
        *,
        state: TrialState,
        values: Sequence[float] = (),
        constraints: Mapping[str, float] | None = None,
        reports: Sequence[tuple[int, float]] = (),
    ) -> TrialRecord:
        """Finishes a trial, with its constraints and last reports. See ``TrialOutcomes.tell``."""
        return self._trials.tell(
            ref, state=state, values=values, constraints=constraints, reports=reports
        )

    def tell_and_ask(
        self,
        ref: TrialRef,
        *,
        search_space: Mapping[str, BaseDistribution],
        count: int = 1,
        request_id: str = "",
        **tell: Any,
    ) -> tuple[TrialRecord, list[TrialRecord] | DomainError]:
        """Tells a trial (``tell``: the keyword arguments of ``tell``), then asks its study for
        the next (``study.optimize`` between two trials, in one call). The ask is checked
        first, and the tell checks itself before it writes: what either would refuse changes
        nothing. An error of the ask once the tell is recorded is returned in place of the
        asked trials (the caller asks again)."""
        try:
            self._asking.check_ask(ref.study, search_space=search_space, count=count)
        except DomainError as error:
            raise _within("ask", error) from None
        try:
            told = self.tell(ref, **tell)
        except DomainError as error:
            raise _within("tell", error) from None
        try:
            return told, self.ask(
                ref.study, search_space=search_space, count=count, request_id=request_id
            )
        except DomainError as error:
            return told, _within("ask", error)

    def add_trials(
        self, ref: StudyRef, trials: Sequence[FrozenTrial], *, request_id: str = ""
    ) -> list[TrialRecord]:
        """Adds trials with known outcomes. See ``TrialAsking.add_trials``."""
        return self._asking.add_trials(ref, trials, request_id=request_id)

    def study_attributes(self, ref: StudyRef) -> StudyAttrs:
        """A study's user attributes and metric names. Raises: NotFound."""
        return self._attrs.get(ref)

    def update_study_attributes(
        self, ref: StudyRef, *, user_attrs: Mapping[str, Any], metric_names: Sequence[str]
    ) -> StudyAttrs:
        """Sets user attributes and metric names. See ``StudyAttributes.update``."""
        return self._attrs.update(ref, user_attrs=user_attrs, metric_names=metric_names)

    def heartbeat(self, refs: Sequence[TrialRef]) -> list[TrialRecord | None]:
        """Renews leases; None for a trial that is not running (or does not exist)."""
        return self._trials.heartbeat(refs)

    def set_user_attrs(self, ref: TrialRef, attrs: Mapping[str, Any]) -> TrialRecord:
        """Sets user attributes on a running trial. Raises: NotFound, FailedPrecondition."""
        return self._trials.set_user_attrs(ref, attrs)

    # -- reading trials --------------------------------------------------------------------

    def get_trial(self, ref: TrialRef) -> TrialRecord:
        """Raises: NotFound."""
        return self._trials.get_trial(ref)

    def list_trials(
        self, ref: StudyRef, *, states: Sequence[TrialState], after: int, limit: int
    ) -> list[TrialRecord]:
        """Trials with number > after, in number order, optionally of some states only."""
        return self._trials.list_trials(ref, states=states, after=after, limit=limit)

    def best_trial(self, ref: StudyRef) -> TrialRecord:
        """Raises: NotFound; FailedPrecondition (multi-objective, or no complete trial)."""
        return self._trials.best_trial(ref)

    def pareto_front(self, ref: StudyRef) -> list[TrialRecord]:
        """The Pareto-optimal complete trials (the best trial when single-objective)."""
        return self._trials.pareto_front(ref)

    # -- leases ----------------------------------------------------------------------------

    def reap_expired(self, now: float | None = None) -> list[TrialRef]:
        """Fails the trials whose lease expired by ``now``; returns them. See ``_leases``."""
        return self._leases.reap_expired(now)

    # -- what the transport may ask --------------------------------------------------------

    def is_quick(self, ref: StudyRef, *, samples: bool) -> bool:
        """Whether a trial call on ``ref`` takes microseconds, so that an event loop may make it
        in place: the study is loaded, its storage answers from memory, and a call that
        ``samples`` meets a sampler that fits no model."""
        live = self._catalog.loaded(ref)
        if live is None or not self._in_memory:
            return False
        return not samples or not _specs.fits_a_model(live.config.sampler)

    # -- the read API of the parts built on studies (comparisons) --------------------------

    def study_system_attrs(self, ref: StudyRef) -> dict[str, Any]:
        """A study's system attributes (its hposerve config, a comparison's definition...).

        Raises:
            NotFound: no such study.
        """
        return self._catalog.system_attrs(ref)

    def studies_with_system_attr(self, namespace: str, key: str) -> dict[StudyRef, Any]:
        """The studies of a namespace that carry the system attribute ``key``, with its value.

        One scan of the storage's studies (in memory for the journal storages).
        """
        return self._catalog.studies_with_system_attr(namespace, key)

    def asked_by_request(self, ref: StudyRef, request_id: str) -> list[TrialRecord] | None:
        """The trials that an earlier ask (or enqueue) with ``request_id`` created, or None.

        Raises:
            NotFound: no such study.
        """
        return self._asking.asked_by_request(ref, request_id)


def _within(part: str, error: DomainError) -> DomainError:
    """``error`` with its field named within the request's ``part`` (``tell.values``)."""
    if error.field:
        error.field = f"{part}.{error.field}"
    return error

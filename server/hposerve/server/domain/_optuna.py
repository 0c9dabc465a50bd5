"""Every touch of Optuna's private internals, behind small named functions.

Optuna's public API has no way to do some of what a service needs (serve one trial's calls
from many threads, skip a scan per ask, tell without a deep copy). What is used instead is
private and may change in any release: it is reached here only, and
``tests/server/domain/test_optuna_internals.py`` fails when the installed Optuna lacks any of it.

Nothing here locks: callers hold the live study's locks as ``_live_study`` describes.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.storages.journal._base import BaseJournalSnapshot
from optuna.storages.journal._storage import JournalOperation, JournalStorageReplayResult
from optuna.study import Study
from optuna.study._frozen import FrozenStudy
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain._provisional import ProvisionalTrialView

__all__ = [
    "BaseJournalSnapshot",
    "JournalOperation",
    "JournalStorageReplayResult",
    "Sampled",
    "cached_trial",
    "contains",
    "drop_trials_cache",
    "new_trial",
    "own_cached_trial",
    "sample_new",
    "refresh_trial",
    "should_skip_enqueue",
    "start_waiting",
    "storage_of",
    "study_id_of",
    "suggest",
    "tell",
    "trial_id_of",
    "validate_trial",
    "wrapped_backend",
]


def storage_of(study: Study) -> BaseStorage:
    """The storage a study reads and writes (``Study._storage``)."""
    storage: BaseStorage = study._storage
    return storage


def study_id_of(study: Study | FrozenStudy) -> int:
    """The storage's id of a study (``_study_id``)."""
    return int(study._study_id)


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (``_trial_id``)."""
    return int(trial._trial_id)


def cached_trial(trial: optuna.Trial) -> FrozenTrial:
    """The live trial's copy of itself (``Trial._cached_frozen_trial``), not a deep copy."""
    frozen: FrozenTrial = trial._cached_frozen_trial
    return frozen


def own_cached_trial(trial: optuna.Trial) -> None:
    """Gives a live trial a cached copy of its own.

    ``Trial.report`` writes the value into the cached copy, which a journal storage hands out
    as its own record of the trial until a sync replaces it: a report the storage holds back
    (``_held_reports``) must not show in that record before it is written.
    """
    cached = cached_trial(trial)
    own = copy.copy(cached)
    own.intermediate_values = dict(cached.intermediate_values)
    trial._cached_frozen_trial = own


def refresh_trial(trial: optuna.Trial) -> None:
    """Re-reads a live trial's cached copy from storage (another process may have written it)."""
    trial._cached_frozen_trial = trial.storage.get_trial(trial_id_of(trial))


def drop_trials_cache(study: Study) -> None:
    """Forgets the study's per-thread cache of its trials, so the sampler reads them afresh.

    Optuna caches them for the duration of one trial, in one thread; a service's calls for one
    trial arrive on any thread.
    """
    study._thread_local.cached_all_trials = None


def suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    """``Trial._suggest``: what every ``suggest_*`` method does once it has a distribution."""
    return trial._suggest(name, distribution)


def new_trial(
    study: Study,
    space: Mapping[str, BaseDistribution],
    *,
    system_attrs: Mapping[str, Any] | None = None,
    on_sampled: Callable[[FrozenTrial], None] | None = None,
    number: int | None = None,
    sampled: Sampled | None = None,
) -> optuna.Trial:
    """``study.ask(space)`` in one storage record, without its scan for an enqueued trial.

    The caller knows there is no enqueued trial, and has checked ``space`` against the
    study's distributions (the journal checks a parameter record, not a template).
    ``sampled`` is the trial as sampled elsewhere (``sample_new`` in a sampling process);
    None samples here. ``on_sampled`` may then add to it (the sampling time). Then the trial
    is created with all of it by one ``create_new_trial`` with a template (one journal
    record), and the live trial returned is pointed at it. A failed sampling stores nothing.
    """
    trial = None
    if sampled is None:
        trial, sampled = sample_new(study, space, system_attrs=system_attrs, number=number)
    if on_sampled is not None:
        on_sampled(sampled.template)
    storage = storage_of(study)
    trial_id = storage.create_new_trial(study_id_of(study), template_trial=sampled.template)
    if trial is None:
        # A live trial that does not run the sampler again (``Trial.__init__`` would call its
        # ``before_trial``): the relative parameters are those the sampling drew.
        trial = optuna.Trial.__new__(optuna.Trial)
        trial._fixed_params = {}
        trial.relative_search_space = sampled.relative_search_space
        trial._relative_params = sampled.relative_params
    trial.study, trial.storage, trial._trial_id = study, storage, trial_id
    trial._cached_frozen_trial = storage.get_trial(trial_id)
    return trial


@dataclasses.dataclass(frozen=True)
class Sampled:
    """A new trial as its sampling left it, before it is stored (picklable)."""

    template: FrozenTrial
    # As Optuna's ``Trial`` holds them: None until a suggest needed them (Optuna draws them
    # lazily, to see the latest trials).
    relative_search_space: dict[str, BaseDistribution] | None
    relative_params: dict[str, Any] | None


def sample_new(
    study: Study,
    space: Mapping[str, BaseDistribution],
    *,
    system_attrs: Mapping[str, Any] | None = None,
    number: int | None = None,
) -> tuple[optuna.Trial, Sampled]:
    """Samples ``space`` for a new trial without storing it.

    Optuna's ``Trial`` and the study's sampler sample on a trial that exists only in a
    ``ProvisionalTrialView`` (with ``system_attrs``, numbered ``number``: the number it will
    get, which the caller knows; None counts the study's trials). Returns the live trial (on
    the view) and what the sampling left.
    """
    drop_trials_cache(study)  # as study.ask does
    view = ProvisionalTrialView(
        storage_of(study), study_id_of(study), system_attrs or {}, number=number
    )
    # The same study and sampler, reading through the view. A copy of a Study gets per-thread
    # caches of its own (``Study.__setstate__``), so the provisional trial stays out of the
    # study's.
    on_view = copy.copy(study)
    on_view._storage = view
    trial = optuna.Trial(on_view, view.trial_id)
    for name, distribution in space.items():
        suggest(trial, name, distribution)
    return trial, Sampled(view.trial, trial.relative_search_space, trial._relative_params)


def start_waiting(
    study: Study,
    waiting: FrozenTrial,
    space: Mapping[str, BaseDistribution],
    *,
    system_attrs: Mapping[str, Any] | None = None,
    clear_on_failure: Sequence[str] = (),
) -> optuna.Trial | None:
    """Starts an enqueued (WAITING) trial as ``study.ask(space)`` pops one; None if taken.

    ``system_attrs`` are written while it still waits, before it is set RUNNING (a crash in
    between leaves a waiting trial that names its ask, which a retry of that ask starts). As
    ``resume_trial``, a failed sampling fails the trial and raises.
    """
    drop_trials_cache(study)
    storage = storage_of(study)
    trial_id = trial_id_of(waiting)
    try:
        for key, value in (system_attrs or {}).items():
            storage.set_trial_system_attr(trial_id, key, value)
        if not storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
            return None  # another process started it first
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    return resume_trial(study, trial_id, space, clear_on_failure=clear_on_failure)


def resume_trial(
    study: Study,
    trial_id: int,
    space: Mapping[str, BaseDistribution],
    *,
    clear_on_failure: Sequence[str] = (),
) -> optuna.Trial:
    """The live trial of a running trial, with the parameters of ``space`` it lacks sampled.

    A retried ask resumes the trial a crash left half-sampled. When sampling fails, the trial
    is failed, so that no half-sampled trial is left running, and the error raised; the
    attributes named in ``clear_on_failure`` are set to None first (so that a failed trial
    answers no request).
    """
    try:
        # Making the Trial samples the relative (joint) parameters: it can fail too.
        trial = optuna.Trial(study, trial_id)
        for name, distribution in space.items():
            if name not in trial.params:
                suggest(trial, name, distribution)
    except BaseException:
        # Cleared first, so that a failed trial answers no request (a retry runs afresh).
        for key in clear_on_failure:
            storage_of(study).set_trial_system_attr(trial_id, key, None)
        tell(study, storage_of(study).get_trial(trial_id).number, None, TrialState.FAIL)
        raise
    return trial


def should_skip_enqueue(study: Study, params: Mapping[str, Any]) -> bool:
    """Whether ``enqueue_trial(params, skip_if_exists=True)`` skips (``_should_skip_enqueue``)."""
    return bool(study._should_skip_enqueue(params))


def tell(
    study: Study,
    trial: optuna.Trial | int,
    values: Sequence[float] | None,
    state: TrialState,
) -> None:
    """``Study.tell``'s own logic, without the deep copy of the trial that it returns.

    Samplers call ``study.stop()`` when they are done (the grid sampler, once its grid is
    exhausted), which Optuna refuses outside ``optimize()``. The service has no loop to stop,
    so each tell runs as ``optimize()`` would run it (the flag is per thread).
    """
    study._thread_local.in_optimize_loop = True
    try:
        _tell_with_warning(study, trial, None if values is None else list(values), state)
    finally:
        study._thread_local.in_optimize_loop = False


def validate_trial(trial: FrozenTrial) -> None:
    """Raises ValueError for a trial ``Study.add_trial`` would refuse (``_validate``).

    ``add_trial`` runs it too; calling it first lets a batch be checked before any is added.
    """
    trial._validate()


def contains(distribution: BaseDistribution, internal: float) -> bool:
    """Whether an internal representation lies in the distribution (``_contains``)."""
    return bool(distribution._contains(internal))


def wrapped_backend(storage: BaseStorage) -> object | None:
    """What a storage wraps: a JournalStorage's backend, an RDB cache's RDBStorage; or None.

    Both keep it in ``_backend``.
    """
    return getattr(storage, "_backend", None)


# ``BaseJournalSnapshot`` (imported above) is the snapshot interface a journal backend
# implements to let JournalStorage start from a snapshot: Optuna checks isinstance against it
# and exports it from no public module. ``JournalStorageReplayResult`` is JournalStorage's
# replayed state, which ``storage._pg_storage`` extends, and ``JournalOperation`` the kinds of
# its logs (their internals are pinned in tests/server/domain/test_optuna_internals.py).


# -- the grid sampler: Optuna's, without its per-trial scan of the study ------------------


def grid_sampler(
    search_space: Mapping[str, Sequence[Any]], seed: int | None = None
) -> optuna.samplers.GridSampler:
    """Optuna's grid sampler, without its cost per trial of the study at every ask and tell.

    Optuna's looks for the visited points by comparing every trial's copy of the grid with its
    own, value by value, at every ask past the grid's size and at every tell: asks over a
    study of 2,000 trials took 15 ms each. The grid point of a trial never changes once set,
    so this one remembers it per trial and compares grids once per trial. It chooses the same
    points as Optuna's (the same candidates, in the same order, from the same generator), and
    is one (the same class, two methods replaced on the instance).
    """
    sampler = optuna.samplers.GridSampler(search_space, seed)
    visits = _GridVisits(sampler)
    sampler._get_unvisited_grid_ids = visits.unvisited  # type: ignore[method-assign]
    sampler.after_trial = visits.after_trial  # type: ignore[method-assign]
    return sampler


class _GridVisits:
    """Which point of a grid each trial took, remembered (see ``grid_sampler``).

    Thread-safety: as Optuna's sampler; the service calls it under the study's ``sample_lock``.
    """

    def __init__(self, sampler: optuna.samplers.GridSampler) -> None:
        self._sampler = sampler
        self._grid_ids: dict[int, int | None] = {}  # trial id -> its point (None: another grid)

    def _grid_id(self, trial: FrozenTrial) -> int | None:
        known = self._grid_ids.get(trial._trial_id, -1)
        if known != -1:
            return known
        attrs = trial.system_attrs
        if "grid_id" not in attrs:
            return None  # not yet given a point: look again next time
        space, grid_id = attrs.get("search_space"), attrs["grid_id"]
        # Attributes a client wrote (AddTrials) may be anything: only a point of this grid counts.
        try:
            same = space == self._sampler._search_space or self._sampler._same_search_space(
                space  # type: ignore[arg-type]  # checked by the except
            )
        except (TypeError, AttributeError):
            same = False
        n = self._sampler._n_min_trials
        if not same or not isinstance(grid_id, int) or not 0 <= grid_id < n:
            grid_id = None
        self._grid_ids[trial._trial_id] = grid_id
        return grid_id

    def _visited_and_running(self, study: optuna.Study) -> tuple[set[int], set[int]]:
        visited: set[int] = set()
        running: set[int] = set()
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            grid_id = self._grid_id(t)
            if grid_id is None:
                continue
            if t.state.is_finished():
                visited.add(grid_id)
            elif t.state == TrialState.RUNNING:
                running.add(grid_id)
        return visited, running

    def unvisited(self, study: optuna.Study) -> list[int]:
        visited, running = self._visited_and_running(study)
        # The same expression as Optuna's, so that the candidates come in the same order.
        n = self._sampler._n_min_trials
        unvisited = set(range(n)) - visited - running
        if not unvisited:
            unvisited = set(range(n)) - visited
        return list(unvisited)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # Optuna's rule (stop once no point, or only this trial's, is left to evaluate),
        # counting the points rather than listing them.
        visited, running = self._visited_and_running(study)
        n = self._sampler._n_min_trials
        taken = visited | running
        left, excluded = n - len(taken), taken
        if left == 0:
            left, excluded = n - len(visited), visited
        if left == 0:
            study.stop()
        elif left == 1:
            only = next(i for i in range(n) if i not in excluded)
            if study._storage.get_trial_system_attrs(trial._trial_id).get("grid_id") == only:
                study.stop()

"""Every touch of Optuna's private internals, behind small named functions.

Optuna's public API has no way to do some of what a service needs (serve one trial's calls
from many threads, skip a scan per ask, tell without a deep copy). What is used instead is
private and may change in any release: it is reached here only, and
``tests/server/domain/test_optuna_internals.py`` fails when the installed Optuna lacks any of it.

Nothing here locks: callers hold the live study's locks as ``_live_study`` describes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.storages.journal._base import BaseJournalSnapshot
from optuna.study import Study
from optuna.study._frozen import FrozenStudy
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "BaseJournalSnapshot",
    "cached_trial",
    "contains",
    "drop_trials_cache",
    "new_trial",
    "refresh_trial",
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


def new_trial(study: Study, space: Mapping[str, BaseDistribution]) -> optuna.Trial:
    """``study.ask(space)`` without its scan of every trial for an enqueued one.

    The caller knows there is no enqueued trial. When sampling fails the new trial is failed,
    so that no half-sampled trial is left running, and the error raised.
    """
    drop_trials_cache(study)  # as study.ask does
    storage = storage_of(study)
    trial = optuna.Trial(study, storage.create_new_trial(study_id_of(study)))
    try:
        for name, distribution in space.items():
            suggest(trial, name, distribution)
    except BaseException:
        tell(study, trial, None, TrialState.FAIL)
        raise
    return trial


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
# and exports it from no public module.

"""A storage view in which one trial exists before it is stored: sampled first, written once.

``Study.ask(space)`` creates the trial, then writes each sampled parameter (and each sampler's
trial attribute) as a record of its own: seven records for five parameters, seven round trips
on a database. Sampling on this view instead runs Optuna's own ``Trial`` and sampler
unchanged, against a trial that the view alone holds (RUNNING, numbered next, in every read of
the study's trials); what they write to it stays in the view. The caller then stores the
trial with all of it in one ``create_new_trial(template_trial=...)``: one record, so a crash
keeps the trial whole or not at all, and a sampling that fails leaves nothing behind.

Everything else (other trials, the study, its attributes) reads and writes through to the
storage, so samplers that keep state in study attributes (QMC's sample id) behave as usual.
"""

from __future__ import annotations

import copy
import datetime
import itertools
from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from hposerve.server.domain._optuna import (
        FrozenStudy,  # Optuna exports it from no public module
    )

__all__ = ["ProvisionalTrialView", "trial_count"]

# Ids no storage hands out, one per view, so that a sampler's caches keyed by trial id never
# mix two provisional trials.
_ids = itertools.count(-1, -1)


class ProvisionalTrialView(BaseStorage):
    """``storage`` with one more, unstored, running trial in study ``study_id``, numbered
    ``number`` (the number it will get, which samplers read; None: counted).

    Not thread-safe: one ask uses it, under its study's ``sample_lock``.
    """

    def __init__(
        self,
        storage: BaseStorage,
        study_id: int,
        system_attrs: Mapping[str, Any],
        *,
        number: int | None = None,
    ) -> None:
        self._storage = storage
        self._study_id = study_id
        if number is None:
            number = storage.get_n_trials(study_id)
        self.trial_id = next(_ids)
        self.trial = FrozenTrial(
            number=number,
            state=TrialState.RUNNING,
            value=None,
            values=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs=dict(system_attrs),
            intermediate_values={},
            trial_id=self.trial_id,
        )

    def _is_it(self, trial_id: int) -> bool:
        return trial_id == self.trial_id

    # -- the provisional trial ---------------------------------------------------------------

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self.trial if self._is_it(trial_id) else self._storage.get_trial(trial_id)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        if study_id == self._study_id and (states is None or TrialState.RUNNING in states):
            trials = [*trials, copy.deepcopy(self.trial) if deepcopy else self.trial]
        return trials

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        if study_id == self._study_id and trial_number == self.trial.number:
            return self.trial_id
        return self._storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        if not self._is_it(trial_id):
            self._storage.set_trial_param(trial_id, param_name, param_value_internal, distribution)
            return
        # The journal would check the distribution against the study's first use of the name,
        # in a scan of every trial: the caller has (``LiveStudy.check_compatible``).
        self.trial.params[param_name] = distribution.to_external_repr(param_value_internal)
        self.trial.distributions[param_name] = distribution

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._is_it(trial_id):
            self.trial.system_attrs[key] = value
        else:
            self._storage.set_trial_system_attr(trial_id, key, value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._is_it(trial_id):
            self.trial.user_attrs[key] = value
        else:
            self._storage.set_trial_user_attr(trial_id, key, value)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if self._is_it(trial_id):
            raise RuntimeError("a provisional trial is stored before it is finished")
        return self._storage.set_trial_state_values(trial_id, state, values)

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        if self._is_it(trial_id):
            raise RuntimeError("a provisional trial is stored before it reports")
        self._storage.set_trial_intermediate_value(trial_id, step, intermediate_value)

    # -- everything else, through to the storage ---------------------------------------------

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        return self._storage.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self._storage.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._storage.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._storage.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._storage.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._storage.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._storage.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._storage.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._storage.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        return self._storage.get_all_studies()

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        return self._storage.create_new_trial(study_id, template_trial)


def trial_count(storage: BaseStorage, study_id: int, *, hint: int | None) -> int:
    """How many trials the study has: ``hint`` (checked in two lookups) when it is right.

    Samplers read the trial's number (the grid's first points, CMA-ES's seed), so it must be
    exact; counting them all costs a scan of the study at every ask.
    """

    def exists(number: int) -> bool:
        try:
            storage.get_trial_id_from_study_id_trial_number(study_id, number)
        except KeyError:
            return False
        return True

    if hint is not None and hint >= 0 and not exists(hint) and (hint == 0 or exists(hint - 1)):
        return hint
    return storage.get_n_trials(study_id)

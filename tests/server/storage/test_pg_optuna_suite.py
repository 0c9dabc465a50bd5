"""Optuna's own storage test suite on the PostgreSQL journal: Optuna's ``JournalStorage`` on
the backend, and ``PostgresJournalStorage`` (what ``open_storage`` gives), whose threads share
append round trips."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.storages import BaseStorage, JournalStorage
from optuna.testing.pytest_storages import StorageTestCase
from optuna.trial import TrialState
from pg_support import MakeBackend

from hposerve.server.storage._pg_storage import PostgresJournalStorage

pytestmark = pytest.mark.postgres


@pytest.fixture(params=[JournalStorage, PostgresJournalStorage])
def storage(request: pytest.FixtureRequest, make_backend: MakeBackend) -> BaseStorage:
    return request.param(make_backend())


class TestOptunaStorageSuite(StorageTestCase):
    """Every behaviour Optuna requires of a storage (studies, trials, params, values,
    intermediate values, attributes, states, deletion)."""


def test_a_study_runs_and_reads_back_after_reopening(make_backend: MakeBackend) -> None:
    storage = JournalStorage(make_backend())
    study = optuna.create_study(storage=storage, study_name="s", directions=["minimize"])
    study.set_user_attr("owner", "team-a")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        trial.report(math.nan, 0)  # NaN is valid JSON for Optuna, not for jsonb
        trial.report(x * x, 1)
        trial.set_user_attr("kind", kind)
        if trial.number == 3:
            raise optuna.TrialPruned
        return x * x

    study.optimize(objective, n_trials=6)
    study.enqueue_trial({"x": 0.5, "kind": "a"})

    reopened = optuna.load_study(study_name="s", storage=JournalStorage(make_backend()))
    before, after = study.get_trials(), reopened.get_trials()
    assert len(after) == 7
    assert [t.state for t in after] == [t.state for t in before]
    assert after[3].state == TrialState.PRUNED and after[6].state == TrialState.WAITING
    assert math.isnan(after[0].intermediate_values[0])
    assert [t.params for t in after] == [t.params for t in before]
    assert [t.user_attrs for t in after] == [t.user_attrs for t in before]
    assert reopened.user_attrs == {"owner": "team-a"}
    assert reopened.best_value == study.best_value

    optuna.delete_study(study_name="s", storage=reopened._storage)
    assert optuna.get_all_study_names(JournalStorage(make_backend())) == []

"""optuna-integration's callbacks and OptunaSearchCV on hposerve trials and studies.

They check the study's direction against Optuna's ``StudyDirection`` and report through the
trial: with the client's enums equal to Optuna's, they work on remote trials unchanged.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.study import StudyDirection

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
sklearn_datasets = pytest.importorskip("sklearn.datasets")


def _binary():
    return sklearn_datasets.load_breast_cancer(return_X_y=True)


def test_lightgbm_pruning_callback_on_a_remote_trial(client):
    lgb = pytest.importorskip("lightgbm")
    integration = pytest.importorskip("optuna_integration")
    X, y = _binary()
    study = client.create_study(direction="minimize", pruner={"type": "median"})

    def objective(trial):
        data = lgb.Dataset(X[:400], label=y[:400])
        valid = lgb.Dataset(X[400:], label=y[400:], reference=data)
        params = {
            "objective": "binary",
            "metric": "binary_logloss",
            "verbosity": -1,
            "num_leaves": trial.suggest_int("num_leaves", 4, 32),
        }
        callback = integration.LightGBMPruningCallback(trial, "binary_logloss")
        booster = lgb.train(params, data, 20, valid_sets=[valid], callbacks=[callback])
        return booster.best_score["valid_0"]["binary_logloss"]

    study.optimize(objective, n_trials=3)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(study.trials[0].intermediate_values) == 20


def test_lightgbm_callback_refuses_a_metric_against_the_direction(client):
    lgb = pytest.importorskip("lightgbm")
    integration = pytest.importorskip("optuna_integration")
    X, y = _binary()
    study = client.create_study(direction="maximize")  # logloss is minimized
    trial = study.ask()
    callback = integration.LightGBMPruningCallback(trial, "binary_logloss")
    data = lgb.Dataset(X[:400], label=y[:400])
    valid = lgb.Dataset(X[400:], label=y[400:], reference=data)
    with pytest.raises(ValueError, match="inconsistent"):
        lgb.train(
            {"objective": "binary", "metric": "binary_logloss", "verbosity": -1},
            data,
            2,
            valid_sets=[valid],
            callbacks=[callback],
        )


def test_xgboost_pruning_callback_on_a_remote_trial(client):
    xgb = pytest.importorskip("xgboost")
    integration = pytest.importorskip("optuna_integration")
    X, y = _binary()
    study = client.create_study(direction="minimize")

    def objective(trial):
        train = xgb.DMatrix(X[:400], label=y[:400])
        valid = xgb.DMatrix(X[400:], label=y[400:])
        params = {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "max_depth": trial.suggest_int("max_depth", 1, 4),
        }
        callback = integration.XGBoostPruningCallback(trial, "validation-logloss")
        booster = xgb.train(
            params,
            train,
            10,
            evals=[(valid, "validation")],
            callbacks=[callback],
            verbose_eval=False,
        )
        return float(booster.eval(valid).split(":")[1])

    study.optimize(objective, n_trials=2)
    assert [len(t.intermediate_values) for t in study.trials] == [10, 10]


def test_optuna_search_cv_direction_check(client):
    integration = pytest.importorskip("optuna_integration")
    from sklearn.svm import SVC

    X, y = sklearn_datasets.load_iris(return_X_y=True)
    space = {"C": optuna.distributions.FloatDistribution(1e-2, 1e2, log=True)}
    maximize = client.create_study(direction="maximize", sampler={"type": "random", "seed": 0})
    assert maximize.direction == StudyDirection.MAXIMIZE  # the check OptunaSearchCV makes
    search = integration.OptunaSearchCV(SVC(), space, study=maximize, n_trials=1, cv=2)
    # Past the direction check, OptunaSearchCV writes the CV scores into the trial's storage
    # (for the terminator), which a remote trial does not expose: a clear refusal.
    with pytest.raises(NotImplementedError, match="trial.storage is the server's"):
        search.fit(X, y)
    minimize = client.create_study(direction="minimize")
    with pytest.raises(ValueError, match="direction of study must be 'maximize'"):
        integration.OptunaSearchCV(SVC(), space, study=minimize, n_trials=1).fit(X, y)

"""scikit-learn tasks: models cross-validated on datasets bundled with scikit-learn.

scikit-learn is imported only when a task is evaluated.
"""

from __future__ import annotations

import functools
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hposerve.lab._task import Params, Report, Task

__all__ = ["sklearn_gb_task", "sklearn_rf_task", "sklearn_svm_task"]

_CV_FOLDS = 3


@functools.cache
def _sklearn_data(name: str) -> tuple[Any, Any]:
    from sklearn import datasets

    if name == "digits":
        digits = datasets.load_digits()
        # Pixels are 0..16; scaling to [0, 1] keeps the SVM's gamma range meaningful.
        return digits.data / 16.0, digits.target
    if name == "breast_cancer":
        data = datasets.load_breast_cancer()
        return data.data, data.target  # trees only: scale-free
    raise ValueError(f"unknown dataset {name!r}")


def _make_estimator(kind: str, params: Params, seed: int) -> Any:
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=int(params["n_estimators"]),
            max_depth=int(params["max_depth"]),
            min_samples_split=int(params["min_samples_split"]),
            criterion=str(params["criterion"]),
            random_state=seed,
            n_jobs=1,
        )
    if kind == "svm":
        from sklearn.svm import SVC

        return SVC(C=float(params["C"]), gamma=float(params["gamma"]), random_state=seed)
    if kind == "gb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            learning_rate=float(params["learning_rate"]),
            max_leaf_nodes=int(params["max_leaf_nodes"]),
            min_samples_leaf=int(params["min_samples_leaf"]),
            l2_regularization=float(params["l2_regularization"]),
            max_iter=100,
            early_stopping=False,  # "auto" would depend on the data size; keep it fixed
            random_state=seed,
        )
    raise ValueError(f"unknown estimator kind {kind!r}")


def _evaluate_sklearn(
    params: Params,
    *,
    seed: int,
    report: Report | None = None,
    kind: str,
    dataset: str,
) -> float:
    """Returns the 3-fold CV error (1 - mean accuracy); ``seed`` seeds the model and the folds."""
    del report  # no learning curve
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    x, y = _sklearn_data(dataset)
    folds = StratifiedKFold(n_splits=_CV_FOLDS, shuffle=True, random_state=seed)
    # One thread: comparisons run a worker per core, and OpenMP (HistGradientBoosting) or BLAS
    # pools per worker would only contend for the same cores.
    with threadpool_limits(limits=1):
        scores = cross_val_score(
            _make_estimator(kind, params, seed), x, y, cv=folds, n_jobs=1, error_score="raise"
        )
    return 1.0 - float(scores.mean())


def _sklearn_task(
    name: str, kind: str, dataset: str, space: dict[str, BaseDistribution], what: str
) -> Task:
    return Task(
        name=name,
        direction="minimize",
        search_space=space,
        optimum=None,
        evaluate=functools.partial(_evaluate_sklearn, kind=kind, dataset=dataset),
        description=f"{what} on sklearn's {dataset}, {_CV_FOLDS}-fold CV error (1 - accuracy)",
    )


def sklearn_rf_task() -> Task:
    # breast_cancer rather than digits: 200 trees on digits take ~2.5 s per evaluation.
    return _sklearn_task(
        "sklearn-rf",
        "rf",
        "breast_cancer",
        {
            "n_estimators": IntDistribution(10, 200, log=True),
            "max_depth": IntDistribution(2, 32, log=True),
            "min_samples_split": IntDistribution(2, 20),
            "criterion": CategoricalDistribution(("gini", "entropy")),
        },
        "RandomForestClassifier",
    )


def sklearn_svm_task() -> Task:
    return _sklearn_task(
        "sklearn-svm",
        "svm",
        "digits",
        {
            "C": FloatDistribution(1e-3, 1e3, log=True),
            "gamma": FloatDistribution(1e-4, 1e1, log=True),
        },
        "SVC (RBF kernel)",
    )


def sklearn_gb_task() -> Task:
    return _sklearn_task(
        "sklearn-gb",
        "gb",
        "breast_cancer",
        {
            "learning_rate": FloatDistribution(1e-3, 1.0, log=True),
            "max_leaf_nodes": IntDistribution(4, 64, log=True),
            "min_samples_leaf": IntDistribution(2, 64, log=True),
            "l2_regularization": FloatDistribution(1e-6, 10.0, log=True),
        },
        "HistGradientBoostingClassifier (100 iterations)",
    )

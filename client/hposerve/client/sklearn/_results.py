"""Scores: one candidate cross-validated, and ``cv_results_`` in GridSearchCV's layout."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.ma import MaskedArray
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import cross_validate

# What precedes the fits' errors in scikit-learn's message when all fits fail.
_DETAILS = "Below are more details about the failures:\n"


def score_candidate(
    estimator: Any,
    params: dict[str, Any],
    data: tuple[Any, Any, list[tuple[np.ndarray, np.ndarray]]],
    scorers: Any,
    fit_params: dict[str, Any],
    *,
    return_train_score: bool,
    error_score: Any,
) -> tuple[dict[str, np.ndarray], str | None]:
    """Cross-validates ``estimator`` with ``params`` on ``data`` (X, y, splits).

    Returns:
        ``cross_validate``'s output, and, if all the candidate's fits failed, their errors
        (the output then holds ``error_score`` for every split).
    """
    X, y, splits = data
    candidate = clone(estimator).set_params(**clone(params, safe=False))
    try:
        out = cross_validate(
            candidate,
            X,
            y,
            scoring=scorers,
            cv=splits,
            params=fit_params or None,
            return_train_score=return_train_score,
            error_score=error_score,
        )
        return out, None
    except ValueError as error:
        # cross_validate raises when all fits of its (here: one) candidate fail; in a
        # search that is one bad candidate, scored error_score, as GridSearchCV does.
        if error_score == "raise" or "fits failed" not in str(error):
            raise
        # Up: this function, the search's loop, fit, and the caller of fit.
        warnings.warn(str(error), FitFailedWarning, stacklevel=4)
        failure = str(error).split(_DETAILS, 1)[-1]
    n = len(splits)
    names = list(scorers) if isinstance(scorers, Mapping) else ["score"]
    failed = {"fit_time": np.zeros(n), "score_time": np.zeros(n)}
    for name in names:
        failed[f"test_{name}"] = np.full(n, float(error_score))
        if return_train_score:
            failed[f"train_{name}"] = np.full(n, float(error_score))
    return failed, failure


def all_failed_message(n_fits: int, failures: list[str]) -> str:
    """GridSearchCV's message when every fit failed, with the fits' errors (each once)."""
    return (
        f"\nAll the {n_fits} fits failed.\nIt is very likely that your model is"
        " misconfigured.\nYou can try to debug the error by setting error_score='raise'.\n\n"
        + _DETAILS
        + "".join(dict.fromkeys(failures))
    )


def _ranks(means: np.ndarray) -> np.ndarray:
    # Failed candidates (NaN) tie with the worst, as in scikit-learn.
    if np.isnan(means).all():
        return np.ones(len(means), dtype=np.int32)
    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
    return rankdata(-filled, method="min").astype(np.int32)


def _store(
    results: dict[str, Any], key: str, rows: np.ndarray, *, splits: bool = False, rank: bool = False
) -> None:
    """Adds the split, mean, std (and rank) columns of one score to ``results``."""
    if splits:
        for i in range(rows.shape[1]):
            results[f"split{i}_{key}"] = rows[:, i]
    means = rows.mean(axis=1)
    if key.startswith(("train_", "test_")) and not np.all(np.isfinite(means)):
        warnings.warn(
            f"One or more of the {key.split('_')[0]} scores are non-finite: {means}",
            UserWarning,
            stacklevel=4,  # up: this function, cv_results, fit, and the caller of fit
        )
    results[f"mean_{key}"] = means
    results[f"std_{key}"] = rows.std(axis=1)
    if rank:
        results[f"rank_{key}"] = _ranks(means)


def _param_column(values: list[Any]) -> MaskedArray:
    """One ``param_<name>`` column: typed where numpy can type it, else of objects."""
    try:
        inferred = np.array(values)
        dtype = inferred.dtype if inferred.dtype.kind != "U" and inferred.ndim == 1 else None
    except ValueError:
        dtype = None
    column = MaskedArray(
        np.empty(len(values), dtype=dtype if dtype is not None else object), mask=True
    )
    for i, value in enumerate(values):
        column[i] = value
    return column


def cv_results(
    candidates: list[dict[str, Any]],
    outs: list[dict[str, np.ndarray]],
    numbers: list[int],
    names: list[str],
    n_splits: int,
    *,
    return_train_score: bool,
) -> dict[str, Any]:
    """``cv_results_`` in GridSearchCV's layout, with the ``trial_number`` of each row."""
    results: dict[str, Any] = {}

    def rows(key: str) -> np.ndarray:
        return np.array([out[key] for out in outs], dtype=np.float64).reshape(-1, n_splits)

    _store(results, "fit_time", rows("fit_time"))
    _store(results, "score_time", rows("score_time"))
    for name in dict.fromkeys(n for params in candidates for n in params):
        results[f"param_{name}"] = _param_column([params[name] for params in candidates])
    results["params"] = candidates
    for name in names:
        _store(results, f"test_{name}", rows(f"test_{name}"), splits=True, rank=True)
        if return_train_score:
            _store(results, f"train_{name}", rows(f"train_{name}"), splits=True)
    results["trial_number"] = np.array(numbers, dtype=np.int64)
    return results

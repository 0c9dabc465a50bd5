"""A scikit-learn search estimator whose candidates come from a study on the service.

:class:`SearchCV` is a drop-in for ``GridSearchCV``/``RandomizedSearchCV``: ``fit`` asks the
study for candidates (with any sampler: TPE, random, CMA-ES...), cross-validates each and tells
the mean test score. Several processes or machines fitting with the same ``study_name`` share
one search. This module needs scikit-learn and numpy; the rest of ``hposerve.client`` does not.

Example::

    from hposerve.client import FloatDistribution
    from hposerve.client.sklearn import SearchCV

    search = SearchCV(
        SVC(),
        {"C": FloatDistribution(1e-3, 1e3, log=True), "kernel": ["rbf", "linear"]},
        target="hpo.lab:50051",
        study_name="svc-iris",
        sampler={"type": "tpe", "seed": 0},
        n_trials=30,
    ).fit(X, y)
    search.best_params_, search.best_score_, search.predict(X_new)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.ma import MaskedArray
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.metrics import check_scoring, get_scorer
from sklearn.model_selection import check_cv, cross_validate
from sklearn.utils import indexable
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._client import Client
from ._config import ClientConfig
from ._distributions import CategoricalDistribution, Distribution, _plain
from ._errors import HposerveError, InvalidArgument
from ._refine import _as_distribution, _key
from ._study import Study
from ._trial import FrozenTrial

__all__ = ["SearchCV"]

_logger = logging.getLogger("hposerve.client")

# What precedes the fits' errors in scikit-learn's message when all fits fail.
_DETAILS = "Below are more details about the failures:\n"


def _encode(choice: Any) -> Any:
    # The service stores None, bool, int, float and str; any other choice (a tuple of layer
    # sizes, a kernel object) travels as its repr and is mapped back to the object here.
    plain = _plain(choice)
    if plain is None or isinstance(plain, (bool, int, float, str)):
        return plain
    return repr(choice)


class _Space:
    """``param_distributions`` as the service's fixed space, and the way back to the objects."""

    def __init__(self, param_distributions: Any) -> None:
        if not isinstance(param_distributions, Mapping):
            raise TypeError(
                "param_distributions must be a dict {name: distribution or list of values}, got"
                f" {type(param_distributions).__name__}"
            )
        self.distributions: dict[str, Distribution] = {}
        self.choices: dict[str, dict[bytes, Any]] = {}  # name -> encoded key -> original
        for name, spec in param_distributions.items():
            if not isinstance(name, str):
                raise TypeError(f"parameter names must be strings, got {name!r}")
            if isinstance(spec, (list, tuple, np.ndarray)):
                originals = list(spec)
            elif type(spec).__name__ == "CategoricalDistribution":  # ours or Optuna's
                originals = list(spec.choices)
            else:
                try:
                    self.distributions[name] = _as_distribution(spec)
                except InvalidArgument:
                    raise TypeError(
                        f"parameter {name!r}: {spec!r} is not a distribution; use a list of"
                        " values, or FloatDistribution, IntDistribution or"
                        " CategoricalDistribution (hposerve's or Optuna's)"
                    ) from None
                continue
            if not originals:
                raise ValueError(f"parameter {name!r} has no values to choose from")
            encoded = [_encode(c) for c in originals]
            keys = {_key(e): c for e, c in zip(encoded, originals, strict=True)}
            if len(keys) != len(originals):
                raise ValueError(
                    f"the values of parameter {name!r} must be distinct (values that are not"
                    " None, bool, int, float or str are told apart by their repr)"
                )
            self.distributions[name] = CategoricalDistribution(tuple(encoded))
            self.choices[name] = keys

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The estimator parameters for a trial's (service-side) parameter values."""
        return {
            name: self.choices[name][_key(v)] if name in self.choices else v
            for name, v in params.items()
        }


def _check_refit(search: SearchCV, attr: str) -> None:
    if not search.refit:
        raise AttributeError(
            f"This {type(search).__name__} instance was initialized with `refit=False`. {attr}"
            " is available only after refitting on the best parameters. You can refit an"
            " estimator manually using the `best_params_` attribute"
        )


def _estimator_has(attr: str) -> Callable[[SearchCV], bool]:
    """Delegate ``attr`` only with ``refit``, and only if the (best) estimator has it."""

    def check(self: SearchCV) -> bool:
        _check_refit(self, attr)
        getattr(self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator, attr)
        return True

    return check


class SearchCV(MetaEstimatorMixin, BaseEstimator):
    """Cross-validated search over hyperparameters drawn from a study on the service.

    Behaves like ``GridSearchCV`` and ``RandomizedSearchCV``: ``fit`` evaluates ``n_trials``
    candidates with cross-validation and then refits the best on all the data; ``predict``,
    ``predict_proba``, ``score``, ``transform``... delegate to ``best_estimator_``. The
    candidates come from the study ``study_name`` on the service, which maximizes the mean
    test score (scikit-learn scores are higher-is-better) with its sampler. Several processes
    or machines fitting a ``SearchCV`` with the same study name (and the same data) share one
    search: each asks for candidates informed by all the trials so far.

    **What is whose.** ``cv_results_`` lists the candidates *this* fit evaluated (one row per
    trial it asked, with its ``trial_number`` in the study). ``best_params_``,
    ``best_score_`` and ``best_estimator_`` come from the best complete trial of the whole
    *study* with this search space, which may have been evaluated by another machine: sharing
    one search is the point. ``best_trial_`` is that trial; ``best_index_`` is its row in
    ``cv_results_``, or None if another fit evaluated it.

    A candidate whose fits all fail, or whose mean score is NaN (``error_score=np.nan``), is
    told failed; with ``error_score="raise"`` the trial is told failed and the error raised.
    The study's ``pruner`` applies to other clients of the study that report intermediate
    values; cross-validation reports none.

    Args:
        estimator: The estimator to tune (cloned for each candidate).
        param_distributions: ``{name: distribution}``: a ``FloatDistribution``,
            ``IntDistribution`` or ``CategoricalDistribution`` (hposerve's or Optuna's), or a
            list of values (categorical; values other than None, bool, int, float and str are
            stored in the study as their repr).
        target: The server address.
        study_name: The study to create or join.
        namespace: The namespace of the study; overrides a default ``client_config``'s.
        sampler: The study's sampler if this fit creates it, e.g.
            ``{"type": "tpe", "seed": 0}``; None for the server's default.
        pruner: The study's pruner if this fit creates it.
        n_trials: How many candidates this fit evaluates.
        scoring: A scorer name or callable; or, for several metrics, a list of names or a dict
            ``{name: scorer}``, with ``refit`` naming the one the study optimizes. None: the
            estimator's ``score``.
        cv: As for ``cross_validate`` (None: 5-fold, stratified for classifiers).
        refit: Refit the best candidate on all the data (True), or not (False); with several
            metrics, the name of the metric to optimize (and refit for). A callable is not
            supported: the study needs one score to optimize.
        return_train_score: Also record scores on the training folds.
        error_score: The score of a fit that fails, or ``"raise"``.
        load_if_exists: Join an existing study of that name; False raises ``AlreadyExists``.
        client_config: Settings of the connection (timeouts, retries, metadata).

    Attributes:
        cv_results_: This fit's candidates, with the keys of ``GridSearchCV.cv_results_``
            (``params``, ``param_<name>``, ``mean_test_score``, ``rank_test_score``,
            ``split<i>_test_score``, ``mean_fit_time``...) and ``trial_number``.
        best_params_: The parameters of the study's best trial (estimator objects).
        best_score_: Its mean cross-validated score.
        best_trial_: The study's best trial (a ``FrozenTrial``).
        best_index_: The row of ``best_trial_`` in ``cv_results_``, or None.
        best_estimator_: The estimator refit with ``best_params_`` (only with ``refit``).
        refit_time_: Seconds spent refitting.
        scorer_: The scorer, or ``{name: scorer}`` with several metrics.
        multimetric_: Whether several metrics were scored.
        n_splits_: The number of cross-validation splits.
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Mapping[str, Any],
        *,
        target: str = "localhost:50051",
        study_name: str,
        namespace: str = "default",
        sampler: Any = None,
        pruner: Any = None,
        n_trials: int = 10,
        scoring: Any = None,
        cv: Any = None,
        refit: bool | str = True,
        return_train_score: bool = False,
        error_score: Any = np.nan,
        load_if_exists: bool = True,
        client_config: ClientConfig | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.target = target
        self.study_name = study_name
        self.namespace = namespace
        self.sampler = sampler
        self.pruner = pruner
        self.n_trials = n_trials
        self.scoring = scoring
        self.cv = cv
        self.refit = refit
        self.return_train_score = return_train_score
        self.error_score = error_score
        self.load_if_exists = load_if_exists
        self.client_config = client_config

    def __sklearn_tags__(self) -> Any:
        from copy import deepcopy

        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = deepcopy(inner.classifier_tags)
        tags.regressor_tags = deepcopy(inner.regressor_tags)
        # Unlike GridSearchCV (whose check_supervised_y_2d scikit-learn marks xfail): a search
        # over a multi-output estimator is multi-output.
        tags.target_tags = deepcopy(inner.target_tags)
        tags.input_tags.pairwise = inner.input_tags.pairwise
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags

    # Validation (in fit, as scikit-learn wants: __init__ only stores).

    def _scorers(self) -> tuple[Any, str, bool]:
        """The scorer(s), the name of the metric to optimize, and whether there are several."""
        if callable(self.refit):
            raise ValueError(
                "refit must be True, False or (with several metrics) a metric name; a callable"
                " cannot be optimized by the study"
            )
        if self.scoring is None or isinstance(self.scoring, str) or callable(self.scoring):
            return check_scoring(self.estimator, scoring=self.scoring), "score", False
        if isinstance(self.scoring, (list, tuple, set)):
            scorers = {name: get_scorer(name) for name in self.scoring}
        elif isinstance(self.scoring, Mapping):
            scorers = {name: get_scorer(s) for name, s in self.scoring.items()}
        else:
            raise ValueError(f"scoring must be a str, a callable, a list or a dict: {self.scoring}")
        if not scorers or not isinstance(self.refit, str) or self.refit not in scorers:
            raise ValueError(
                "with several metrics, refit must name the one the study optimizes, one of"
                f" {sorted(scorers)}; got {self.refit!r}"
            )
        return scorers, self.refit, True

    def _check_params(self) -> None:
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, numbers.Integral):
            raise TypeError(f"n_trials must be an int, got {self.n_trials!r}")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be at least 1, got {self.n_trials}")
        if not (self.error_score == "raise" or isinstance(self.error_score, numbers.Real)):
            raise ValueError(f"error_score must be 'raise' or a number, got {self.error_score!r}")
        if not isinstance(self.study_name, str) or not self.study_name:
            raise ValueError(f"study_name must be a non-empty str, got {self.study_name!r}")

    def _config(self) -> ClientConfig:
        config = self.client_config or ClientConfig()
        if self.namespace == config.namespace or self.namespace == "default":
            return config
        if config.namespace != "default":
            raise ValueError(
                f"namespace {self.namespace!r} and client_config.namespace"
                f" {config.namespace!r} differ; give it once"
            )
        return dataclasses.replace(config, namespace=self.namespace)

    # Fitting.

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> SearchCV:
        """Evaluates ``n_trials`` candidates from the study, then refits the best.

        Args:
            X: Training data.
            y: Targets; None for unsupervised estimators.
            **fit_params: Passed to the estimator's ``fit`` (split along with ``X`` when they
                are per sample); ``groups`` goes to the cross-validation splitter.

        Returns:
            self.

        Raises:
            ValueError: Bad parameters, or every fit of this search failed.
            HposerveError: The service refused or could not be reached.
        """
        self._check_params()
        space = _Space(self.param_distributions)
        scorers, metric, multimetric = self._scorers()
        if y is None and self.__sklearn_tags__().target_tags.required:
            # Before any trial: every fit would fail, and the study would fill with failures.
            raise ValueError(
                f"{type(self.estimator).__name__} requires y to be passed, but the target y is None"
            )
        X, y = indexable(X, y)
        groups = fit_params.pop("groups", None)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        # Split once: every candidate sees the same folds, even with a shuffling splitter.
        splits = list(cv.split(X, y, groups))
        names = list(scorers) if multimetric else ["score"]

        candidates: list[dict[str, Any]] = []
        outs: list[dict[str, np.ndarray]] = []
        numbers_: list[int] = []
        failures: list[str] = []  # why each candidate whose fits all failed failed
        with Client(self.target, config=self._config()) as client:
            study = client.create_study(
                name=self.study_name,
                direction="maximize",
                sampler=self.sampler,
                pruner=self.pruner,
                load_if_exists=self.load_if_exists,
            )
            for _ in range(self.n_trials):
                trial = study.ask(space.distributions)
                params = space.decode(trial.params)
                try:
                    out, failure = self._evaluate(params, X, y, splits, scorers, fit_params)
                except BaseException:
                    try:
                        study.tell(trial, state="failed")
                    except HposerveError:  # keep the estimator's error, the real cause
                        _logger.exception("could not tell trial %d failed", trial.number)
                    raise
                score = float(np.mean(out[f"test_{metric}"]))
                if math.isnan(score):
                    study.tell(trial, state="failed")
                else:
                    study.tell(trial, score)
                candidates.append(params)
                outs.append(out)
                numbers_.append(trial.number)
                if failure is not None:
                    failures.append(failure)
            if len(failures) == self.n_trials:
                # As GridSearchCV: a misconfigured model is an error, with the fits' errors.
                raise ValueError(
                    f"\nAll the {self.n_trials * len(splits)} fits failed.\nIt is very likely"
                    " that your model is misconfigured.\nYou can try to debug the error by"
                    " setting error_score='raise'.\n\nBelow are more details about the"
                    " failures:\n" + "".join(dict.fromkeys(failures))
                )
            best = self._best_trial(study, space)
            if best is None:
                # Every candidate scored NaN, here and elsewhere. GridSearchCV then takes the
                # first as best, and its refit raises the estimator's own error: so do we.
                best = study.get_trial(numbers_[0])

        self.n_splits_ = len(splits)
        self.multimetric_ = multimetric
        self.scorer_ = scorers
        self.cv_results_ = self._results(candidates, outs, numbers_, names, len(splits))
        self.best_trial_ = best
        self.best_params_ = space.decode(best.params)
        self.best_score_ = best.value if best.value is not None else math.nan
        self.best_index_ = numbers_.index(best.number) if best.number in numbers_ else None
        if self.refit:
            estimator = clone(self.estimator).set_params(**clone(self.best_params_, safe=False))
            started = time.perf_counter()
            estimator.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - started
            self.best_estimator_ = estimator
        return self

    def _evaluate(
        self,
        params: dict[str, Any],
        X: Any,
        y: Any,
        splits: list[tuple[np.ndarray, np.ndarray]],
        scorers: Any,
        fit_params: dict[str, Any],
    ) -> tuple[dict[str, np.ndarray], str | None]:
        """Cross-validates one candidate; also returns, if all its fits failed, their errors."""
        estimator = clone(self.estimator).set_params(**clone(params, safe=False))
        try:
            out = cross_validate(
                estimator,
                X,
                y,
                scoring=scorers,
                cv=splits,
                params=fit_params or None,
                return_train_score=self.return_train_score,
                error_score=self.error_score,
            )
            return out, None
        except ValueError as error:
            # cross_validate raises when all fits of its (here: one) candidate fail; in a
            # search that is one bad candidate, scored error_score, as GridSearchCV does.
            if self.error_score == "raise" or "fits failed" not in str(error):
                raise
            warnings.warn(str(error), FitFailedWarning, stacklevel=3)
            failure = str(error).split(_DETAILS, 1)[-1]
        n = len(splits)
        names = list(scorers) if isinstance(scorers, Mapping) else ["score"]
        failed = {"fit_time": np.zeros(n), "score_time": np.zeros(n)}
        for name in names:
            failed[f"test_{name}"] = np.full(n, float(self.error_score))
            if self.return_train_score:
                failed[f"train_{name}"] = np.full(n, float(self.error_score))
        return failed, failure

    @staticmethod
    def _best_trial(study: Study, space: _Space) -> FrozenTrial | None:
        """The best complete trial of the study over exactly this space (first of ties)."""
        wanted = set(space.distributions)
        complete = [
            t
            for t in study.get_trials(states=["complete"])
            if set(t.params) == wanted and t.value is not None
        ]
        if not complete:
            return None
        return max(complete, key=lambda t: (t.value, -t.number))

    def _results(
        self,
        candidates: list[dict[str, Any]],
        outs: list[dict[str, np.ndarray]],
        numbers_: list[int],
        names: list[str],
        n_splits: int,
    ) -> dict[str, Any]:
        """``cv_results_`` in GridSearchCV's layout."""
        results: dict[str, Any] = {}

        def store(key: str, rows: np.ndarray, *, splits: bool = False, rank: bool = False) -> None:
            if splits:
                for i in range(n_splits):
                    results[f"split{i}_{key}"] = rows[:, i]
            means = rows.mean(axis=1)
            if key.startswith(("train_", "test_")) and not np.all(np.isfinite(means)):
                warnings.warn(
                    f"One or more of the {key.split('_')[0]} scores are non-finite: {means}",
                    UserWarning,
                    stacklevel=4,
                )
            results[f"mean_{key}"] = means
            results[f"std_{key}"] = rows.std(axis=1)
            if rank:
                # Failed candidates (NaN) tie with the worst, as in scikit-learn.
                if np.isnan(means).all():
                    results[f"rank_{key}"] = np.ones(len(means), dtype=np.int32)
                else:
                    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
                    results[f"rank_{key}"] = rankdata(-filled, method="min").astype(np.int32)

        def rows(key: str) -> np.ndarray:
            return np.array([out[key] for out in outs], dtype=np.float64).reshape(-1, n_splits)

        store("fit_time", rows("fit_time"))
        store("score_time", rows("score_time"))
        for name in dict.fromkeys(n for params in candidates for n in params):
            values = [params[name] for params in candidates]
            try:
                inferred = np.array(values)
                dtype = (
                    inferred.dtype if inferred.dtype.kind != "U" and inferred.ndim == 1 else None
                )
            except ValueError:
                dtype = None
            column = MaskedArray(
                np.empty(len(values), dtype=dtype if dtype is not None else object), mask=True
            )
            for i, value in enumerate(values):
                column[i] = value
            results[f"param_{name}"] = column
        results["params"] = candidates
        for name in names:
            store(f"test_{name}", rows(f"test_{name}"), splits=True, rank=True)
            if self.return_train_score:
                store(f"train_{name}", rows(f"train_{name}"), splits=True)
        results["trial_number"] = np.array(numbers_, dtype=np.int64)
        return results

    # Delegation to best_estimator_.

    def score(self, X: Any, y: Any = None) -> float:
        """The score of ``best_estimator_`` on ``X``, ``y`` with the optimized metric."""
        _check_refit(self, "score")
        check_is_fitted(self)
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        return scorer(self.best_estimator_, X, y)

    @available_if(_estimator_has("predict"))
    def predict(self, X: Any) -> Any:
        """``best_estimator_.predict(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_proba(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_log_proba(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """``best_estimator_.decision_function(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)

    @available_if(_estimator_has("score_samples"))
    def score_samples(self, X: Any) -> Any:
        """``best_estimator_.score_samples(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.score_samples(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        """``best_estimator_.transform(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.transform(X)

    @available_if(_estimator_has("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        """``best_estimator_.inverse_transform(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.inverse_transform(X)

    @property
    def classes_(self) -> Any:
        """The class labels of ``best_estimator_`` (a classifier, with ``refit``)."""
        _estimator_has("classes_")(self)
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self) -> int:
        """The number of features ``best_estimator_`` was fit on."""
        try:
            check_is_fitted(self)
        except NotFittedError as error:
            raise AttributeError(
                f"{type(self).__name__} object has no n_features_in_ attribute."
            ) from error
        return self.best_estimator_.n_features_in_

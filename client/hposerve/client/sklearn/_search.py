"""The search estimator: candidates asked from a study, cross-validated, told back."""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring, get_scorer
from sklearn.model_selection import check_cv
from sklearn.utils import indexable

from .._client import Client
from .._config import ClientConfig
from .._errors import HposerveError
from .._study import Study
from ._delegation import BestEstimatorDelegation
from ._results import all_failed_message, cv_results, score_candidate
from ._space import Space

_logger = logging.getLogger("hposerve.client")

# The data every candidate is cross-validated on: X, y and the splits (made once).
_Data = tuple[Any, Any, list[tuple[np.ndarray, np.ndarray]]]


@dataclass
class _Evaluated:
    """The candidates one fit evaluated, in order."""

    params: list[dict[str, Any]] = field(default_factory=list)
    outs: list[dict[str, np.ndarray]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)  # their trial numbers
    failures: list[str] = field(default_factory=list)  # why each whose fits all failed failed


class SearchCV(BestEstimatorDelegation, MetaEstimatorMixin, BaseEstimator):
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
        space = Space(self.param_distributions)
        scorers, metric, multimetric = self._scorers()
        X, y, splits = self._data(X, y, fit_params)
        with Client(self.target, config=self._config()) as client:
            study = client.create_study(
                name=self.study_name,
                direction="maximize",
                sampler=self.sampler,
                pruner=self.pruner,
                load_if_exists=self.load_if_exists,
            )
            done = self._evaluate(study, space, (X, y, splits), scorers, metric, fit_params)
            best = space.best_trial(study)
            if best is None:
                # Every candidate scored NaN, here and elsewhere. GridSearchCV then takes the
                # first as best, and its refit raises the estimator's own error: so do we.
                best = study.get_trial(done.numbers[0])
        self.n_splits_ = len(splits)
        self.multimetric_ = multimetric
        self.scorer_ = scorers
        self.cv_results_ = cv_results(
            done.params,
            done.outs,
            done.numbers,
            list(scorers) if multimetric else ["score"],
            len(splits),
            return_train_score=self.return_train_score,
        )
        self.best_trial_ = best
        self.best_params_ = space.decode(best.params)
        self.best_score_ = best.value if best.value is not None else math.nan
        self.best_index_ = done.numbers.index(best.number) if best.number in done.numbers else None
        if self.refit:
            self._refit_best(X, y, fit_params)
        return self

    def _data(self, X: Any, y: Any, fit_params: dict[str, Any]) -> _Data:
        """X and y made indexable, and the splits; takes ``groups`` out of ``fit_params``."""
        if y is None and self.__sklearn_tags__().target_tags.required:
            # Before any trial: every fit would fail, and the study would fill with failures.
            raise ValueError(
                f"{type(self.estimator).__name__} requires y to be passed, but the target y is None"
            )
        X, y = indexable(X, y)
        groups = fit_params.pop("groups", None)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        # Split once: every candidate sees the same folds, even with a shuffling splitter.
        return X, y, list(cv.split(X, y, groups))

    def _refit_best(self, X: Any, y: Any, fit_params: dict[str, Any]) -> None:
        estimator = clone(self.estimator).set_params(**clone(self.best_params_, safe=False))
        started = time.perf_counter()
        estimator.fit(X, y, **fit_params)
        self.refit_time_ = time.perf_counter() - started
        self.best_estimator_ = estimator

    def _evaluate(
        self,
        study: Study,
        space: Space,
        data: _Data,
        scorers: Any,
        metric: str,
        fit_params: dict[str, Any],
    ) -> _Evaluated:
        """Asks ``n_trials`` candidates, cross-validates each and tells its mean test score.

        Raises:
            ValueError: Every fit of every candidate failed (as GridSearchCV raises).
        """
        done = _Evaluated()
        for _ in range(self.n_trials):
            trial = study.ask(space.distributions)
            params = space.decode(trial.params)
            try:
                out, failure = score_candidate(
                    self.estimator,
                    params,
                    data,
                    scorers,
                    fit_params,
                    return_train_score=self.return_train_score,
                    error_score=self.error_score,
                )
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
            done.params.append(params)
            done.outs.append(out)
            done.numbers.append(trial.number)
            if failure is not None:
                done.failures.append(failure)
        if len(done.failures) == self.n_trials:
            # As GridSearchCV: a misconfigured model is an error, with the fits' errors.
            raise ValueError(all_failed_message(self.n_trials * len(data[2]), done.failures))
        return done

"""What a fitted search delegates to ``best_estimator_``: predict, transform, score..."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.exceptions import NotFittedError
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted


def check_refit(search: Any, attr: str) -> None:
    """Raises the AttributeError GridSearchCV raises for ``attr`` without ``refit``."""
    if not search.refit:
        raise AttributeError(
            f"This {type(search).__name__} instance was initialized with `refit=False`. {attr}"
            " is available only after refitting on the best parameters. You can refit an"
            " estimator manually using the `best_params_` attribute"
        )


def estimator_has(attr: str) -> Callable[[Any], bool]:
    """Delegate ``attr`` only with ``refit``, and only if the (best) estimator has it."""

    def check(self: Any) -> bool:
        check_refit(self, attr)
        getattr(self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator, attr)
        return True

    return check


class BestEstimatorDelegation:
    """The methods of a fitted search that call its ``best_estimator_``, as GridSearchCV's do.

    Mixed into the search, which sets ``refit``, ``estimator`` and, when fitted,
    ``best_estimator_``, ``scorer_`` and ``multimetric_``.
    """

    refit: Any
    best_estimator_: Any
    scorer_: Any
    multimetric_: bool

    def score(self, X: Any, y: Any = None) -> float:
        """The score of ``best_estimator_`` on ``X``, ``y`` with the optimized metric."""
        check_refit(self, "score")
        check_is_fitted(self)
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        return scorer(self.best_estimator_, X, y)

    @available_if(estimator_has("predict"))
    def predict(self, X: Any) -> Any:
        """``best_estimator_.predict(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    @available_if(estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_proba(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    @available_if(estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """``best_estimator_.predict_log_proba(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_log_proba(X)

    @available_if(estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """``best_estimator_.decision_function(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)

    @available_if(estimator_has("score_samples"))
    def score_samples(self, X: Any) -> Any:
        """``best_estimator_.score_samples(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.score_samples(X)

    @available_if(estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        """``best_estimator_.transform(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.transform(X)

    @available_if(estimator_has("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        """``best_estimator_.inverse_transform(X)``."""
        check_is_fitted(self)
        return self.best_estimator_.inverse_transform(X)

    @property
    def classes_(self) -> Any:
        """The class labels of ``best_estimator_`` (a classifier, with ``refit``)."""
        estimator_has("classes_")(self)
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

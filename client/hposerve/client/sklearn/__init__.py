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

from ._search import SearchCV

__all__ = ["SearchCV"]

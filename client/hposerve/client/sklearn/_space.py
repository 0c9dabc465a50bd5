"""``param_distributions`` as the service's fixed space, and the way back to the objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._distributions import CategoricalDistribution, Distribution, _plain
from .._errors import InvalidArgument
from .._refine import _as_distribution, _key
from .._study import Study
from .._trial import FrozenTrial


def _encode(choice: Any) -> Any:
    # The service stores None, bool, int, float and str; any other choice (a tuple of layer
    # sizes, a kernel object) travels as its repr and is mapped back to the object here.
    plain = _plain(choice)
    if plain is None or isinstance(plain, (bool, int, float, str)):
        return plain
    return repr(choice)


class Space:
    """``param_distributions`` as the service's fixed space, and the way back to the objects.

    Raises:
        TypeError: Not a dict of distributions or lists of values.
        ValueError: A list of values that is empty or not distinct.
    """

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
                self._add_choices(name, list(spec))
            elif type(spec).__name__ == "CategoricalDistribution":  # ours or Optuna's
                self._add_choices(name, list(spec.choices))
            else:
                try:
                    self.distributions[name] = _as_distribution(spec)
                except InvalidArgument:
                    raise TypeError(
                        f"parameter {name!r}: {spec!r} is not a distribution; use a list of"
                        " values, or FloatDistribution, IntDistribution or"
                        " CategoricalDistribution (hposerve's or Optuna's)"
                    ) from None

    def _add_choices(self, name: str, originals: list[Any]) -> None:
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

    def best_trial(self, study: Study) -> FrozenTrial | None:
        """The best complete trial of ``study`` over exactly this space (first of ties)."""
        wanted = set(self.distributions)
        complete = [
            t
            for t in study.get_trials(states=["complete"])
            if set(t.params) == wanted and t.value is not None
        ]
        if not complete:
            return None
        return max(complete, key=lambda t: (t.value, -t.number))

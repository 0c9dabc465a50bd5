"""Grids for grid search, derived from a search space and a trial budget.

A comparison's grid arm needs a grid that is a real grid of the comparison's search space and
that its budget can evaluate in full. :func:`derive_grid` builds one:

* a categorical parameter contributes every choice;
* a numeric parameter contributes ``k`` points, the centres of ``k`` equal cells of its range:
  log-spaced for a log distribution, evenly spaced otherwise (one point is the middle of the
  range, two are at a quarter and three quarters). Centres rather than both ends: every point
  of the range is then within half a cell of the grid, and a coarse grid does not spend its
  budget on the bounds. An integer or stepped parameter takes the values nearest the centres,
  and all its values when it has at most ``k``;
* ``k`` is chosen per numeric axis, as large as the budget allows: the axes grow one point at a
  time while the whole grid stays within the budget, the axis with the fewest points first
  (ties in the space's order) and, when growing it would exceed the budget, the next one that
  fits. A 2-d continuous space with a budget of 100 gets 10 × 10 points; a 6-d one gets
  3 × 2 × 2 × 2 × 2 × 2 = 96.

With ``at_least=True`` the axes grow instead until the grid has at least ``budget`` points: a
grid of which a shuffled run evaluates a random subset, every trial a distinct point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hposerve.server.domain._config import MAX_BRUTEFORCE_VALUES
from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.domain._values import GridValue

__all__ = [
    "GridValue",
    "axis_size",
    "check_enumerable",
    "axis_values",
    "derive_grid",
    "describe",
    "grid_size",
]


# Derived float points are rounded to this many significant digits, so that a grid reads as
# 0.001 rather than 0.0010000000000000002 (unless rounding would merge two points).
_SIGNIFICANT_DIGITS = 10


def axis_size(distribution: BaseDistribution) -> int | None:
    """The number of distinct values of a distribution; None for a continuous range."""
    if isinstance(distribution, CategoricalDistribution):
        return len(distribution.choices)
    if isinstance(distribution, IntDistribution):
        return (distribution.high - distribution.low) // distribution.step + 1
    if isinstance(distribution, FloatDistribution):
        if distribution.step is not None:
            # Optuna has already moved ``high`` onto the step grid; the epsilon absorbs float
            # error in the division.
            span = (distribution.high - distribution.low) / distribution.step
            return math.floor(span + 1e-9) + 1
        return 1 if distribution.low == distribution.high else None
    raise TypeError(f"unsupported distribution {distribution!r}")


def check_enumerable(space: Mapping[str, BaseDistribution], field: str) -> None:
    """Refuses a parameter with more values than a brute-force study may enumerate.

    Raises:
        InvalidArgument: a discrete parameter with more than MAX_BRUTEFORCE_VALUES values (a
            continuous one is the sampler's own error).
    """
    for name, distribution in space.items():
        size = axis_size(distribution)
        if size is not None and size > MAX_BRUTEFORCE_VALUES:
            raise InvalidArgument(
                f"{field}: parameter {name!r} has {size} values, more than a brute-force study "
                f"enumerates (limit MAX_BRUTEFORCE_VALUES = {MAX_BRUTEFORCE_VALUES}); use "
                "another sampler or a larger step",
                field=field,
            )


def axis_values(distribution: BaseDistribution, points: int) -> list[GridValue]:
    """The grid values of one axis: ``points`` of them (all choices of a categorical).

    Args:
        distribution: The parameter's distribution.
        points: How many values, at least 1; a discrete axis gives at most all its values.

    Returns:
        Distinct values inside the distribution, ascending for numeric axes.
    """
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points}")
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    size = axis_size(distribution)
    if isinstance(distribution, IntDistribution):
        return _int_values(distribution, min(points, size or 1))
    assert isinstance(distribution, FloatDistribution)
    if size is not None:  # stepped (or a single value)
        step = distribution.step or 0.0
        indices = _spread_indices(size, min(points, size))
        raw = [distribution.low + i * step for i in indices]
        return _tidy(raw, distribution.low, distribution.high)
    return _float_values(distribution.low, distribution.high, distribution.log, points)


def _centres(k: int) -> list[float]:
    """The centres of ``k`` equal cells of [0, 1]."""
    return [(i + 0.5) / k for i in range(k)]


def _spread_indices(n: int, k: int) -> list[int]:
    """The ``k`` indices of ``range(n)`` nearest the centres of ``k`` equal cells (k <= n).

    Index ``j`` stands for the cell [j - 0.5, j + 0.5]; the centres are ``n / k >= 1`` apart,
    so rounding them keeps them distinct, and ``k == n`` gives every index.
    """
    return [math.floor(c * n) for c in _centres(k)]


def _int_values(d: IntDistribution, k: int) -> list[GridValue]:
    n = (d.high - d.low) // d.step + 1
    if k >= n:
        return list(range(d.low, d.high + 1, d.step))
    if not d.log:  # Optuna allows log only with step 1
        return [d.low + i * d.step for i in _spread_indices(n, k)]
    ratio = d.high / d.low
    values = [min(max(round(d.low * ratio**c), d.low), d.high) for c in _centres(k)]
    # Rounding can merge neighbours at the low end: push them apart, then back under high.
    for i in range(1, k):
        values[i] = max(values[i], values[i - 1] + 1)
    values[-1] = min(values[-1], d.high)
    for i in range(k - 2, -1, -1):
        values[i] = min(values[i], values[i + 1] - 1)
    return list(values)


def _float_values(low: float, high: float, log: bool, k: int) -> list[GridValue]:
    if log:
        raw = [math.exp(math.log(low) + c * (math.log(high) - math.log(low))) for c in _centres(k)]
    else:
        raw = [low + c * (high - low) for c in _centres(k)]
    return _tidy(raw, low, high)


def _tidy(raw: list[float], low: float, high: float) -> list[GridValue]:
    """Rounds away float noise, inside [low, high], unless that would merge two points."""
    rounded = [min(max(float(f"{v:.{_SIGNIFICANT_DIGITS}g}"), low), high) for v in raw]
    return list(rounded if len(set(rounded)) == len(raw) else raw)


def grid_size(grid: Mapping[str, Sequence[GridValue]]) -> int:
    """The number of points of a grid: the product of its axes' lengths."""
    return math.prod(len(values) for values in grid.values())


def describe(grid: Mapping[str, Sequence[GridValue]]) -> str:
    """E.g. ``"96 points (x: 3 × y: 2 × z: 16)"``, for messages."""
    axes = " × ".join(f"{name}: {len(values)}" for name, values in grid.items())
    return f"{grid_size(grid)} points ({axes})"


def derive_grid(
    space: Mapping[str, BaseDistribution], budget: int, *, at_least: bool = False
) -> dict[str, list[GridValue]]:
    """Derives a grid of ``space`` for a budget of ``budget`` trials.

    Args:
        space: The search space, in order; the grid's axes keep it.
        budget: The number of trials the grid is for, at least 1.
        at_least: Grow the grid to at least ``budget`` points (for a shuffled subset) rather
            than to at most ``budget``.

    Returns:
        ``{name: values}`` for every parameter of ``space``.

    Raises:
        ValueError: An empty space or a budget below 1; without ``at_least``, categorical
            parameters whose choices alone make more than ``budget`` points (the message
            names the sizes).
    """
    if not space:
        raise ValueError("a grid needs at least one parameter")
    if budget < 1:
        raise ValueError(f"the budget must be at least 1 trial, got {budget}")
    categorical = {
        name: len(d.choices) for name, d in space.items() if isinstance(d, CategoricalDistribution)
    }
    fixed = math.prod(categorical.values())
    if fixed > budget and not at_least:
        sizes = " × ".join(f"{name}: {n}" for name, n in categorical.items())
        raise ValueError(
            f"the categorical parameters alone make {fixed} grid points ({sizes}), more than "
            f"the budget of {budget} trials"
        )
    numeric = [name for name in space if name not in categorical]
    caps = {name: axis_size(space[name]) for name in numeric}
    points = dict.fromkeys(numeric, 1)

    def size_with(name: str) -> int:
        return fixed * math.prod(points[n] + (n == name) for n in numeric)

    order = {name: i for i, name in enumerate(numeric)}
    while True:
        growable = sorted(
            (n for n in numeric if caps[n] is None or points[n] < caps[n]),  # type: ignore[operator]
            key=lambda n: (points[n], order[n]),
        )
        if at_least:
            if not growable or fixed * math.prod(points.values()) >= budget:
                break
            points[growable[0]] += 1
            continue
        fitting = next((n for n in growable if size_with(n) <= budget), None)
        if fitting is None:
            break
        points[fitting] += 1
    return {name: axis_values(d, points.get(name, 1)) for name, d in space.items()}

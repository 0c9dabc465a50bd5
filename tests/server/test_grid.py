"""Grids derived from a search space and a budget (``_grid``), without a server."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hposerve.server.domain._grid import axis_size, axis_values, derive_grid, describe, grid_size


def sizes(grid):
    return {name: len(values) for name, values in grid.items()}


def test_two_continuous_axes_fill_the_budget():
    space = {"x": FloatDistribution(-5, 10), "y": FloatDistribution(0, 15)}
    grid = derive_grid(space, 100)
    assert sizes(grid) == {"x": 10, "y": 10}
    # The centres of 10 equal cells: every point of the range within half a cell of the grid.
    assert grid["x"] == [-4.25, -2.75, -1.25, 0.25, 1.75, 3.25, 4.75, 6.25, 7.75, 9.25]
    assert sizes(derive_grid(space, 50)) == {"x": 7, "y": 7}  # 8 x 7 = 56 would not fit


def test_axes_grow_fewest_first_then_whatever_still_fits():
    space = {f"x{i}": FloatDistribution(0, 1) for i in range(6)}
    grid = derive_grid(space, 100)
    assert grid_size(grid) == 96  # 3 x 2^5; every axis at 3 would be 729
    assert sorted(sizes(grid).values()) == [2, 2, 2, 2, 2, 3]
    assert sizes(derive_grid(space, 12)) == {"x0": 3, "x1": 2, "x2": 2, "x3": 1, "x4": 1, "x5": 1}


def test_log_parameters_get_log_spaced_points():
    grid = derive_grid({"lr": FloatDistribution(1e-6, 1, log=True)}, 3)
    assert grid["lr"] == [1e-5, 1e-3, 1e-1]  # rounded: no 0.0010000000000000002
    assert axis_values(IntDistribution(1, 1000, log=True), 3) == [3, 32, 316]


def test_one_point_is_the_middle():
    assert axis_values(FloatDistribution(0, 10), 1) == [5.0]
    assert axis_values(FloatDistribution(1e-4, 1, log=True), 1) == pytest.approx([1e-2])
    assert axis_values(IntDistribution(0, 10), 1) == [5]
    assert axis_values(FloatDistribution(0, 1), 2) == [0.25, 0.75]


def test_categoricals_and_small_int_ranges_keep_every_value():
    space = {
        "opt": CategoricalDistribution(["adam", "sgd", "rmsprop"]),
        "layers": IntDistribution(1, 3),
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    grid = derive_grid(space, 60)
    assert grid["opt"] == ["adam", "sgd", "rmsprop"]
    assert grid["layers"] == [1, 2, 3]
    assert len(grid["lr"]) == 6  # 3 x 3 x 6 = 54; 7 would make 63
    assert list(grid) == ["opt", "layers", "lr"]  # the space's order


def test_discrete_axes_give_distinct_values_inside_the_range():
    for d in (
        IntDistribution(1, 16, log=True),
        IntDistribution(0, 100, step=5),
        FloatDistribution(0, 0.5, step=0.1),
        IntDistribution(2, 9),
    ):
        n = axis_size(d)
        for k in range(1, n + 3):
            values = axis_values(d, k)
            assert len(values) == min(k, n) == len(set(values))
            assert values == sorted(values)
            for v in values:
                assert d._contains(d.to_internal_repr(v)), (d, k, v)
    assert axis_values(FloatDistribution(0, 0.5, step=0.1), 6) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert axis_values(FloatDistribution(0, 0.5, step=0.1), 3) == [0.1, 0.3, 0.5]
    assert axis_values(IntDistribution(0, 100, step=10), 2) == [20, 80]
    # Rounding merges log-spaced neighbours at the low end; they are pushed apart.
    assert axis_values(IntDistribution(1, 16, log=True), 8) == [1, 2, 3, 4, 5, 7, 10, 13]


def test_every_axis_capped_gives_the_whole_discrete_space():
    space = {"a": IntDistribution(0, 2), "b": CategoricalDistribution([True, False])}
    grid = derive_grid(space, 1000)
    assert grid == {"a": [0, 1, 2], "b": [True, False]}


def test_categoricals_over_the_budget_are_refused_with_their_sizes():
    space = {
        "a": CategoricalDistribution(list("abcde")),
        "b": CategoricalDistribution(list("wxyz")),
        "x": FloatDistribution(0, 1),
    }
    with pytest.raises(ValueError, match=r"20 grid points \(a: 5 × b: 4\).*budget of 12"):
        derive_grid(space, 12)
    assert sizes(derive_grid(space, 20)) == {"a": 5, "b": 4, "x": 1}


def test_at_least_grows_past_the_budget_for_a_shuffled_subset():
    space = {f"x{i}": FloatDistribution(0, 1) for i in range(6)}
    grid = derive_grid(space, 100, at_least=True)
    assert grid_size(grid) >= 100
    assert max(sizes(grid).values()) - min(sizes(grid).values()) <= 1
    # Categoricals alone over the budget: accepted, the numeric axes at one point.
    cats = {"a": CategoricalDistribution(list("abcde")), "x": FloatDistribution(0, 1)}
    assert sizes(derive_grid(cats, 3, at_least=True)) == {"a": 5, "x": 1}


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one parameter"):
        derive_grid({}, 10)
    with pytest.raises(ValueError, match="at least 1"):
        derive_grid({"x": FloatDistribution(0, 1)}, 0)
    with pytest.raises(ValueError):
        axis_values(FloatDistribution(0, 1), 0)


def test_describe():
    assert describe({"x": [1, 2, 3], "y": ["a", "b"]}) == "6 points (x: 3 × y: 2)"


def test_a_derived_grid_runs_in_optuna_exactly_once_per_point():
    space = {
        "x": FloatDistribution(-1, 1),
        "n": IntDistribution(1, 64, log=True),
        "c": CategoricalDistribution(["p", "q"]),
    }
    grid = derive_grid(space, 30)
    n = grid_size(grid)
    assert 20 < n <= 30
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=3))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", -1, 1)
        trial.suggest_int("n", 1, 64, log=True)
        trial.suggest_categorical("c", ["p", "q"])
        return 0.0

    study.optimize(objective, n_trials=n + 5)  # the sampler stops the loop when it is done
    seen = {tuple(t.params[k] for k in space) for t in study.trials}
    assert len(study.trials) == len(seen) == n == math.prod(len(v) for v in grid.values())

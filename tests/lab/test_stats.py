"""Every statistic of the suite against a case computed by hand (the arithmetic is in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hposerve.lab._aggregate_plots import cliques
from hposerve.lab._stats import (
    average_ranks,
    ecdf,
    evaluations_to_target,
    friedman,
    hypervolume_2d,
    mean_confidence_interval,
    nemenyi_cd,
    normalized_scores,
    stratified_bootstrap_ci,
    win_rates,
)
from hposerve.lab._tasks_multi import get_multi_task

nan = math.nan


def test_ranks_average_ties() -> None:
    ranks = average_ranks(np.array([[1.0, 2.0, 2.0, 3.0], [3.0, 1.0, 2.0, 2.0]]))
    assert ranks.tolist() == [[1.0, 2.5, 2.5, 4.0], [4.0, 1.0, 2.5, 2.5]]
    assert ranks.mean(axis=0).tolist() == [2.5, 1.75, 2.5, 3.25]


def test_friedman_three_arms() -> None:
    # Ranks per block (1,2,3) (1,3,2) (1,2,3) (2,1,3): sums R = 5, 8, 11; n = 4, k = 3.
    # chi2 = 12 / (n k (k+1)) sum R^2 - 3 n (k+1) = 12/48 * 210 - 48 = 4.5.
    # With 2 degrees of freedom the chi-square survival function is exp(-x/2).
    losses = np.array([[1, 2, 3], [1, 3, 2], [1, 2, 3], [2, 1, 3]], dtype=float)
    result = friedman(losses)
    assert result is not None and (result.k, result.n) == (3, 4)
    assert result.statistic == pytest.approx(4.5)
    assert result.p_value == pytest.approx(math.exp(-2.25))


def test_friedman_with_ties_is_corrected() -> None:
    # Ranks (1.5,1.5,3) (1,2,3) (1,2,3): R = 3.5, 5.5, 9; uncorrected 12/36 * 123.5 - 36 = 31/6.
    # One tie of size 2: sum(t^3 - t) = 6; correction 1 - 6 / (n k (k^2-1)) = 1 - 6/72 = 11/12.
    result = friedman(np.array([[1, 1, 2], [1, 2, 3], [1, 2, 3]], dtype=float))
    assert result is not None
    assert result.statistic == pytest.approx(31 / 6 * 12 / 11)
    assert result.p_value == pytest.approx(math.exp(-(31 / 6 * 12 / 11) / 2))


def test_friedman_two_arms_by_hand() -> None:
    # R = 5, 7 over n = 4: 12/24 * (25 + 49) - 36 = 1; p = P(chi2_1 > 1) = 2 (1 - Phi(1)).
    result = friedman(np.array([[1, 2], [1, 2], [1, 2], [2, 1]], dtype=float))
    assert result is not None
    assert result.statistic == pytest.approx(1.0)
    assert result.p_value == pytest.approx(0.31731050786291415)
    # With a tied block: R = 3.5, 5.5: 12/18 * 42.5 - 27 = 4/3; correction 1 - 6/18 -> 2.
    tied = friedman(np.array([[1, 1], [1, 2], [1, 2]], dtype=float))
    assert tied is not None and tied.statistic == pytest.approx(2.0)
    assert tied.p_value == pytest.approx(0.15729920705028513)


def test_friedman_undefined_cases() -> None:
    assert friedman(np.array([[1.0, 1.0], [2.0, 2.0]])) is None  # every block ties
    assert friedman(np.array([[1.0, 2.0, 3.0]])) is None  # one block
    assert friedman(np.array([[1.0], [2.0]])) is None  # one arm


def test_nemenyi_critical_difference() -> None:
    # Demsar (2006), Table 5(a): q_0.05 = 2.569 for k = 4, 1.960 for k = 2, 2.343 for k = 3.
    # CD = q sqrt(k (k+1) / (6 N)): k = 4, N = 4 -> 2.569 sqrt(20/24).
    assert nemenyi_cd(4, 4) == pytest.approx(2.569 * math.sqrt(20 / 24), rel=1e-3)
    assert nemenyi_cd(2, 10) == pytest.approx(1.960 * math.sqrt(6 / 60), rel=1e-3)
    assert nemenyi_cd(3, 20) == pytest.approx(2.343 * math.sqrt(12 / 120), rel=1e-3)
    with pytest.raises(ValueError):
        nemenyi_cd(1, 5)


def test_cliques_of_a_cd_diagram() -> None:
    # Ranks 1.0, 1.5, 3.0, 3.2 with CD 1: {0, 1} and {2, 3} are not significantly different.
    assert cliques([1.0, 1.5, 3.0, 3.2], 1.0) == [(0, 1), (2, 3)]
    assert cliques([1.0, 2.0, 3.0], 5.0) == [(0, 2)]
    assert cliques([1.0, 3.0], 1.0) == []


def test_ecdf_steps() -> None:
    # Runtimes 1, 3, 3 and one never reached: 0 by 0 evaluations, 1/4 by 1 and 2, 3/4 after.
    assert ecdf([1, 3, None, 3], [0, 1, 2, 3, 4]).tolist() == [0.0, 0.25, 0.25, 0.75, 0.75]
    assert np.isnan(ecdf([], [1, 2])).all()


def test_evaluations_to_target() -> None:
    curve = np.array([nan, 5.0, 3.0, 3.0, 1.0])
    assert evaluations_to_target(curve, 3.0) == 3
    assert evaluations_to_target(curve, 5.0) == 2
    assert evaluations_to_target(curve, 0.5) is None


def test_normalized_scores() -> None:
    # Random's gaps at two budgets: medians 4 and 2.
    random = np.array([[2.0, 1.0], [4.0, 2.0], [6.0, 3.0]])
    scores = normalized_scores(random, random)
    assert scores.tolist() == [[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]]
    assert scores.mean(axis=0).tolist() == [1.0, 1.0]  # random scores 1
    assert normalized_scores(np.zeros((1, 2)), random).tolist() == [[0.0, 0.0]]  # the optimum
    # The median of the seeds that have a value; no scale where random found the optimum.
    partial = np.array([[2.0, 0.0], [nan, 0.0], [6.0, 0.0]])
    out = normalized_scores(np.array([[2.0, 1.0]]), partial)
    assert out[0, 0] == 0.5 and np.isnan(out[0, 1])


def test_win_rates_with_ties() -> None:
    # A vs B: win, tie, loss = 1.5 / 3; A vs C: 1 / 3; B vs C: win, loss, tie = 1.5 / 3.
    losses = np.array([[1, 2, 3], [2, 2, 1], [3, 1, 1]], dtype=float)
    w = win_rates(losses)
    assert w[0, 1] == pytest.approx(0.5) and w[0, 2] == pytest.approx(1 / 3)
    assert w[1, 2] == pytest.approx(0.5) and w[2, 0] == pytest.approx(2 / 3)
    assert np.isnan(np.diag(w)).all()
    off = ~np.eye(3, dtype=bool)
    assert np.allclose((w + w.T)[off], 1.0)
    # A block missing one arm's value is left out of that arm's pairs only.
    w = win_rates(np.array([[1.0, 2.0, nan], [1.0, 2.0, 0.0]]))
    assert w[0, 1] == 1.0 and w[0, 2] == 0.0 and w[2, 1] == 1.0


def test_t_confidence_interval() -> None:
    # [1, 2, 3]: mean 2, sd 1, t_{0.975, 2} = 4.302653; half width 4.302653 / sqrt(3).
    mean, low, high = mean_confidence_interval([1.0, 2.0, 3.0, nan])
    assert mean == 2.0
    assert (high - mean) == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert mean - low == pytest.approx(high - mean)
    assert mean_confidence_interval([5.0]) == (5.0, 5.0, 5.0)
    assert all(math.isnan(x) for x in mean_confidence_interval([]))


def test_stratified_bootstrap() -> None:
    # Two tasks, seeds [0, 1] each: each task's resampled mean is 0, 1/2 or 1 (p = 1/4, 1/2,
    # 1/4); their average is 0 with probability 1/16 > 2.5%, 1 likewise: the interval is [0, 1].
    assert stratified_bootstrap_ci([[0.0, 1.0], [0.0, 1.0]], resamples=4000) == (0.5, 0.0, 1.0)
    assert stratified_bootstrap_ci([[2.0, 2.0], [4.0]]) == (3.0, 3.0, 3.0)
    assert all(math.isnan(x) for x in stratified_bootstrap_ci([[nan]]))


def test_hypervolume_2d() -> None:
    # Strips: (4-1)(4-3) + (4-2)(3-2) + (4-3)(2-1) = 3 + 2 + 1.
    front = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume_2d(front, (4.0, 4.0)) == pytest.approx(6.0)
    # A dominated point and points beyond the reference add nothing; order does not matter.
    more = np.array([[3.0, 1.0], [2.5, 2.5], [5.0, 0.0], [1.0, 3.0], [2.0, 2.0], [0.5, 4.0]])
    assert hypervolume_2d(more, (4.0, 4.0)) == pytest.approx(6.0)
    assert hypervolume_2d(np.zeros((0, 2)), (1.0, 1.0)) == 0.0


def test_zdt_front_hypervolume() -> None:
    # ZDT1's front f2 = 1 - sqrt(f1): the area under it is 1/3, so up to (1.1, 11) the front
    # dominates 12.1 - 1/3; a dense sample of the front gets there from below.
    task = get_multi_task("zdt1")
    assert task.optimal_hypervolume == pytest.approx(12.1 - 1 / 3)
    f1 = np.linspace(0, 1, 20001)
    assert hypervolume_2d(np.c_[f1, 1 - np.sqrt(f1)], task.reference_point) == pytest.approx(
        task.optimal_hypervolume, abs=1e-3
    )
    on_front = {f"x{i}": 0.0 for i in range(6)} | {"x0": 0.25}
    assert task.evaluate(on_front, seed=0) == pytest.approx((0.25, 0.5))
    assert get_multi_task("zdt2").optimal_hypervolume == pytest.approx(12.1 - 2 / 3)

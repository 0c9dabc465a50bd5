"""Statistics for comparing optimizers: pure functions on arrays, no I/O.

What each computes is what the benchmarking literature reports:

- :func:`normalized_scores`: bayesmark's normalized score, ``(best - reference) /
  (median of the normalizer's best - reference)`` at each budget: 0 is the reference (the
  optimum), 1 is the normalizer (random search).
- :func:`evaluations_to_target` and :func:`ecdf`: COCO's runtime, the number of evaluations a
  run needs to reach a target, and the empirical cumulative distribution of those runtimes.
- :func:`average_ranks`, :func:`friedman` and :func:`nemenyi_cd`: Demsar (2006): ranks per
  block with ties averaged, the Friedman test on them and the Nemenyi critical difference.
- :func:`win_rates`: how often one arm beats another (Vizier's analyzers), ties counting half.
- :func:`mean_confidence_interval` (Student's t) and :func:`stratified_bootstrap_ci`.
- :func:`hypervolume_2d`: the area a 2-objective front dominates, up to a reference point.

Every function takes losses (lower is better) and ignores nothing silently: NaN marks a value
that does not exist (a run that has not got that far) and the docstrings say what it does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "FriedmanResult",
    "average_ranks",
    "ecdf",
    "evaluations_to_target",
    "friedman",
    "hypervolume_2d",
    "mean_confidence_interval",
    "nemenyi_cd",
    "normalized_scores",
    "stratified_bootstrap_ci",
    "win_rates",
]


def normalized_scores(gaps: np.ndarray, normalizer_gaps: np.ndarray) -> np.ndarray:
    """Bayesmark's normalized score of each run at each budget.

    Args:
        gaps: ``runs x budgets``: each run's best-so-far minus the reference (>= 0 when the
            reference is the optimum or the best value any arm saw); NaN where unknown.
        normalizer_gaps: ``seeds x budgets``: the same for the normalizer arm (random search).

    Returns:
        ``runs x budgets``: ``gap / median(normalizer gap)``, the median over the normalizer's
        seeds with a value at that budget. 0 is the reference, 1 is the normalizer's median.
        Where that median is 0 (the normalizer found the reference) or missing, the score is
        NaN: no scale exists.
    """
    gaps = np.asarray(gaps, dtype=float)
    normalizer_gaps = np.asarray(normalizer_gaps, dtype=float)
    scale = np.full(normalizer_gaps.shape[1], np.nan)
    for j, column in enumerate(normalizer_gaps.T):
        column = column[~np.isnan(column)]
        if column.size and np.median(column) > 0:
            scale[j] = np.median(column)
    with np.errstate(invalid="ignore"):
        return gaps / scale


def evaluations_to_target(gap_curve: np.ndarray, target: float) -> int | None:
    """COCO's runtime: the evaluations a run needs until its best-so-far gap is <= ``target``.

    Args:
        gap_curve: The run's best-so-far gap after 1, 2, ... evaluations (NaN before its first
            value and past its last finished trial).
        target: The gap to reach.

    Returns:
        The 1-based number of evaluations, or None if the run never reached it.
    """
    reached = np.flatnonzero(np.asarray(gap_curve, dtype=float) <= target)
    return int(reached[0]) + 1 if reached.size else None


def ecdf(runtimes: Sequence[int | None], evaluations: Sequence[int]) -> np.ndarray:
    """The empirical CDF of runtimes: the fraction of them that are <= each evaluation count.

    Args:
        runtimes: One per (run, target); None for a target the run never reached (it counts
            in the denominator, never in the numerator).
        evaluations: The evaluation counts at which to read the CDF.

    Returns:
        The fraction at each of ``evaluations`` (all NaN when there are no runtimes).
    """
    if not runtimes:
        return np.full(len(evaluations), np.nan)
    reached = np.sort([r for r in runtimes if r is not None])
    counts = np.searchsorted(reached, np.asarray(evaluations), side="right")
    return counts / len(runtimes)


def average_ranks(losses: np.ndarray) -> np.ndarray:
    """Ranks of the arms within each block (1 = lowest loss, ties averaged).

    Args:
        losses: ``blocks x arms`` (blocks are tasks, or (task, seed) pairs), no NaN.

    Returns:
        ``blocks x arms`` ranks; the mean over axis 0 is each arm's average rank.
    """
    return np.asarray(stats.rankdata(np.asarray(losses, dtype=float), axis=1), dtype=float)


@dataclass(frozen=True)
class FriedmanResult:
    """The Friedman test on ranks: are the arms' average ranks different?

    Attributes:
        statistic: The chi-square statistic, corrected for ties.
        p_value: Its p-value under the chi-square distribution with ``k - 1`` degrees of freedom.
        k: Arms.
        n: Blocks.
    """

    statistic: float
    p_value: float
    k: int
    n: int


def friedman(losses: np.ndarray) -> FriedmanResult | None:
    """The Friedman test of ``blocks x arms`` losses (no NaN).

    ``scipy.stats.friedmanchisquare`` for three arms or more; for two arms (which scipy
    refuses) the same tie-corrected statistic by hand,
    ``(12 / (n k (k+1)) sum R_j^2 - 3 n (k+1)) / (1 - sum(t^3 - t) / (n k (k^2 - 1)))``.

    Returns:
        The result, or None with fewer than two arms or two blocks, or when every block ties
        every arm (the statistic is undefined).
    """
    losses = np.asarray(losses, dtype=float)
    n, k = losses.shape
    if k < 2 or n < 2:
        return None
    ranks = average_ranks(losses)
    ties = sum(
        float((c**3 - c).sum()) for c in (np.unique(r, return_counts=True)[1] for r in ranks)
    )
    correction = 1.0 - ties / (n * k * (k * k - 1))
    if correction <= 0:
        return None
    if k >= 3:
        result = stats.friedmanchisquare(*losses.T)
        return FriedmanResult(float(result.statistic), float(result.pvalue), k, n)
    sums = ranks.sum(axis=0)
    statistic = (12.0 / (n * k * (k + 1)) * float((sums**2).sum()) - 3 * n * (k + 1)) / correction
    return FriedmanResult(statistic, float(stats.chi2.sf(statistic, k - 1)), k, n)


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """The Nemenyi critical difference of average ranks for ``k`` arms over ``n`` blocks.

    ``CD = q_alpha sqrt(k (k+1) / (6 n))`` with ``q_alpha`` the studentized range's upper
    ``alpha`` quantile for ``k`` groups and infinite degrees of freedom, divided by sqrt(2)
    (Demsar 2006, Table 5: 2.569 for k = 4 at alpha 0.05). Two arms whose average ranks differ
    by at least CD differ significantly.
    """
    if k < 2 or n < 1:
        raise ValueError(f"need k >= 2 arms and n >= 1 blocks, got k={k}, n={n}")
    q_alpha = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q_alpha * math.sqrt(k * (k + 1) / (6.0 * n))


def win_rates(losses: np.ndarray) -> np.ndarray:
    """Arm x arm: the fraction of blocks where the row arm's loss is lower than the column's.

    Args:
        losses: ``blocks x arms``; a block with NaN for either arm of a pair is left out of
            that pair.

    Returns:
        ``arms x arms``; a tie counts half, so ``W + W.T == 1`` off the diagonal. The diagonal,
        and pairs that share no block, are NaN.
    """
    losses = np.asarray(losses, dtype=float)
    k = losses.shape[1]
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            both = ~np.isnan(losses[:, i]) & ~np.isnan(losses[:, j])
            if i == j or not both.any():
                continue
            a, b = losses[both, i], losses[both, j]
            out[i, j] = (np.sum(a < b) + 0.5 * np.sum(a == b)) / both.sum()
    return out


def mean_confidence_interval(
    values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """The mean and its Student-t confidence interval, ignoring NaN.

    Returns:
        ``(mean, low, high)``; the bounds are the mean itself for a single value, and all three
        are NaN for none.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * float(x.std(ddof=1))
    half /= math.sqrt(x.size)
    return mean, mean - half, mean + half


def stratified_bootstrap_ci(
    groups: Sequence[Sequence[float]] | Sequence[np.ndarray],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The mean of group means, and a percentile bootstrap interval resampling within groups.

    Groups are tasks and their values the seeds' scores: each resample draws every task's
    seeds with replacement and averages the task means, so the interval says how much the
    suite's score moves with the seeds, for these tasks.

    Returns:
        ``(mean, low, high)``; NaN when no group has a value. NaN values are left out.
    """
    cleaned = [g[~np.isnan(g)] for g in (np.asarray(v, dtype=float) for v in groups)]
    cleaned = [g for g in cleaned if g.size]
    if not cleaned:
        return math.nan, math.nan, math.nan
    mean = float(np.mean([g.mean() for g in cleaned]))
    rng = np.random.default_rng(seed)
    draws = np.zeros(resamples)
    for g in cleaned:
        draws += rng.choice(g, size=(resamples, g.size), replace=True).mean(axis=1)
    draws /= len(cleaned)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return mean, float(low), float(high)


def hypervolume_2d(points: np.ndarray, reference: Sequence[float]) -> float:
    """The area dominated by 2-objective points (both minimized), bounded by ``reference``.

    Points that do not strictly dominate the reference point contribute nothing. A sweep over
    the points sorted by the first objective: O(n log n).
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    r1, r2 = float(reference[0]), float(reference[1])
    pts = pts[(pts[:, 0] < r1) & (pts[:, 1] < r2)]
    if pts.size == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]  # by f1, then f2
    area, lowest = 0.0, r2
    for f1, f2 in pts:
        if f2 < lowest:  # on the front so far: adds the strip between it and the last front f2
            area += (r1 - f1) * (lowest - f2)
            lowest = f2
    return area

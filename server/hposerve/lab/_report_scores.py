"""The report's scores: bayesmark's normalized score, evaluations to target and win rates.

:func:`score_fields` adds these to results.json (the fields are documented in
:mod:`hposerve.lab._report`); the statistics themselves are in :mod:`hposerve.lab._stats`.
Everything here is in terms of a run's *gap*: its best-so-far loss minus the reference's, where
the reference is the task's optimum when known (the gap is then the regret) and otherwise the
best value any arm of the comparison saw (which the report then says).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hposerve.lab._report_runs import Metric, Run
from hposerve.lab._stats import evaluations_to_target, normalized_scores, win_rates

__all__ = ["TARGET_FRACTIONS", "score_fields"]

#: Targets, as the fraction of the gap between the normalizer's median first value and the
#: reference that a run has closed: 0.9 is "within 10% of the start's distance to the optimum".
TARGET_FRACTIONS = (0.5, 0.75, 0.9, 0.95, 0.99)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _nums(values: Any) -> list[float | None]:
    return [_num(float(v)) for v in values]


def _reference(arms: dict[str, list[Run]], metric: Metric) -> tuple[float, float | None, str]:
    """The reference as a loss, as an objective value, and what it is."""
    if metric.optimum is not None:
        return 0.0, metric.optimum, "optimum"  # the loss is the regret already
    losses = np.concatenate([r.loss for rs in arms.values() for r in rs])
    losses = losses[~np.isnan(losses)]
    if not losses.size:
        return math.nan, None, "best_seen"
    best = float(losses.min())
    return best, (best if metric.direction == "minimize" else -best), "best_seen"


def _first_value(gap: np.ndarray) -> float:
    known = gap[~np.isnan(gap)]
    return float(known[0]) if known.size else math.nan


def _at(gaps: np.ndarray, budgets: Sequence[int]) -> np.ndarray:
    return gaps[:, [b - 1 for b in budgets]]


def _win_table(arms: dict[str, list[Run]], gaps: dict[str, np.ndarray]) -> dict[str, Any]:
    """Win rates at the largest budget, over the seeds two arms share."""
    names = list(arms)
    seeds = sorted({r.seed for rs in arms.values() for r in rs})
    final = np.full((len(seeds), len(names)), np.nan)
    for j, name in enumerate(names):
        for run, gap in zip(arms[name], gaps[name], strict=True):
            final[seeds.index(run.seed), j] = gap[-1]
    rates = win_rates(final)
    return {a: {b: _num(rates[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)}


def score_fields(
    arms: dict[str, list[Run]],
    metric: Metric,
    budgets: Sequence[int],
    normalizer: str,
    *,
    into: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The score fields of results.json: returns the top-level ones, adds each arm's to its
    entry in ``into`` (results.json's ``arms``).

    Args:
        arms: The digested runs by arm (``group_runs``), curves ``max(budgets)`` long.
        metric: The comparison's metric (direction and optimum).
        budgets: The budgets, ascending.
        normalizer: The arm whose median best scores 1 (random search, or the baseline).
    """
    ref_loss, reference, kind = _reference(arms, metric)
    gaps = {
        a: np.array([r.loss - ref_loss for r in rs]).reshape(len(rs), -1) for a, rs in arms.items()
    }
    norm_gaps = gaps[normalizer]
    start = float(np.median([_first_value(g) for g in norm_gaps])) if len(norm_gaps) else math.nan
    targets = [(1 - f) * start for f in TARGET_FRACTIONS]
    top = {
        "reference": _num(reference) if reference is not None else None,
        "reference_kind": kind,
        "normalizer": normalizer,
        "target_fractions": list(TARGET_FRACTIONS),
        "target_gaps": _nums(targets),
        "win_rates": _win_table(arms, gaps),
    }
    for arm, gap in gaps.items():
        scores = normalized_scores(_at(gap, budgets), _at(norm_gaps, budgets))
        runtimes = [
            [None if math.isnan(t) else evaluations_to_target(g, t) for t in targets] for g in gap
        ]
        reached = [
            sum(r[i] is not None for r in runtimes) / len(runtimes) if runtimes else None
            for i in range(len(targets))
        ]
        mean = [
            float(np.mean(c[~np.isnan(c)])) if (~np.isnan(c)).any() else math.nan for c in scores.T
        ]
        into[arm] |= {
            "gaps_per_seed": [_nums(row) for row in _at(gap, budgets)],
            "normalized_score": _nums(mean),
            "normalized_score_per_seed": [_nums(row) for row in scores],
            "evals_to_target": runtimes,
            "reached_fraction": reached,
        }
    return top

"""The report's numbers: medians and IQRs by budget, ranks, tests against the baseline.

:func:`build_results` computes the content of results.json; its schema and the definitions
are in :mod:`hposerve.lab._report`.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from hposerve.lab._report_runs import ArmRun, Metric, Run, group_runs
from hposerve.lab._report_scores import score_fields

__all__ = [
    "ALPHA",
    "MIN_SEEDS_FOR_TEST",
    "RANDOM_BASELINE",
    "band",
    "build_results",
    "choose_baseline",
]

ALPHA = 0.05
MIN_SEEDS_FOR_TEST = 3
#: The arm the others are tested against when a comparison has it.
RANDOM_BASELINE = "random"


def _num(x: Any) -> float | None:
    """A JSON-safe float: None for missing or non-finite values."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def band(matrix: np.ndarray, min_count: int = 1) -> tuple[np.ndarray, ...]:
    """Column-wise median, 25th and 75th percentile over rows, ignoring NaN, and the counts.

    Columns with fewer than ``min_count`` values are NaN (computed by hand so that empty
    columns raise no RuntimeWarning).
    """
    columns = matrix.shape[1] if matrix.ndim == 2 else 0
    med, lo, hi = (np.full(columns, np.nan) for _ in range(3))
    count = np.zeros(columns, dtype=np.int64)
    for j in range(columns):
        column = matrix[:, j]
        column = column[~np.isnan(column)]
        count[j] = column.size
        if column.size >= max(min_count, 1):
            med[j] = np.median(column)
            lo[j], hi[j] = np.percentile(column, [25, 75])
    return med, lo, hi, count


def _at_budgets(run: Run, budgets: Sequence[int], attr: str) -> np.ndarray:
    values: np.ndarray = getattr(run, attr)
    return np.array([values[b - 1] if run.trials_done >= b else np.nan for b in budgets])


def _rank_cells(
    losses: dict[str, np.ndarray], seeds: dict[str, list[int]]
) -> tuple[str, list[np.ndarray]]:
    """The method, and the vectors (one value per arm) that get ranked."""
    arms = list(losses)
    budgets = range(losses[arms[0]].shape[1])
    if all(seeds[a] == seeds[arms[0]] for a in arms):
        n_seeds = len(seeds[arms[0]])
        per_seed = [
            np.array([losses[a][i, j] for a in arms]) for j in budgets for i in range(n_seeds)
        ]
        return "per_seed", per_seed
    medians = [np.array([band(losses[a][:, j : j + 1])[0][0] for a in arms]) for j in budgets]
    return "median", medians


def _mean_ranks(
    losses: dict[str, np.ndarray], seeds: dict[str, list[int]]
) -> tuple[dict[str, float | None], str | None]:
    """Mean rank per arm (1 = best) and the method used; ``losses[arm]`` is seeds x budgets.

    Cells with a missing value for some arm are left out.
    """
    arms = list(losses)
    if not arms:
        return {}, None
    method, cells = _rank_cells(losses, seeds)
    ranked = [stats.rankdata(cell) for cell in cells if not np.isnan(cell).any()]
    if not ranked:
        return dict.fromkeys(arms), None
    means = np.mean(ranked, axis=0)
    return {a: float(m) for a, m in zip(arms, means, strict=True)}, method


def _p_value(arm: np.ndarray, baseline: np.ndarray) -> float | None:
    arm, baseline = arm[~np.isnan(arm)], baseline[~np.isnan(baseline)]
    if arm.size < MIN_SEEDS_FOR_TEST or baseline.size < MIN_SEEDS_FOR_TEST:
        return None
    return _num(stats.mannwhitneyu(arm, baseline, alternative="less").pvalue)


def _p_values(losses: dict[str, np.ndarray], arm: str, baseline: str) -> list[float | None] | None:
    """The p-value of ``arm`` against ``baseline`` at each budget; None for the baseline."""
    if arm == baseline:
        return None
    columns = zip(losses[arm].T, losses[baseline].T, strict=True)
    return [_p_value(a, b) for a, b in columns]


def choose_baseline(arms: Sequence[str], baseline: str | None = None) -> tuple[str, str]:
    """The arm the others are tested against, and why that one.

    Args:
        arms: The comparison's arm names, in order.
        baseline: An arm chosen by the caller; None for the default: ``random`` when there is
            such an arm, else the first arm.

    Returns:
        ``(arm, reason)``; the reason is a sentence fragment for results.json and the report.

    Raises:
        ValueError: ``baseline`` is not one of ``arms``, or there are no arms.
    """
    if not arms:
        raise ValueError("a comparison report needs at least one arm")
    if baseline is not None:
        if baseline not in arms:
            raise ValueError(f"baseline {baseline!r} is not an arm; the arms are {list(arms)}")
        return baseline, "chosen by the caller"
    if RANDOM_BASELINE in arms:
        return RANDOM_BASELINE, "random search, the reference every method should beat"
    return arms[0], f"the first arm (there is no {RANDOM_BASELINE} arm)"


def _arm_results(
    digested: list[Run],
    budgets: list[int],
    key: str,
    p_values: list[float | None] | None,
    mean_rank: float | None,
) -> dict[str, Any]:
    values = np.array([_at_budgets(r, budgets, "best") for r in digested])
    med, lo, hi, count = band(values)
    sample_seconds = [s for r in digested for s in r.sample_seconds]
    has_steps = any(r.has_steps for r in digested)
    return {
        "seeds": len(digested),
        "seed_ids": [r.seed for r in digested],
        "trials_done": [r.trials_done for r in digested],
        "running_trials": sum(r.running for r in digested),
        "pruned_trials": [r.pruned for r in digested],
        "failed_trials": [r.failed for r in digested],
        "n": [int(c) for c in count],
        key: [_num(m) for m in med],
        "iqr": [
            None if math.isnan(m) else [_num(a), _num(b)]
            for m, a, b in zip(med, lo, hi, strict=True)
        ],
        "mean_rank": _num(mean_rank),
        "p_vs_baseline": p_values,
        "significant": (
            None if p_values is None else [None if p is None else p < ALPHA for p in p_values]
        ),
        "sample_ms_per_trial": (
            _num(1000.0 * float(np.mean(sample_seconds))) if sample_seconds else None
        ),
        "total_steps": (
            [int(r.cum_steps[-1]) if r.cum_steps.size else 0 for r in digested]
            if has_steps
            else None
        ),
        "steps_to_best": [r.steps_to_best for r in digested] if has_steps else None,
    }


def _checked_budgets(budgets: Sequence[int]) -> list[int]:
    checked = sorted({int(b) for b in budgets})
    if not checked or checked[0] < 1:
        raise ValueError(f"budgets must be positive trial counts, got {checked}")
    return checked


def build_results(
    *,
    task: str,
    direction: str,
    optimum: float | None,
    budgets: Sequence[int],
    runs: Sequence[ArmRun],
    baseline: str | None = None,
) -> dict[str, Any]:
    """Computes the comparison's numbers: the content of results.json.

    Args:
        task: The task's name, e.g. ``"branin"``.
        direction: ``"minimize"`` or ``"maximize"``.
        optimum: The task's known optimal value, or None (then medians are of the best value
            instead of regret).
        budgets: Trial counts at which to compare the arms (sorted and deduplicated here).
        runs: One per (arm, seed), possibly unfinished.
        baseline: The arm the others are tested against; None for ``random`` when there is
            such an arm, else the first arm (see :func:`choose_baseline`).

    Returns:
        A JSON-serializable dict (strict JSON: no NaN) following the schema in
        :mod:`hposerve.lab._report`.

    Raises:
        ValueError: No runs, no or non-positive budgets, an unknown direction, a repeated
            (arm, seed), an unknown baseline, or a multi-objective trial.
    """
    metric = Metric(direction, optimum)
    budgets = _checked_budgets(budgets)
    if not runs:
        raise ValueError("a comparison report needs at least one run")
    arms = group_runs(runs, metric, budgets[-1])
    baseline, reason = choose_baseline(list(arms), baseline)

    losses = {a: np.array([_at_budgets(r, budgets, "loss") for r in rs]) for a, rs in arms.items()}
    ranks, rank_method = _mean_ranks(losses, {a: [r.seed for r in rs] for a, rs in arms.items()})
    key = f"median_{metric.name}"
    out_arms = {
        arm: _arm_results(digested, budgets, key, _p_values(losses, arm, baseline), ranks.get(arm))
        for arm, digested in arms.items()
    }
    scores = score_fields(arms, metric, budgets, baseline, into=out_arms)
    return {
        "task": task,
        "direction": metric.direction,
        "optimum": _num(optimum),
        "budgets": budgets,
        "metric": metric.name,
        "baseline": baseline,
        "baseline_reason": reason,
        "alpha": ALPHA,
        "min_seeds_for_test": MIN_SEEDS_FOR_TEST,
        "rank_method": rank_method,
        "partial": any(not r.done for rs in arms.values() for r in rs),
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        **scores,
        "arms": out_arms,
    }

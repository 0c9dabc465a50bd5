"""The aggregate of several comparisons (a suite): scores, ranks and runtimes across tasks.

:func:`aggregate_results` combines comparisons' results (results.json, see
:mod:`hposerve.lab._report`) into the content of aggregate.json; :func:`aggregate` does the
same for comparisons on a server, so a team can compare methods on its own tasks. Only arms
that every comparison has are aggregated. The statistics are in :mod:`hposerve.lab._stats`.

aggregate.json
--------------
::

    {
      "tasks": [str, ...],                # one label per comparison (task or comparison name)
      "arms": [str, ...],                 # arms every comparison has, in the first's order
      "budgets": [int, ...],              # shared budgets; [final] when the tasks' differ
      "references": {TASK: "optimum" | "best_seen"},  # what each task's scores are relative to
      "normalizers": {TASK: str},         # the arm scoring 1 on each task (random search)
      "confidence": 0.95,
      "alpha": 0.05,
      "normalized_score": {ARM: {
          "mean": [float|null, ...],      # per budget: mean over tasks of the seeds' mean
          "ci": [[low, high]|null, ...],  # per budget: bootstrap, seeds resampled per task
          "per_task": {TASK: [float|null, ...]}}},
      "ranks": {"task": RANKS, "run": RANKS},   # blocks: tasks / (task, seed) pairs
      "win_rates": {ARM: {ARM: float|null}},    # over (task, seed) pairs, final budget
      "target_fractions": [float, ...],
      "reached_fraction": {ARM: [float, ...]},  # per target, over (task, seed) pairs
      "ecdf": {"evaluations": [int, ...], ARM: [float, ...]}  # over (task, seed, target)
    }

    RANKS = {"blocks": int, "mean": {ARM: float}, "per_block": {LABEL: {ARM: float}},
             "friedman": {"statistic": float, "p_value": float} | null,
             "cd": float | null,            # Nemenyi critical difference at alpha
             "significant_pairs": [[ARM, ARM], ...]}  # mean ranks differing by >= cd, when
                                                      # the Friedman test rejects at alpha

Ranks are of the mean gap to the reference over seeds at the final budget (per task), or of
each seed's gap (per (task, seed) pair): 1 is best, ties get the average rank. Blocks where an
arm has no value are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hposerve.lab._stats import (
    average_ranks,
    ecdf,
    friedman,
    nemenyi_cd,
    stratified_bootstrap_ci,
    win_rates,
)

__all__ = ["ALPHA", "CONFIDENCE", "aggregate", "aggregate_results"]

ALPHA = 0.05
CONFIDENCE = 0.95


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _matrix(rows: Sequence[Sequence[float | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def _common_arms(results: Mapping[str, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    return [a for a in first["arms"] if all(a in r["arms"] for r in results.values())]


def _budget_columns(
    results: Mapping[str, dict[str, Any]],
) -> tuple[list[int], dict[str, list[int]]]:
    """The budgets aggregated, and for each task the columns of its results that hold them."""
    lists = [r["budgets"] for r in results.values()]
    if all(b == lists[0] for b in lists):
        return lists[0], {t: list(range(len(lists[0]))) for t in results}
    return [max(b[-1] for b in lists)], {t: [len(r["budgets"]) - 1] for t, r in results.items()}


def _scores(
    results: Mapping[str, dict[str, Any]], arms: list[str], cols: dict[str, list[int]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm in arms:
        per_task = {
            t: _matrix(r["arms"][arm]["normalized_score_per_seed"])[:, cols[t]]
            for t, r in results.items()
        }
        n_budgets = len(next(iter(cols.values())))
        cis = [
            stratified_bootstrap_ci([m[:, j] for m in per_task.values()], CONFIDENCE)
            for j in range(n_budgets)
        ]
        out[arm] = {
            "mean": [_num(c[0]) for c in cis],
            "ci": [None if math.isnan(c[0]) else [_num(c[1]), _num(c[2])] for c in cis],
            "per_task": {
                t: [_num(np.nanmean(c)) if (~np.isnan(c)).any() else None for c in m.T]
                for t, m in per_task.items()
            },
        }
    return out


def _final_gaps(result: dict[str, Any], arms: list[str]) -> tuple[list[int], np.ndarray]:
    """Seed ids and ``seeds x arms`` final gaps, seeds paired by id (NaN where missing)."""
    seeds = sorted({s for a in arms for s in result["arms"][a]["seed_ids"]})
    out = np.full((len(seeds), len(arms)), np.nan)
    for j, arm in enumerate(arms):
        fields = result["arms"][arm]
        for seed, gaps in zip(fields["seed_ids"], fields["gaps_per_seed"], strict=True):
            out[seeds.index(seed), j] = np.nan if gaps[-1] is None else gaps[-1]
    return seeds, out


def _column_means(matrix: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN; NaN for a column without values (and no warning)."""
    known = ~np.isnan(matrix)
    sums = np.where(known, matrix, 0.0).sum(axis=0)
    counts = known.sum(axis=0)
    return np.divide(sums, counts, out=np.full(matrix.shape[1], np.nan), where=counts > 0)


def _ranks(labels: list[str], losses: np.ndarray, arms: list[str]) -> dict[str, Any]:
    keep = ~np.isnan(losses).any(axis=1)
    labels, losses = [lb for lb, k in zip(labels, keep, strict=True) if k], losses[keep]
    if not labels:
        return {
            "blocks": 0,
            "mean": {},
            "per_block": {},
            "friedman": None,
            "cd": None,
            "significant_pairs": [],
        }
    ranks = average_ranks(losses)
    mean = ranks.mean(axis=0)
    test = friedman(losses)
    cd = nemenyi_cd(len(arms), len(labels), ALPHA) if len(arms) >= 2 else None
    rejects = test is not None and test.p_value < ALPHA
    pairs = [
        [a, b]
        for i, a in enumerate(arms)
        for j, b in enumerate(arms)
        if i < j and rejects and cd is not None and abs(mean[i] - mean[j]) >= cd
    ]
    return {
        "blocks": len(labels),
        "mean": {a: float(m) for a, m in zip(arms, mean, strict=True)},
        "per_block": {
            lb: dict(zip(arms, map(float, r), strict=True))
            for lb, r in zip(labels, ranks, strict=True)
        },
        "friedman": None
        if test is None
        else {"statistic": _num(test.statistic), "p_value": _num(test.p_value)},
        "cd": _num(cd),
        "significant_pairs": pairs,
    }


def _runtimes(results: Mapping[str, dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    fractions = next(iter(results.values()))["target_fractions"]
    max_evals = max(r["budgets"][-1] for r in results.values())
    evaluations = list(range(1, max_evals + 1))
    curves: dict[str, Any] = {"evaluations": evaluations}
    reached: dict[str, list[float | None]] = {}
    for arm in arms:
        rows = [row for r in results.values() for row in r["arms"][arm]["evals_to_target"]]
        curves[arm] = [_num(v) for v in ecdf([v for row in rows for v in row], evaluations)]
        reached[arm] = [
            sum(row[i] is not None for row in rows) / len(rows) if rows else None
            for i in range(len(fractions))
        ]
    return {"target_fractions": fractions, "reached_fraction": reached, "ecdf": curves}


def aggregate_results(results: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The aggregate of comparisons' results: the content of aggregate.json.

    Args:
        results: Label (a task or comparison name) -> that comparison's results (what
            ``build_results`` returns, or results.json loaded), all with the score fields.

    Raises:
        ValueError: No results, or no arm common to all of them.
    """
    if not results:
        raise ValueError("aggregate at least one comparison")
    arms = _common_arms(results)
    if not arms:
        raise ValueError("the comparisons have no arm in common")
    budgets, cols = _budget_columns(results)
    run_labels: list[str] = []
    task_rows, run_rows = [], []
    for label, r in results.items():
        seeds, gaps = _final_gaps(r, arms)
        run_labels += [f"{label}/s{s}" for s in seeds]
        run_rows.append(gaps)
        task_rows.append(_column_means(gaps))
    task_losses, run_matrix = np.array(task_rows), np.concatenate(run_rows)
    rates = win_rates(run_matrix)
    return {
        "tasks": list(results),
        "arms": arms,
        "budgets": budgets,
        "references": {t: r["reference_kind"] for t, r in results.items()},
        "normalizers": {t: r["normalizer"] for t, r in results.items()},
        "confidence": CONFIDENCE,
        "alpha": ALPHA,
        "normalized_score": _scores(results, arms, cols),
        "ranks": {
            "task": _ranks(list(results), task_losses, arms),
            "run": _ranks(run_labels, run_matrix, arms),
        },
        "win_rates": {
            a: {b: _num(rates[i, j]) for j, b in enumerate(arms)} for i, a in enumerate(arms)
        },
        **_runtimes(results, arms),
    }


def aggregate(
    client: Any,
    comparisons: Sequence[Any],
    *,
    optima: Mapping[str, float] | None = None,
    out_dir: Any = None,
) -> dict[str, Any]:
    """The aggregate of comparisons already on a server (finished or not).

    Example::

        with hposerve.client.Client("hpo.example.org:50051") as client:
            summary = hposerve.lab.aggregate(client, ["resnet-cmp", "bert-cmp"])
        print(summary["normalized_score"]["tpe"]["mean"][-1])

    Args:
        client: An ``hposerve.client.Client``.
        comparisons: Comparison names, or ``Comparison`` objects.
        optima: Comparison name -> the task's known optimum; a comparison without one is scored
            against the best value any of its arms saw (``references`` says which).
        out_dir: If given, the aggregate report (aggregate.md, aggregate.json, plots) is written
            there, and each comparison's report in a subdirectory named after it.

    Returns:
        The aggregate (aggregate.json's content; see :mod:`hposerve.lab._aggregate`).
    """
    from pathlib import Path

    from hposerve.lab._report import ArmRun, build_results, write_report
    from hposerve.lab._runner import budgets_for

    optima = optima or {}
    results: dict[str, dict[str, Any]] = {}
    for item in comparisons:
        comparison = client.get_comparison(item) if isinstance(item, str) else item
        runs = [ArmRun(r.arm, r.seed, r.trials) for r in comparison.runs()]
        results[comparison.name] = build_results(
            task=comparison.name,
            direction=comparison.direction,
            optimum=optima.get(comparison.name),
            budgets=budgets_for(comparison.trials_per_study),
            runs=runs,
        )
        if out_dir is not None:
            write_report(results[comparison.name], runs, Path(out_dir) / comparison.name)
    summary = aggregate_results(results)
    if out_dir is not None:
        from hposerve.lab._aggregate_report import write_aggregate_report

        write_aggregate_report(summary, Path(out_dir))
    return summary

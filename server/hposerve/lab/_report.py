"""The report of a method comparison: results.json, report.md, curves and a CLI summary.

A comparison is a group of sibling studies on one task, one per (arm, seed); an arm is a
sampler, optionally with a pruner. The report turns the trials of all member studies into
numbers (:func:`build_results`, in ``_report_stats``), files a person opens
(:func:`write_report`: the text in ``_report_text``, the plots in ``_report_plots``) and a
plain-text table (:func:`summary_table`). It works on a comparison that is still running: runs
with fewer trials than the budget and running trials are expected; ``_report_runs`` digests
each run's trials.

Definitions
-----------
- A run's *finished* trials are its complete, pruned and failed trials, in trial-number order.
  Running and waiting trials are not counted yet: budget ``k`` is reached once ``k`` trials
  have finished. Only the first ``max(budgets)`` finished trials of a run are used.
- *Best-so-far after k trials* is the best value (min for minimize, max for maximize) over the
  complete trials among the first ``k`` finished ones. Pruned and failed trials use up budget
  but contribute no value (Optuna's value for a pruned trial is ignored). A run with no
  complete trial among its first ``k`` has no value at ``k``.
- *Regret* is ``best - optimum`` (minimize) or ``optimum - best`` (maximize), clipped at 0.
  With a known optimum the metric is regret, else the best value itself.
- A run with fewer than ``k`` finished trials has no value (NaN) at budget ``k``; missing
  values are left out of medians, IQRs, ranks and tests, and ``n`` says how many seeds
  contributed at each budget.

results.json
------------
::

    {
      "task": str,
      "direction": "minimize" | "maximize",
      "optimum": float | null,
      "budgets": [int, ...],              # ascending, distinct
      "metric": "regret" | "best",        # "regret" when optimum is known
      "baseline": str,                    # the arm the p-values compare against: "random"
                                          # when there is such an arm, else the first arm
      "baseline_reason": str,             # why that arm, e.g. "the first arm (there is no
                                          # random arm)"
      "alpha": 0.05,
      "min_seeds_for_test": 3,            # seeds needed on each side for a p-value
      "rank_method": "per_seed" | "median" | null,
      "partial": bool,                    # some run has fewer finished trials than max(budgets)
      "generated_at": str,                # ISO 8601, UTC
      "reference": float | null,          # what gaps are measured from: the optimum, or the
      "reference_kind": "optimum" | "best_seen",  # best value any arm saw (optimum unknown)
      "normalizer": str,                  # the arm scoring 1: the baseline (random search)
      "target_fractions": [float, ...],   # targets: fractions of the normalizer's median first
      "target_gaps": [float|null, ...],   # gap closed; each target as a gap: (1 - f) * start
      "win_rates": {ARM: {ARM: float|null}},  # row beats column at max(budgets), seeds paired
                                          # by id, ties half; null on the diagonal
      "arms": {
        ARM: {
          "seeds": int,                   # number of runs (seeds) of this arm
          "seed_ids": [int, ...],         # ascending; per-seed lists below follow this order
          "trials_done": [int, ...],      # finished trials per seed
          "running_trials": int,          # running or waiting trials, all seeds
          "pruned_trials": [int, ...],    # per seed, among the first max(budgets) finished
          "failed_trials": [int, ...],    # per seed, likewise
          "n": [int, ...],                # per budget: seeds with a value there
          "median_regret": [float|null, ...],  # per budget; "median_best" when metric is "best"
          "iqr": [[float, float]|null, ...],   # per budget: 25th and 75th percentile over seeds
          "mean_rank": float | null,      # 1 = best; see rank_method
          "p_vs_baseline": [float|null, ...] | null,  # per budget; null for the baseline itself
          "significant": [bool|null, ...] | null,   # per budget: p < alpha; null where no p
          "sample_ms_per_trial": float | null,  # mean sampler time per trial (all its trials)
          "total_steps": [int, ...] | null,     # per seed: training steps used, see below
          "steps_to_best": [int|null, ...] | null,  # per seed: steps used when its best was hit
          "gaps_per_seed": [[float|null, ...], ...],  # per seed, per budget: best - reference
          "normalized_score": [float|null, ...],      # per budget: mean over seeds of below
          "normalized_score_per_seed": [[float|null, ...], ...],  # gap / normalizer's median gap
          "evals_to_target": [[int|null, ...], ...],  # per seed, per target: trials to reach it
          "reached_fraction": [float, ...]            # per target: fraction of seeds reaching it
        }
      }
    }

Non-finite numbers are written as null, so the file is strict JSON.

Scores (``_report_scores``): a run's *gap* at a budget is its best-so-far loss minus the
reference's (its regret when the optimum is known). The normalized score (bayesmark) is the gap
divided by the median gap of the normalizer's seeds at that budget: 0 is the reference, 1 is
random search; null where that median is 0 or missing. Evaluations to target (COCO) count the
finished trials until the gap is at most the target; null when never reached. Multi-objective
runs (``_multi``) add ``"objective": "hypervolume_regret"``, ``"reference_point"``,
``"optimal_hypervolume"`` and, per arm, ``"median_hypervolume"`` (per budget); their metric is
the hypervolume regret, with optimum 0.

Ranks: at each budget, arms are ranked by how good their values are (1 = best, ties get the
average rank). When every arm has the same set of seeds (``rank_method: "per_seed"``), each
seed is ranked across arms separately, using only the seeds where every arm has a value, and
``mean_rank`` is the mean over those (budget, seed) cells. Otherwise (``"median"``) the arms'
medians are ranked at each budget where every arm has one, and ``mean_rank`` is the mean over
those budgets. ``rank_method`` is null when no cell could be ranked.

Tests against the baseline: at each budget, a one-sided Mann-Whitney U test
(``scipy.stats.mannwhitneyu(arm, baseline, alternative="less")``) on the per-seed loss (regret;
or the best value, negated when maximizing): a small p says the arm's results are better than
the baseline's. It needs ``min_seeds_for_test`` seeds with a value on each side; note that
with 3 against 3 seeds the smallest exact p is 0.05, so significance needs at least 4 seeds on
one side.

Curves (curves.png, steps.png): per seed, the best-so-far metric as a step function of trials,
of wall-clock time or of training steps; an arm's line is the median over its seeds (IQR
shaded), drawn only where every seed of the arm has a value, so that it never gets worse
along the axis (see ``_report_plots``).

Training steps (for pruning): a finished trial uses ``last_step + 1`` steps (0 if it reported
nothing). ``total_steps`` sums that over a run's finished trials; ``steps_to_best`` is the sum
up to and including the trial that first reached the run's final best. Both are null for an
arm whose trials reported no intermediate values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hposerve.lab._report_plots import captions, plot_curves, plot_steps
from hposerve.lab._report_runs import ArmRun, Metric, group_runs
from hposerve.lab._report_stats import (
    ALPHA,
    MIN_SEEDS_FOR_TEST,
    build_results,
    choose_baseline,
)
from hposerve.lab._report_text import report_md, summary_table

__all__ = [
    "ALPHA",
    "MIN_SEEDS_FOR_TEST",
    "ArmRun",
    "build_results",
    "choose_baseline",
    "summary_table",
    "write_report",
]


def write_report(
    results: dict[str, Any], runs: Sequence[ArmRun], out_dir: str | Path
) -> list[Path]:
    """Writes report.md, results.json, curves.png and, if trials reported steps, steps.png.

    Args:
        results: What :func:`build_results` returned for these runs.
        runs: The runs the results were built from (the plots need every trial).
        out_dir: The directory to write into; created if missing. Files are overwritten.

    Returns:
        The paths written: report.md, results.json, curves.png, then steps.png if written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric = Metric(results["direction"], results["optimum"])
    arms = group_runs(runs, metric, results["budgets"][-1])
    palette = [f"C{i}" for i in range(10)]
    colors = {arm: palette[i % len(palette)] for i, arm in enumerate(results["arms"])}
    for i, arm in enumerate(a for a in arms if a not in colors):
        colors[arm] = palette[(len(results["arms"]) + i) % len(palette)]

    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    curves_path = out_dir / "curves.png"
    plot_curves(results, arms, curves_path, colors)
    written = [curves_path]
    if any(r.has_steps for rs in arms.values() for r in rs):
        steps_path = out_dir / "steps.png"
        plot_steps(results, arms, steps_path, colors)
        written.append(steps_path)
    report_path = out_dir / "report.md"
    text = report_md(results, [p.name for p in written], captions(results["metric"]))
    report_path.write_text(text)
    return [report_path, results_path, *written]

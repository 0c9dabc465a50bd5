"""The score fields of results.json: normalized score, evaluations to target, win rates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_report import good_and_random, trial

from hposerve.lab._report import ArmRun, build_results
from hposerve.lab._report_scores import TARGET_FRACTIONS


def runs_of(arms: dict[str, list[list[float]]]) -> list[ArmRun]:
    return [
        ArmRun(arm, seed, [trial(k, v) for k, v in enumerate(values)])
        for arm, seeds in arms.items()
        for seed, values in enumerate(seeds)
    ]


def test_a_hand_computed_comparison() -> None:
    runs = runs_of(
        {
            "random": [[4, 4, 4], [6, 5, 5], [8, 8, 1]],
            "a": [[5, 2, 0.5], [0, 3, 3], [9, 9, 9]],
        }
    )
    results = build_results(task="t", direction="minimize", optimum=0.0, budgets=[3], runs=runs)
    assert results["reference"] == 0.0 and results["reference_kind"] == "optimum"
    assert results["normalizer"] == "random"
    # Random's median first value is 6: the targets are 6 * (1 - fraction).
    assert results["target_fractions"] == list(TARGET_FRACTIONS)
    assert results["target_gaps"] == pytest.approx([3, 1.5, 0.6, 0.3, 0.06])
    random, a = results["arms"]["random"], results["arms"]["a"]
    # Final regrets: random 4, 5, 1 (median 4); a 0.5, 0, 9.
    assert random["normalized_score_per_seed"] == [[1.0], [1.25], [0.25]]
    assert random["normalized_score"] == [pytest.approx(2.5 / 3)]
    assert a["normalized_score_per_seed"] == [[0.125], [0.0], [2.25]]
    assert a["gaps_per_seed"] == [[0.5], [0.0], [9.0]]
    # Best-so-far of a's seed 0 is 5, 2, 0.5: under 3 after 2 trials, under 1.5 and 0.6 after 3.
    assert a["evals_to_target"] == [
        [2, 3, 3, None, None],
        [1, 1, 1, 1, 1],
        [None] * 5,
    ]
    assert a["reached_fraction"] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3])
    assert random["evals_to_target"][2] == [3, 3, None, None, None]
    assert random["reached_fraction"] == pytest.approx([1 / 3, 1 / 3, 0, 0, 0])
    # Paired by seed at the last budget: a wins on seeds 0 and 1, loses on seed 2.
    assert results["win_rates"]["a"]["random"] == pytest.approx(2 / 3)
    assert results["win_rates"]["random"]["a"] == pytest.approx(1 / 3)
    assert results["win_rates"]["a"]["a"] is None


def test_random_scores_about_one_and_the_optimum_zero() -> None:
    runs = good_and_random()
    # An arm whose every trial is at the optimum (0 here).
    runs += [ArmRun("oracle", s, [trial(k, 0.0) for k in range(30)]) for s in range(5)]
    results = build_results(
        task="t", direction="minimize", optimum=0.0, budgets=[10, 20, 30], runs=runs
    )
    random, oracle, good = (results["arms"][a] for a in ("random", "oracle", "good"))
    # Five seeds: the median seed scores exactly 1, the mean is close to it.
    assert [np.median(c) for c in np.array(random["normalized_score_per_seed"]).T] == [1, 1, 1]
    assert all(0.6 < s < 1.4 for s in random["normalized_score"])
    assert oracle["normalized_score"] == [0.0, 0.0, 0.0]
    assert oracle["evals_to_target"] == [[1] * 5] * 5 and oracle["reached_fraction"] == [1.0] * 5
    assert all(
        g < r for g, r in zip(good["normalized_score"], random["normalized_score"], strict=True)
    )
    assert results["win_rates"]["good"]["random"] == 1.0
    assert results["win_rates"]["oracle"]["good"] == 1.0


def test_without_an_optimum_the_best_value_seen_is_the_reference() -> None:
    # A maximization: values are 100 - loss, so the best seen is the largest value.
    runs = good_and_random(sign=-1.0, offset=100.0)
    results = build_results(
        task="t", direction="maximize", optimum=None, budgets=[10, 30], runs=runs
    )
    best = max(t.values[0] for r in runs for t in r.trials)
    assert results["reference_kind"] == "best_seen" and results["reference"] == best
    gaps = [g for arm in results["arms"].values() for row in arm["gaps_per_seed"] for g in row]
    assert min(gaps) == 0.0 and all(g >= 0 for g in gaps)
    assert 0.6 < results["arms"]["random"]["normalized_score"][-1] < 1.4


def test_states_may_be_the_clients_trial_state_enum() -> None:
    from hposerve.client import TrialState

    trials = [trial(0, 3.0), trial(1, None, "failed"), trial(2, None, "pruned"), trial(3, 1.0)]
    enums = {"complete": TrialState.COMPLETE, "failed": TrialState.FAIL}
    enums["pruned"] = TrialState.PRUNED
    as_enums = [dataclasses.replace(t, state=enums[t.state]) for t in trials]
    results = build_results(
        task="t", direction="minimize", optimum=0.0, budgets=[4], runs=[ArmRun("a", 0, as_enums)]
    )
    arm = results["arms"]["a"]
    assert arm["trials_done"] == [4] and arm["failed_trials"] == [1] and arm["pruned_trials"] == [1]
    assert arm["gaps_per_seed"] == [[1.0]]

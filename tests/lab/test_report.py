"""The comparison report: numbers from fake trials, the files it writes, the CLI table."""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hposerve.lab._report import ArmRun, build_results, summary_table, write_report

T0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
BUDGETS = [10, 20, 30]
SEEDS = 5


@dataclass(frozen=True)
class FakeTrial:
    """The attributes of the client's FrozenTrial that the report reads."""

    number: int
    state: str
    values: list[float] | None
    intermediate_values: dict[int, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: datetime.datetime | None = None
    datetime_complete: datetime.datetime | None = None
    sample_seconds: float = 0.0

    @property
    def value(self) -> float | None:
        return None if self.values is None else self.values[0]


def trial(
    number: int,
    value: float | None,
    state: str = "complete",
    *,
    steps: int = 0,
    sample_seconds: float = 0.001,
) -> FakeTrial:
    """A trial that started at ``number`` seconds and took half a second."""
    start = T0 + datetime.timedelta(seconds=number)
    finished = state not in ("running", "waiting")
    return FakeTrial(
        number=number,
        state=state,
        values=None if value is None or state != "complete" else [value],
        intermediate_values={s: float(s) for s in range(steps)},
        datetime_start=start,
        datetime_complete=start + datetime.timedelta(seconds=0.5) if finished else None,
        sample_seconds=sample_seconds,
    )


def good_and_random(n_trials: int = 30, sign: float = 1.0, offset: float = 0.0) -> list[ArmRun]:
    """A "good" arm whose values fall fast towards 0, and "random" drawing uniformly in [0, 10].

    Values are ``offset + sign * loss``: sign -1 turns the task into a maximization.
    """
    runs = []
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        good = [10 * math.exp(-0.3 * k) * rng.uniform(0.5, 1.0) for k in range(n_trials)]
        rand = [rng.uniform(0.0, 10.0) for _ in range(n_trials)]
        for arm, losses, ms in (("good", good, 0.02), ("random", rand, 0.001)):
            trials = [trial(k, offset + sign * v, sample_seconds=ms) for k, v in enumerate(losses)]
            runs.append(ArmRun(arm=arm, seed=seed, trials=trials))
    return runs


def strict_json(results: dict) -> dict:
    return json.loads(json.dumps(results, allow_nan=False))


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1024


def test_better_arm_beats_random():
    runs = good_and_random()
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    strict_json(results)
    assert results["metric"] == "regret" and results["partial"] is False
    assert results["rank_method"] == "per_seed"
    good, rand = results["arms"]["good"], results["arms"]["random"]
    assert good["seeds"] == rand["seeds"] == SEEDS
    assert good["trials_done"] == [30] * SEEDS and good["n"] == [SEEDS] * len(BUDGETS)
    for g, r in zip(good["median_regret"], rand["median_regret"], strict=True):
        assert g < r
    for lo, hi in good["iqr"]:
        assert 0 <= lo <= hi
    # The good arm wins every (seed, budget) cell, so its ranks are all 1.
    assert good["mean_rank"] == 1.0 and rand["mean_rank"] == 2.0
    assert all(p < 0.05 for p in good["p_vs_baseline"])
    assert good["p_vs_baseline"][-1] == pytest.approx(1 / 252)  # exact p: all 5 below all 5
    assert good["significant"] == [True] * len(BUDGETS)
    assert rand["p_vs_baseline"] is None and rand["significant"] is None
    assert good["sample_ms_per_trial"] == pytest.approx(20.0)
    assert rand["sample_ms_per_trial"] == pytest.approx(1.0)
    assert good["total_steps"] is None and good["steps_to_best"] is None


def test_best_so_far_counts_pruned_and_failed_toward_the_budget(tmp_path):
    trials = [
        trial(0, 5.0),
        # Optuna would give a pruned trial its last intermediate value; the report ignores it.
        trial(1, 0.5, "pruned"),
        trial(2, None, "running"),  # not finished: not counted yet
        trial(3, None, "failed"),
        trial(4, 3.0),
        trial(5, 0.2),  # below the optimum: regret clips at 0
    ]
    results = build_results(
        task="unit",
        direction="minimize",
        optimum=1.0,
        budgets=[4, 1, 2, 3, 5, 4],
        runs=[ArmRun("tpe", 0, trials)],
    )
    arm = results["arms"]["tpe"]
    assert results["budgets"] == [1, 2, 3, 4, 5]
    assert arm["median_regret"] == [4.0, 4.0, 4.0, 2.0, 0.0]
    assert arm["trials_done"] == [5] and arm["running_trials"] == 1
    assert arm["pruned_trials"] == [1] and arm["failed_trials"] == [1]
    # No random arm: the only arm is the baseline, with nothing to test against it.
    assert results["baseline"] == "tpe" and "no random arm" in results["baseline_reason"]
    assert arm["p_vs_baseline"] is None and arm["mean_rank"] == 1.0
    # A regret of exactly 0 still plots (not on a plain log scale).
    write_report(results, [ArmRun("tpe", 0, trials)], tmp_path)
    assert is_png(tmp_path / "curves.png")
    report = (tmp_path / "report.md").read_text()
    assert "The baseline is `tpe`: the first arm (there is no random arm)." in report
    assert "It is the only arm" in report


def test_partial_comparison():
    runs = good_and_random()
    # One good run has finished only 12 trials, with two more running.
    short = [*runs[0].trials[:12], trial(12, None, "running"), trial(13, None, "waiting")]
    runs[0] = ArmRun("good", 0, short)
    # One random seed has no trial finished at all.
    runs[1] = ArmRun("random", 0, [trial(0, None, "running")])
    results = strict_json(
        build_results(task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs)
    )
    assert results["partial"] is True
    good, rand = results["arms"]["good"], results["arms"]["random"]
    assert good["trials_done"] == [12, 30, 30, 30, 30] and good["running_trials"] == 2
    assert good["n"] == [5, 4, 4] and rand["n"] == [4, 4, 4]
    assert rand["trials_done"][0] == 0
    assert all(m is not None for m in good["median_regret"])
    assert good["mean_rank"] is not None


def test_empty_arm_is_null_not_nan(tmp_path):
    runs = good_and_random(n_trials=5)
    runs.append(ArmRun("cmaes", 0, []))  # just created
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    strict_json(results)
    cmaes = results["arms"]["cmaes"]
    assert cmaes["median_regret"] == [None, None, None] and cmaes["iqr"] == [None, None, None]
    assert cmaes["p_vs_baseline"] == [None, None, None] and cmaes["significant"] == [None] * 3
    # Different seed sets across arms: ranks fall back to medians, none available yet.
    assert results["rank_method"] is None and cmaes["mean_rank"] is None
    assert cmaes["sample_ms_per_trial"] is None
    paths = write_report(results, runs, tmp_path)
    assert is_png(tmp_path / "curves.png")
    assert "cmaes" in summary_table(results) and len(paths) == 3


def test_maximize_without_optimum():
    runs = good_and_random(sign=-1.0, offset=100.0)
    results = build_results(
        task="acc", direction="maximize", optimum=None, budgets=BUDGETS, runs=runs
    )
    strict_json(results)
    assert results["metric"] == "best" and results["optimum"] is None
    good, rand = results["arms"]["good"], results["arms"]["random"]
    assert "median_regret" not in good and "median_best" in good
    for g, r in zip(good["median_best"], rand["median_best"], strict=True):
        assert g > r and g <= 100.0
    assert good["mean_rank"] < rand["mean_rank"]
    assert good["significant"] == [True] * len(BUDGETS)


def test_ranks_by_medians_when_seeds_differ():
    runs = good_and_random()
    runs = [r for r in runs if not (r.arm == "random" and r.seed == 4)]
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    assert results["rank_method"] == "median"
    assert results["arms"]["good"]["mean_rank"] == 1.0
    # Four random seeds are still enough for a test.
    assert results["arms"]["good"]["significant"][-1] is True


def test_too_few_seeds_gives_no_p_value():
    runs = [r for r in good_and_random() if r.seed < 2]
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    good = results["arms"]["good"]
    assert good["p_vs_baseline"] == [None] * len(BUDGETS)
    assert good["significant"] == [None] * len(BUDGETS)


def test_ties_get_average_ranks():
    runs = [ArmRun(arm, seed, [trial(0, 1.0)]) for arm in ("a", "b") for seed in range(3)]
    results = build_results(task="t", direction="minimize", optimum=0.0, budgets=[1], runs=runs)
    assert results["arms"]["a"]["mean_rank"] == results["arms"]["b"]["mean_rank"] == 1.5


def test_bad_input():
    runs = good_and_random(n_trials=3)
    with pytest.raises(ValueError, match="direction"):
        build_results(task="t", direction="min", optimum=None, budgets=[1], runs=runs)
    with pytest.raises(ValueError, match="budgets"):
        build_results(task="t", direction="minimize", optimum=None, budgets=[0], runs=runs)
    with pytest.raises(ValueError, match="seed 0"):
        build_results(
            task="t", direction="minimize", optimum=None, budgets=[1], runs=runs + runs[:1]
        )


def test_write_report(tmp_path):
    runs = good_and_random()
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    paths = write_report(results, runs, tmp_path / "out")
    out = tmp_path / "out"
    assert paths == [out / "report.md", out / "results.json", out / "curves.png"]
    assert not (out / "steps.png").exists()
    assert is_png(out / "curves.png")
    assert json.loads((out / "results.json").read_text()) == results
    report = (out / "report.md").read_text()
    assert "# Comparison report: toy" in report and "](curves.png)" in report
    assert "Significant at 0.05?" in report
    assert "`good` beats `random` significantly at 30 trials" in report
    assert "Partial comparison" not in report and "steps.png" not in report


def test_write_report_partial_with_steps(tmp_path):
    runs = good_and_random()
    # A pruning arm: most trials stop after 2 of 10 steps.
    for seed in range(SEEDS):
        trials = [
            trial(k, None, "pruned", steps=2) if k % 3 else trial(k, 5.0 / (k + 1), steps=10)
            for k in range(30 if seed else 17)
        ]
        runs.append(ArmRun("tpe+median", seed, trials))
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    pruned = results["arms"]["tpe+median"]
    assert pruned["total_steps"] == [10 * 6 + 2 * 11] + [10 * 10 + 2 * 20] * 4
    # The best is the last complete trial, number 27 (or 15 in the short run).
    assert pruned["steps_to_best"] == [10 * 6 + 2 * 10] + [10 * 10 + 2 * 18] * 4
    paths = write_report(results, runs, tmp_path)
    assert [p.name for p in paths] == ["report.md", "results.json", "curves.png", "steps.png"]
    assert is_png(tmp_path / "steps.png")
    report = (tmp_path / "report.md").read_text()
    assert "Partial comparison" in report and "](steps.png)" in report
    assert "## Training steps" in report


def test_summary_table_mentions_every_arm():
    runs = good_and_random()
    runs.append(ArmRun("grid", 0, [trial(0, 3.0)]))
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    table = summary_table(results)
    lines = table.splitlines()
    for arm in ("good", "random", "grid"):
        assert any(line.startswith(arm) for line in lines)
    assert "regret@30" in table and "partial" in lines[0]
    # The good arm's p at the largest budget is flagged significant.
    assert "*" in next(line for line in lines if line.startswith("good"))


def test_without_a_random_arm_the_first_arm_is_the_named_baseline(tmp_path):
    runs = [
        ArmRun("tpe" if r.arm == "good" else "grid", r.seed, r.trials) for r in good_and_random()
    ]
    results = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    assert results["baseline"] == "tpe"
    assert results["baseline_reason"] == "the first arm (there is no random arm)"
    tpe, grid = results["arms"]["tpe"], results["arms"]["grid"]
    assert "p_vs_random" not in grid
    assert tpe["p_vs_baseline"] is None and tpe["significant"] is None
    # grid (uniform draws) is tested against tpe (fast descent): clearly not better.
    assert all(p is not None and p > 0.5 for p in grid["p_vs_baseline"])
    table = summary_table(results)
    assert "p vs tpe@30" in table
    assert table.splitlines()[-1].endswith("baseline tpe: the first arm (there is no random arm)")
    write_report(results, runs, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "- Baseline: `tpe`, the first arm (there is no random arm)" in report
    assert "## Against `tpe`" in report and "`grid` does not beat `tpe` significantly" in report


def test_the_table_explains_p_values_only_when_a_test_ran():
    tested = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=good_and_random()
    )
    assert "* p < 0.05 (one-sided Mann-Whitney U against random)" in summary_table(tested)

    runs = [r for r in good_and_random() if r.seed < 2]
    untested = build_results(
        task="toy", direction="minimize", optimum=0.0, budgets=BUDGETS, runs=runs
    )
    note = summary_table(untested).splitlines()[-1]
    assert "p <" not in note
    assert note.startswith("no test against random at 30 trials: it needs 3 seeds")
    assert "(seeds with a value: good 2, random 2)" in note

    alone = [r for r in runs if r.arm == "good"]
    only = build_results(task="toy", direction="minimize", optimum=0.0, budgets=[30], runs=alone)
    assert summary_table(only).splitlines()[-1] == "no test: good is the only arm"


def timed_trial(number: int, value: float, start: float, end: float) -> FakeTrial:
    """A complete trial that ran from ``start`` to ``end`` seconds after T0."""
    return FakeTrial(
        number=number,
        state="complete",
        values=[value],
        datetime_start=T0 + datetime.timedelta(seconds=start),
        datetime_complete=T0 + datetime.timedelta(seconds=end),
    )


def late_second_seed(sign: float) -> list[ArmRun]:
    """What the demo showed: seed 0 finds a good value at once; seed 1's first (poor) trial
    finishes only at 3 s, and its first finished trial by number is poor too."""
    fast = [timed_trial(k, sign * 0.14, k * 0.5, k * 0.5 + 0.4) for k in range(6)]
    slow = [timed_trial(0, sign * 0.9, 0.0, 3.0)]
    slow += [timed_trial(k, sign * (0.9 - 0.1 * k), 3.0 + k, 3.4 + k) for k in range(1, 6)]
    return [ArmRun("tpe", 0, fast), ArmRun("tpe", 1, slow)]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_plotted_best_so_far_never_gets_worse(tmp_path, monkeypatch, direction):
    import matplotlib.axes

    lines: list[tuple[np.ndarray, np.ndarray]] = []
    plot = matplotlib.axes.Axes.plot

    def recording_plot(self, *args, **kwargs):
        lines.append((np.asarray(args[0], dtype=float), np.asarray(args[1], dtype=float)))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)
    sign = 1.0 if direction == "minimize" else -1.0
    runs = late_second_seed(sign)
    # No optimum: the metric is the best value itself, so it must fall (minimize) or rise.
    results = build_results(task="t", direction=direction, optimum=None, budgets=[6], runs=runs)
    write_report(results, runs, tmp_path)
    (by_trial_x, by_trial), (by_time_x, by_time) = lines
    for y in (by_trial, by_time):
        drawn = y[~np.isnan(y)]
        assert drawn.size > 0
        # Best-so-far: never worse later (lower when minimizing, higher when maximizing).
        assert (np.diff(drawn) * sign <= 0).all(), drawn
    # Drawn from the first trial (both seeds have a value there), and in time only once the
    # second seed's first trial has finished, at 3 s.
    assert by_trial_x[~np.isnan(by_trial)][0] == 1
    assert by_time_x[~np.isnan(by_time)][0] >= 3.0
    assert "drawn only where every seed has a value" in (tmp_path / "report.md").read_text()

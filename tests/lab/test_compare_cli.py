"""``hposerve compare``: run end to end, report and status on a running server, the trainer loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optuna.distributions import FloatDistribution

from hposerve import cli as _cli
from hposerve.lab._runner import arms_for, budgets_for, trainer
from hposerve.lab._tasks import Task, get_task

ARM_KEYS = {
    "seeds",
    "seed_ids",
    "trials_done",
    "running_trials",
    "pruned_trials",
    "failed_trials",
    "n",
    "median_regret",
    "iqr",
    "mean_rank",
    "p_vs_baseline",
    "significant",
    "sample_ms_per_trial",
    "total_steps",
    "steps_to_best",
}
TOP_KEYS = {
    "task",
    "direction",
    "optimum",
    "budgets",
    "metric",
    "baseline",
    "baseline_reason",
    "alpha",
    "min_seeds_for_test",
    "rank_method",
    "partial",
    "generated_at",
    "arms",
}


def test_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    argv = ["compare", "run", "--task", "branin", "--samplers", "tpe,random", "--seeds", "2"]
    argv += ["--trials", "12", "--workers", "2", "--out", str(out)]
    argv += ["--data-dir", str(tmp_path / "data"), "--name", "cli-e2e"]
    assert _cli.main(argv) == 0

    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "report.md", "results.json"]
    results = json.loads((out / "results.json").read_text())
    assert set(results) >= TOP_KEYS
    assert results["task"] == "branin" and results["direction"] == "minimize"
    assert results["metric"] == "regret" and results["baseline"] == "random"
    assert results["budgets"] == [3, 6, 9, 12] and results["partial"] is False
    assert list(results["arms"]) == ["tpe", "random"]
    for arm in results["arms"].values():
        assert set(arm) >= ARM_KEYS
        assert arm["seeds"] == 2 and arm["seed_ids"] == [0, 1] and arm["trials_done"] == [12, 12]
        assert all(v is not None and v >= 0 for v in arm["median_regret"])
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "cli-e2e" in text and "regret@12" in text and "p vs random@12" in text

    # Run again with the same name: the finished comparison is loaded, nothing more is run.
    assert _cli.main(argv) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["arms"]["tpe"]["trials_done"] == [12, 12]


def test_report_and_status_on_a_running_comparison(client, target, tmp_path, capsys) -> None:
    task = get_task("branin")
    comparison = client.create_comparison(
        name="half-way",
        search_space=task.search_space,
        arms=["tpe", "random", "grid"],
        seeds=2,
        trials_per_study=8,
    )
    for _ in range(12):  # two trials per member; one more left running
        trial = comparison.ask()
        comparison.tell(trial, task.evaluate(trial.params, seed=trial.seed))
    comparison.ask()

    assert _cli.main(["compare", "status", "--target", target, "--name", "half-way"]) == 0
    status = capsys.readouterr().out
    assert "namespaces/default/comparisons/half-way: running" in status
    assert "half-way.grid.s1" in status and "3/8" in status

    out = tmp_path / "partial"
    argv = ["compare", "report", "--target", target, "--name", "half-way"]
    assert _cli.main([*argv, "--task", "branin", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["partial"] is True and results["budgets"] == [2, 4, 6, 8]
    assert results["arms"]["tpe"]["trials_done"] == [2, 2]
    assert results["arms"]["tpe"]["running_trials"] == 1
    assert "partial" in capsys.readouterr().out


def steps_objective(params, *, seed, report=None):
    """A task with steps: the value falls by one per step, from x + 5."""
    value = params["x"] + 5
    for step in range(5):
        value = params["x"] + 5 - step
        if report is not None:
            report(value, step)
    return value


def test_trainer_reports_every_arm_and_prunes_only_arms_with_a_pruner(client, target) -> None:
    task = Task(
        name="steps",
        direction="minimize",
        search_space={"x": FloatDistribution(0.0, 1.0)},
        optimum=1.0,
        evaluate=steps_objective,
        max_steps=5,
    )
    arms = arms_for(["random"], ["none", "threshold"])
    arms[1]["pruner"] = {"type": "threshold", "upper": 5.5}  # prunes when x + 5 - step > 5.5
    comparison = client.create_comparison(
        name="steps", search_space=task.search_space, arms=arms, seeds=1, trials_per_study=6
    )
    trainer(target, comparison.resource_name, task, 0)
    plain = client.get_study("steps.random.s0").trials
    pruned = client.get_study("steps.random-threshold.s0").trials
    assert [t.state for t in plain] == ["complete"] * 6
    # Its learning curves are recorded too: the report counts the steps pruning saves.
    assert all(list(t.intermediate_values) == [0, 1, 2, 3, 4] for t in plain)
    for t in pruned:
        if t.params["x"] > 0.5:
            assert t.state == "pruned" and list(t.intermediate_values) == [0]
        else:
            assert t.state == "complete" and list(t.intermediate_values) == [0, 1, 2, 3, 4]


def test_arms_and_budgets() -> None:
    assert arms_for(["tpe", "grid"]) == [
        {"name": "tpe", "sampler": "tpe"},
        {"name": "grid", "sampler": "grid"},
    ]
    assert arms_for(["tpe", "shuffled-grid"], ["none", "median"]) == [
        {"name": "tpe", "sampler": "tpe"},
        {"name": "shuffled-grid", "sampler": "grid", "shuffle_grid": True},
        {"name": "tpe-median", "sampler": "tpe", "pruner": "median"},
        {
            "name": "shuffled-grid-median",
            "sampler": "grid",
            "shuffle_grid": True,
            "pruner": "median",
        },
    ]
    assert budgets_for(100) == [25, 50, 75, 100]
    assert budgets_for(12) == [3, 6, 9, 12]
    assert budgets_for(2) == [1, 2]


def test_bad_commands_fail_with_a_message(tmp_path, capsys) -> None:
    base = ["compare", "run", "--seeds", "1", "--trials", "2", "--out", str(tmp_path / "r")]
    base += ["--data-dir", str(tmp_path / "data")]
    assert _cli.main([*base, "--task", "no-such-task"]) == 2
    assert "unknown task 'no-such-task'" in capsys.readouterr().err
    assert _cli.main([*base, "--task", "branin", "--samplers", "bogus"]) == 1
    assert "unknown sampler type 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli.main([*base, "--task", "branin", "--workers", "0"])


@pytest.mark.slow
def test_the_demo_comparison(tmp_path: Path) -> None:
    import io

    from hposerve.lab._demo import COMPARE_SEEDS, COMPARE_TRIALS, run_demo_comparison

    out = io.StringIO()
    result = run_demo_comparison(
        workers=2, out_dir=tmp_path / "report", data_dir=tmp_path / "data", out=out
    )
    assert result.ok
    assert list(result.results["arms"]) == ["tpe", "random", "grid"]
    for arm in result.results["arms"].values():
        assert arm["trials_done"] == [COMPARE_TRIALS] * COMPARE_SEEDS
    assert (tmp_path / "report" / "curves.png").exists()
    assert "best@12" in out.getvalue()


def test_the_lab_exports_its_library_lazily() -> None:
    import subprocess
    import sys

    import hposerve.lab as lab
    from hposerve.lab import _runner

    assert lab.run_comparison is _runner.run_comparison and "run_comparison" in lab.__all__
    for name in lab.__all__:
        assert getattr(lab, name) is not None, name
    code = "import sys, hposerve.lab; print('scipy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

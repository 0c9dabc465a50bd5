"""``hposerve compare suite`` end to end, resuming, the aggregate API and hypervolume runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import hposerve.lab
from hposerve import cli as _cli
from hposerve.client import Client
from hposerve.lab._aggregate import aggregate_results
from hposerve.lab._multi import run_multi_comparison
from hposerve.lab._report_runs import state_name
from hposerve.lab._runner import arms_for
from hposerve.lab._suite import resolve_tasks, run_suite
from hposerve.lab._tasks import get_task
from hposerve.lab._tasks_multi import get_multi_task
from hposerve.server import make_server

AGGREGATE_KEYS = {
    "tasks",
    "arms",
    "budgets",
    "references",
    "normalizers",
    "confidence",
    "alpha",
    "normalized_score",
    "ranks",
    "win_rates",
    "target_fractions",
    "reached_fraction",
    "ecdf",
}


def member_trials(data_dir: Path, study: str) -> list[tuple[int, str, object]]:
    """(number, state, datetime_complete) of a study's trials, read from an embedded storage."""
    server = make_server("127.0.0.1:0", data_dir=data_dir).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            trials = client.get_study(study).trials
    finally:
        server.stop(grace=1)
    return [(t.number, str(t.state), t.datetime_complete) for t in trials]


def test_suite_end_to_end_and_a_rerun_redoes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "suite"
    argv = ["compare", "suite", "--tasks", "branin,sphere", "--samplers", "tpe,random"]
    argv += ["--seeds", "2", "--trials", "6", "--workers", "2", "--out", str(out)]
    assert _cli.main(argv) == 0

    names = {p.name for p in out.iterdir()}
    assert names >= {"aggregate.md", "aggregate.json", "scores.png", "cd.png", "ecdf.png"}
    assert {"branin", "sphere", "data"} <= names
    for task in ("branin", "sphere"):
        results = json.loads((out / task / "results.json").read_text())
        assert results["partial"] is False and results["reference_kind"] == "optimum"
        for arm in results["arms"].values():
            assert arm["trials_done"] == [6, 6] and len(arm["normalized_score"]) == 4
        assert (out / task / "curves.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "aggregate.json").read_text())
    assert set(summary) == AGGREGATE_KEYS
    assert summary["tasks"] == ["branin", "sphere"] and summary["arms"] == ["tpe", "random"]
    assert summary["references"] == {"branin": "optimum", "sphere": "optimum"}
    assert summary["ranks"]["task"]["blocks"] == 2 and summary["ranks"]["run"]["blocks"] == 4
    assert len(summary["ecdf"]["evaluations"]) == 6 and len(summary["ecdf"]["tpe"]) == 6
    text = capsys.readouterr().out
    assert "suite finished" in text and "score@6" in text and "Friedman" in text
    assert "[`branin`](branin/report.md)" in (out / "aggregate.md").read_text()

    before = member_trials(out / "data", "suite-branin.tpe.s1")
    assert len(before) == 6
    assert _cli.main(argv) == 0  # the same command again: loaded, nothing run
    assert member_trials(out / "data", "suite-branin.tpe.s1") == before
    assert json.loads((out / "aggregate.json").read_text())["tasks"] == ["branin", "sphere"]


def test_an_interrupted_suite_continues_where_it_stopped(client, target, tmp_path) -> None:
    task = get_task("branin")
    comparison = client.create_comparison(
        name="resume-branin",
        search_space=task.search_space,
        arms=arms_for(["tpe", "random"]),
        seeds=2,
        trials_per_study=6,
    )
    told = {}
    for _ in range(5):  # a run that stopped early: a few trials told, one left running
        trial = comparison.ask()
        value = task.evaluate(trial.params, seed=trial.seed)
        comparison.tell(trial, value)
        told[(trial.study.study_name, trial.number)] = value
    comparison.ask()

    result = run_suite(
        tasks=["branin"],
        samplers=["tpe", "random"],
        seeds=2,
        trials=6,
        workers=1,
        out_dir=tmp_path / "out",
        target=target,
        name="resume",
        out=io.StringIO(),
    )
    for member in comparison.progress():
        trials = client.get_study(member.study_name).trials
        assert len(trials) == 6 and member.n_asked == 6  # topped up, not started again
        for t in trials:
            if (member.study_name, t.number) in told:
                assert t.values == [told[(member.study_name, t.number)]]
    # The trial left running still holds its lease: the comparison is not over yet.
    assert result.results["branin"]["partial"] is True
    members = comparison.members
    states = {state_name(t) for m in members for t in client.get_study(m.study_name).trials}
    assert "running" in states

    stamps = {
        m.study_name: [t.datetime_complete for t in client.get_study(m.study_name).trials]
        for m in comparison.members
    }
    run_suite(
        tasks=["branin"],
        samplers=["tpe", "random"],
        seeds=2,
        trials=6,
        workers=1,
        out_dir=tmp_path / "out",
        target=target,
        name="resume",
        out=io.StringIO(),
    )
    for name, before in stamps.items():
        assert [t.datetime_complete for t in client.get_study(name).trials] == before


def fill(comparison, task) -> None:
    while (trial := comparison.ask()) is not None:
        comparison.tell(trial, task.evaluate(trial.params, seed=trial.seed))


def test_aggregate_of_comparisons_on_a_server(client, tmp_path) -> None:
    branin, sphere = get_task("branin"), get_task("sphere")
    for name, task in (("team-a", branin), ("team-b", sphere)):
        fill(
            client.create_comparison(
                name=name,
                search_space=task.search_space,
                arms=["random", "tpe", "qmc"],
                seeds=2,
                trials_per_study=4,
            ),
            task,
        )
    summary = hposerve.lab.aggregate(
        client,
        ["team-a", client.get_comparison("team-b")],
        optima={"team-a": branin.optimum},
        out_dir=tmp_path / "agg",
    )
    assert summary["tasks"] == ["team-a", "team-b"] and summary["arms"] == ["random", "tpe", "qmc"]
    assert summary["references"] == {"team-a": "optimum", "team-b": "best_seen"}
    assert summary["normalizers"] == {"team-a": "random", "team-b": "random"}
    assert summary["ranks"]["task"]["friedman"] is not None  # 3 arms over 2 tasks
    assert (tmp_path / "agg" / "cd.png").exists()
    assert (tmp_path / "agg" / "team-a" / "results.json").exists()
    # The same numbers as aggregating the comparisons' results.json.
    loaded = {
        n: json.loads((tmp_path / "agg" / n / "results.json").read_text())
        for n in ("team-a", "team-b")
    }
    again = aggregate_results(loaded)
    assert again["normalized_score"] == summary["normalized_score"]
    assert again["win_rates"] == summary["win_rates"]


def test_a_hypervolume_comparison(target, tmp_path) -> None:
    task = get_multi_task("zdt1")
    kwargs = dict(
        task=task,
        samplers=["random", "tpe"],
        seeds=2,
        trials=5,
        workers=2,
        target=target,
        name="mo",
        out=io.StringIO(),
    )
    result = run_multi_comparison(out_dir=tmp_path / "mo", **kwargs)
    results = result.results
    assert result.ok and results["objective"] == "hypervolume_regret"
    assert results["reference_point"] == [1.1, 11.0] and results["optimum"] == 0.0
    for arm in results["arms"].values():
        volume = arm["median_hypervolume"]
        assert all(v is not None and 0 < v <= task.optimal_hypervolume for v in volume)
        assert volume == sorted(volume)  # more trials never dominate less
    assert (tmp_path / "mo" / "hypervolume.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Hypervolume" in (tmp_path / "mo" / "report.md").read_text()
    again = run_multi_comparison(out_dir=tmp_path / "mo2", **kwargs)  # resumed: no new trials
    assert [a["trials_done"] for a in again.results["arms"].values()] == [[5, 5], [5, 5]]
    with pytest.raises(ValueError, match="grid"):
        run_multi_comparison(out_dir=tmp_path / "g", **{**kwargs, "samplers": ["grid"]})


def test_task_groups_and_unknown_tasks() -> None:
    assert resolve_tasks(["branin", "all-multi", "branin"]) == ["branin", "zdt1", "zdt2"]
    assert "rastrigin" in resolve_tasks(["all-synthetic"])
    assert all(
        t.startswith(("hpolib", "nasbench", "hpobench")) for t in resolve_tasks(["all-tabular"])
    )
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        resolve_tasks(["nope"])


def test_suite_command_errors(tmp_path, capsys) -> None:
    argv = ["compare", "suite", "--tasks", "nope", "--out", str(tmp_path)]
    assert _cli.main(argv) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err

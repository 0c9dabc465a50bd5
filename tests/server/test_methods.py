"""Every sampler and every pruner runs through the server."""

from __future__ import annotations

import pytest

from hposerve.client import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    InvalidArgument,
    TrialPruned,
)

SPACE = {
    "x": FloatDistribution(-2.0, 2.0),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "n": IntDistribution(1, 4),
    "c": CategoricalDistribution(["a", "b"]),
}
GRID = {"x": [-1.0, 0.0, 1.0], "lr": [1e-3, 1e-2], "n": [1, 3], "c": ["a", "b"]}


def loss(p: dict) -> float:
    return p["x"] ** 2 + (p["n"] - 2) ** 2 + (p["c"] == "b")


@pytest.mark.parametrize(
    ("sampler", "n_trials"),
    [
        ({"type": "tpe", "seed": 0, "n_startup_trials": 5, "multivariate": True}, 12),
        ({"type": "random", "seed": 0}, 8),
        ({"type": "grid", "search_space": GRID}, 24),
        ({"type": "cmaes", "seed": 0, "sigma0": 0.5}, 12),
        ({"type": "gp", "seed": 0, "n_startup_trials": 4}, 7),
        ({"type": "qmc", "seed": 0, "qmc_type": "halton"}, 8),
        ({"type": "nsga2", "seed": 0, "population_size": 4}, 12),
        ({"type": "nsga3", "seed": 0, "population_size": 4}, 12),
    ],
    ids=lambda v: v["type"] if isinstance(v, dict) else str(v),
)
def test_sampler_runs_fixed_space_and_define_by_run(client, study_name, sampler, n_trials):
    study = client.create_study(name=study_name, sampler=sampler)
    for i in range(n_trials):
        if i % 2:
            trial = study.ask(SPACE)
        else:
            trial = study.ask()
            for name, d in SPACE.items():
                if isinstance(d, FloatDistribution):
                    trial.suggest_float(name, d.low, d.high, log=d.log)
                elif isinstance(d, IntDistribution):
                    trial.suggest_int(name, d.low, d.high)
                else:
                    trial.suggest_categorical(name, d.choices)
        for name, value in trial.params.items():
            assert name in SPACE
            if isinstance(SPACE[name], CategoricalDistribution):
                assert value in SPACE[name].choices
            else:
                assert SPACE[name].low <= value <= SPACE[name].high
        study.tell(trial, loss(trial.params))
    trials = study.trials
    assert len(trials) == n_trials and all(t.state == "complete" for t in trials)
    if sampler["type"] == "grid":  # each grid point exactly once
        assert len({tuple(sorted(t.params.items())) for t in trials}) == 24


def test_bruteforce_enumerates_a_discrete_space(client, study_name):
    study = client.create_study(name=study_name, sampler={"type": "bruteforce", "seed": 0})
    space = {"n": IntDistribution(1, 3), "c": CategoricalDistribution(["a", "b"])}
    seen = set()
    for _ in range(6):
        trial = study.ask(space)
        seen.add((trial.params["n"], trial.params["c"]))
        study.tell(trial, trial.params["n"])
    assert len(seen) == 6


def test_multi_objective_nsga2_pareto_front(client, study_name):
    study = client.create_study(
        name=study_name, directions=["minimize", "maximize"], sampler={"type": "nsga2", "seed": 0}
    )
    for _ in range(20):
        trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
        x = trial.params["x"]
        study.tell(trial, [x**2, x])
    front = study.best_trials
    assert front
    xs = sorted(t.params["x"] for t in front)
    all_trials = study.trials
    # In this problem every trial is Pareto-optimal (one objective rises with the other).
    assert len(xs) == len({t.params["x"] for t in all_trials})


def test_cmaes_start_point_must_cover_the_space(client, study_name):
    study = client.create_study(name=study_name, sampler={"type": "cmaes", "x0": {"x": 0.0}})
    with pytest.raises(
        InvalidArgument, match=r"x0 has no start value for parameters \['lr', 'n'\]"
    ):
        study.ask(SPACE)
    assert study.trials == []  # refused before any trial was created
    trial = study.ask({"x": SPACE["x"], "c": SPACE["c"]})
    study.tell(trial, 1.0)


PRUNERS = [
    {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    {"type": "percentile", "percentile": 25.0, "n_startup_trials": 2},
    {"type": "successive_halving", "min_resource": 1, "reduction_factor": 2},
    {"type": "hyperband", "min_resource": 1, "max_resource": 8, "reduction_factor": 2},
    {"type": "threshold", "upper": 3.0},
    {"type": "patient", "patience": 1, "wrapped_pruner": {"type": "median", "n_startup_trials": 2}},
    {"type": "wilcoxon", "p_threshold": 0.1, "n_startup_steps": 2},
    {"type": "none"},
]


@pytest.mark.parametrize("pruner", PRUNERS, ids=lambda p: p["type"])
def test_pruner_decides_through_report(client, study_name, pruner):
    study = client.create_study(
        name=study_name, sampler={"type": "random", "seed": 0}, pruner=pruner
    )

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 4.0)
        for step in range(8):
            # Bad trials stay bad at every step: a sensible pruner stops some of them.
            trial.report(x + 1.0 / (step + 1), step)
            if trial.should_prune():
                raise TrialPruned()
        return x

    study.optimize(objective, n_trials=16)
    states = [t.state for t in study.trials]
    assert all(s in ("complete", "pruned") for s in states) and len(states) == 16
    if pruner["type"] == "none":
        assert "pruned" not in states
    elif pruner["type"] in ("median", "percentile", "threshold", "successive_halving"):
        assert "pruned" in states
        pruned = [t for t in study.trials if t.state == "pruned"]
        assert all(t.intermediate_values for t in pruned)


def test_pruning_a_multi_objective_study_is_refused(client, study_name):
    with pytest.raises(InvalidArgument, match="multi-objective"):
        client.create_study(
            name=study_name, directions=["minimize", "minimize"], pruner={"type": "median"}
        )

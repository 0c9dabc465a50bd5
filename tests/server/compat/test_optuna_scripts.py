"""Optuna scripts, run unchanged in-process and against a real server: the outputs are equal.

Each script takes the ``create_study`` to use (``optuna.create_study``, or the client's, the
one-line change) and returns what it observed. Seeded and with one worker, the two runs must
return exactly the same: parameters, values, states, attributes, best trials, dataframes.
"""

from __future__ import annotations

import functools
import logging
import math
import pickle
import warnings

import optuna
import pytest
from optuna.samplers import NSGAIISampler, RandomSampler, TPESampler
from optuna.study import MaxTrialsCallback, StudyDirection
from optuna.trial import TrialState

from hposerve.client import InvalidArgument

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def quadratic(trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    n = trial.suggest_int("n", 1, 5)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    for step in range(4):
        trial.report((x - 2) ** 2 + n + step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return (x - 2) ** 2 + n + (0.5 if kind == "b" else 0.0)


def summary(study) -> list[tuple]:
    return [
        (t.number, t.state.name, t.params, t.values, t.intermediate_values, t.user_attrs)
        for t in study.trials
    ]


def script_samplers_pruners(create_study):
    study = create_study(
        sampler=TPESampler(seed=0, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        direction="minimize",
    )
    study.optimize(quadratic, n_trials=20)
    assert study.direction == StudyDirection.MINIMIZE
    states = [t.state for t in study.trials]
    assert all(s.is_finished() for s in states)
    return summary(study), study.best_params, study.best_value, TrialState.PRUNED in states


def script_callbacks(create_study):
    study = create_study(sampler=RandomSampler(seed=1))
    seen = []
    study.optimize(
        quadratic,
        n_trials=30,
        callbacks=[
            lambda s, t: seen.append((t.number, t.state == TrialState.COMPLETE)),
            MaxTrialsCallback(6, states=(TrialState.COMPLETE,)),
        ],
    )
    return seen, summary(study)


def script_ask_tell(create_study):
    study = create_study(sampler=TPESampler(seed=3), direction="maximize")
    study.enqueue_trial({"x": 1.5, "n": 2})
    for _ in range(8):
        trial = study.ask()
        x = trial.suggest_float("x", -3, 3)
        n = trial.suggest_int("n", 1, 4)
        trial.set_user_attr("n_as_int", n)
        study.tell(trial.number, -((x - 1) ** 2) + n)  # by number
    fixed = study.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})
    study.tell(fixed, state=TrialState.FAIL)
    study.tell(study.ask(), float("nan"))  # NaN: failed, as Optuna does (with a warning)
    out = summary(study)
    assert isinstance(study.trials[0].user_attrs["n_as_int"], int)
    return out, study.best_trial.number, study.direction == StudyDirection.MAXIMIZE


def script_multi_objective(create_study):
    study = create_study(
        directions=["minimize", "maximize"], sampler=NSGAIISampler(seed=0, population_size=4)
    )
    study.set_metric_names(["loss", "gain"])

    def objective(trial):
        x = trial.suggest_float("x", 0, 2)
        y = trial.suggest_float("y", 0, 2)
        return x**2 + y, x - y**2

    study.optimize(objective, n_trials=12)
    return summary(study), sorted(t.number for t in study.best_trials), study.metric_names


def script_constraints(create_study):
    study = create_study(sampler=TPESampler(seed=0, n_startup_trials=4))

    def objective(trial):
        x = trial.suggest_float("x", -5, 5)
        trial.set_constraint("x_at_least_1", 1 - x)  # feasible when x >= 1
        return x**2

    study.optimize(objective, n_trials=16)
    best = study.best_trial
    assert best.constraints["x_at_least_1"] <= 0  # the best trial is a feasible one
    return summary(study), [t.constraints for t in study.trials], best.number


def script_attrs_and_dataframe(create_study):
    study = create_study(study_name="frame", sampler=RandomSampler(seed=5))
    study.set_user_attr("owner", "lab")
    study.set_user_attr("epochs", 12)

    def objective(trial):
        trial.set_user_attr("width", 64)
        return trial.suggest_float("lr", 1e-4, 1e-1, log=True)

    study.optimize(objective, n_trials=5)
    frame = study.trials_dataframe().drop(
        columns=["datetime_start", "datetime_complete", "duration"]
    )
    return (
        study.study_name,
        study.user_attrs,
        type(study.user_attrs["epochs"]),
        list(frame.columns),
        frame.to_dict("list"),
    )


SCRIPTS = [
    script_samplers_pruners,
    script_callbacks,
    script_ask_tell,
    script_multi_objective,
    script_constraints,
    script_attrs_and_dataframe,
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__.removeprefix("script_"))
def test_script_runs_the_same_remotely(client, script):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = script(optuna.create_study)
        remote = script(client.create_study)
    assert remote == local


def test_parallel_jobs_share_the_budget(client):
    study = client.create_study(sampler=RandomSampler(seed=0))
    study.optimize(quadratic, n_trials=9, n_jobs=3, gc_after_trial=True, show_progress_bar=True)
    assert len(study.trials) == 9
    assert all(t.state.is_finished() for t in study.trials)


def test_log_lines_are_optunas(client, caplog):
    study = client.create_study(sampler=RandomSampler(seed=0))
    with caplog.at_level(logging.INFO, logger="hposerve"):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("hposerve")]
    assert lines[0].startswith("Trial 0 finished with value: ")
    assert "and parameters: {'x': " in lines[0] and "Best is trial " in lines[1]


def test_a_distribution_conflict_raises_as_in_optuna(client):
    for create_study in (optuna.create_study, client.create_study):
        trial = create_study().ask()
        trial.suggest_float("e", 0, 1)
        with pytest.raises(ValueError, match="Cannot set different distribution kind"):
            trial.suggest_int("e", 0, 10)


def test_storage_and_custom_samplers_are_refused_clearly(client):
    with pytest.raises(InvalidArgument, match="drop the storage argument"):
        client.create_study(storage="sqlite:///x.db")

    class MySampler(RandomSampler):
        pass

    with pytest.raises(InvalidArgument, match="dict form"):
        client.create_study(sampler=MySampler())
    with pytest.raises(InvalidArgument, match="dict form"):
        client.create_study(sampler=TPESampler(gamma=lambda n: 2))


def test_names_are_generated_and_studies_listed_loaded_deleted(client):
    study = client.create_study(direction=StudyDirection.MAXIMIZE)
    assert study.study_name.startswith("no-name-")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    (summary,) = client.get_all_study_summaries()
    assert summary.study_name == study.study_name and summary.direction == "maximize"
    assert summary.best_trial.number in (0, 1) and summary.n_trials == 2
    assert client.load_study(study_name=study.study_name).direction == StudyDirection.MAXIMIZE
    client.delete_study(study_name=study.study_name)
    assert client.get_all_study_names() == []


def test_a_study_pickles_without_its_token(client):
    study = client.create_study(study_name="pickled")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    data = pickle.dumps(study)
    assert b"authorization" not in data
    again = pickle.loads(data)
    assert again.study_name == "pickled" and len(again.trials) == 1


def test_add_trials_then_cmaes_warm_start_from_a_study_on_the_server(client):
    pytest.importorskip("cmaes")
    source = client.create_study(study_name="source")
    dist = optuna.distributions.FloatDistribution(-3, 3)
    xs = [-3 + 0.25 * i for i in range(24)]  # CMA-ES warm-starts from the best 10%
    source.add_trials(
        optuna.trial.create_trial(
            params={"x": x, "y": -x / 2}, distributions={"x": dist, "y": dist}, value=x * x
        )
        for x in xs
    )
    assert [t.value for t in source.trials] == [x * x for x in xs]
    assert [t.state for t in source.trials] == [TrialState.COMPLETE] * len(xs)
    warm = client.create_study(
        study_name="warm", sampler={"type": "cmaes", "seed": 0, "source_study": "source"}
    )
    warm.optimize(lambda t: t.suggest_float("x", -3, 3) ** 2 + t.suggest_float("y", -3, 3), 3)
    # In-process, the same sampler built with the same source trials suggests the same.
    local = optuna.create_study(
        sampler=optuna.samplers.CmaEsSampler(seed=0, source_trials=source.to_optuna().trials)
    )
    local.optimize(lambda t: t.suggest_float("x", -3, 3) ** 2 + t.suggest_float("y", -3, 3), 3)
    assert [t.params for t in warm.trials] == [t.params for t in local.trials]
    with pytest.raises(Exception, match="source study"):
        client.create_study(sampler={"type": "cmaes", "source_study": "missing"})


@functools.cache
def _plots() -> list[str]:
    return [n for n in optuna.visualization.__all__ if n.startswith("plot_")]


def test_to_optuna_feeds_visualization_importance_and_the_terminator(client):
    pytest.importorskip("plotly")
    study = client.create_study(study_name="viz", sampler=TPESampler(seed=0))
    study.set_metric_names(["loss"])
    study.optimize(quadratic, n_trials=12)
    real = study.to_optuna()
    assert isinstance(real, optuna.Study) and real.metric_names == ["loss"]
    assert [(t.params, t.values, t.state) for t in real.trials] == [
        (t.params, t.values, t.state) for t in study.trials
    ]
    assert real.trials[0].intermediate_values == study.trials[0].intermediate_values
    for name in _plots():
        kwargs = {"params": ["x", "n"]} if name in ("plot_contour", "plot_rank") else {}
        if name == "plot_pareto_front" or name == "plot_hypervolume_history":
            continue  # multi-objective only
        getattr(optuna.visualization, name)(real, **kwargs)
        getattr(optuna.visualization.matplotlib, name)(real, **kwargs)
    importances = optuna.importance.get_param_importances(real)
    assert set(importances) == {"x", "n", "kind"} and math.isclose(sum(importances.values()), 1)
    from optuna.terminator import report_cross_validation_scores  # noqa: F401 - importable

    optuna.terminator.Terminator().should_terminate(real)


def test_a_pickled_study_holds_no_token_and_reuses_the_live_client(target):
    from hposerve.client import Client, ClientConfig

    with Client(target, config=ClientConfig(token="hps_not_to_be_pickled")) as client:
        study = client.create_study(study_name="secret")
        data = pickle.dumps(study)
        assert b"hps_not_to_be_pickled" not in data
        again = pickle.loads(data)
        assert again._transport is study._transport  # same process: the live client's
        again.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        assert len(study.trials) == 1

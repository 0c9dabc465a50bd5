"""Coarse-to-fine search: narrow_space on its own, and Client.refine through a real server."""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import optuna
import pytest

from hposerve.client import (
    CategoricalDistribution,
    FailedPrecondition,
    FloatDistribution,
    IntDistribution,
    InvalidArgument,
    narrow_space,
)
from hposerve.client._refine import MIN_WIDTH, REFINED_FROM, _copy_trial, best_trials, contains


@dataclass
class T:
    """The little of a trial that narrow_space reads."""

    params: dict[str, Any]
    values: list[float] | None
    state: str = "complete"
    distributions: dict[str, Any] = field(default_factory=dict)


def trials(values: list[float], **params: list[Any]) -> list[T]:
    return [T({k: v[i] for k, v in params.items()}, [value]) for i, value in enumerate(values)]


LR = FloatDistribution(1e-6, 1.0, log=True)
X = FloatDistribution(0.0, 1.0)

# narrow_space


def test_log_bounds_are_geometric_around_the_best():
    ts = trials([0.0, 1.0, 5.0], lr=[1e-4, 1e-2, 1e-6])
    space = narrow_space(ts, {"lr": LR}, top=2, direction="minimize", margin=0.5)
    # log10 span [-4, -2], widened by half its width each side: [-5, -1].
    assert space["lr"].log
    assert space["lr"].low == pytest.approx(1e-5)
    assert space["lr"].high == pytest.approx(1e-1)
    assert math.sqrt(space["lr"].low * space["lr"].high) == pytest.approx(1e-3)


def test_linear_bounds_are_clipped_at_the_original_bounds():
    ts = trials([0.0, 0.1, 9.0], x=[0.0, 0.2, 0.9])
    space = narrow_space(ts, {"x": X}, top=2, direction="minimize", margin=0.5)
    assert space["x"] == FloatDistribution(0.0, pytest.approx(0.3))


def test_top_trials_sharing_one_value_keep_a_minimal_width_inside_the_bounds():
    ts = trials([0.0, 0.0, 9.0], x=[0.5, 0.5, 0.1], lr=[1.0, 1.0, 1e-6])
    space = narrow_space(ts, {"x": X, "lr": LR}, top=2, direction="minimize")
    assert (space["x"].low, space["x"].high) == (pytest.approx(0.45), pytest.approx(0.55))
    # At the upper bound: the window slides inside instead of being cut in half.
    assert space["lr"].high == 1.0
    decades = math.log10(space["lr"].high / space["lr"].low)
    assert decades == pytest.approx(MIN_WIDTH * 6)


def test_int_stays_int_and_on_its_grid():
    ts = trials([0.0, 1.0, 9.0], n=[40, 45, 100])
    space = narrow_space(ts, {"n": IntDistribution(0, 100, step=5)}, top=2, direction="minimize")
    # [40, 45] widened by 2.5 each side, then out to the grid of step 5.
    assert space["n"] == IntDistribution(35, 50, False, 5)
    assert all(isinstance(v, int) for v in (space["n"].low, space["n"].high))


def test_int_log_and_stepped_float():
    ts = trials([0.0, 1.0, 9.0], n=[16, 64, 1], x=[0.25, 0.5, 1.0])
    space = narrow_space(
        ts,
        {"n": IntDistribution(1, 1024, log=True), "x": FloatDistribution(0.0, 1.0, step=0.25)},
        top=2,
        direction="minimize",
    )
    assert space["n"] == IntDistribution(8, 128, True, 1)
    assert space["x"] == FloatDistribution(0.0, 0.75, False, 0.25)


def test_categorical_keeps_only_the_top_choices_in_their_order():
    ts = trials([0.0, 1.0, 2.0, 9.0], c=["c", 1, "a", True])
    dist = CategoricalDistribution(("a", "b", "c", True, 1))
    space = narrow_space(ts, {"c": dist}, top=3, direction="minimize")
    assert space["c"] == CategoricalDistribution(("a", "c", 1))  # 1 is not True


def test_top_as_count_or_fraction():
    values = [float(v) for v in range(10)]
    ts = trials(values, x=[v / 10 for v in values])
    by_count = narrow_space(ts, {"x": X}, top=3, direction="minimize", margin=0.0)
    assert by_count == narrow_space(ts, {"x": X}, top=0.3, direction="minimize", margin=0.0)
    assert (by_count["x"].low, by_count["x"].high) == (0.0, pytest.approx(0.2))
    assert len(best_trials(ts, top=0.25, direction="minimize")) == 3  # rounded up
    assert len(best_trials(ts, top=0.01, direction="minimize")) == 1  # at least one
    assert len(best_trials(ts, top=50, direction="minimize")) == 10


def test_direction_states_and_conditional_parameters():
    ts = trials([0.0, 5.0, 9.0], x=[0.1, 0.5, 0.9])
    ts.append(T({"x": 0.0}, [100.0], state="failed"))
    ts.append(T({"x": 0.05}, None, state="running"))
    space = {"x": X, "only_in_others": LR}
    narrowed = narrow_space(ts, space, top=1, direction="maximize", margin=0.0)
    assert narrowed["x"].low <= 0.9 <= narrowed["x"].high
    assert narrowed["only_in_others"] == LR


def test_multi_objective_takes_the_pareto_front_first():
    ts = [
        T({"x": 0.1}, [0.0, 3.0]),
        T({"x": 0.9}, [3.0, 0.0]),
        T({"x": 0.5}, [4.0, 4.0]),  # dominated by both
    ]
    best = best_trials(ts, top=2, direction=["minimize", "minimize"])
    assert [t.params["x"] for t in best] == [0.1, 0.9]
    best = best_trials(ts, top=1, direction=["maximize", "maximize"])
    assert [t.params["x"] for t in best] == [0.5]


def test_optuna_trials_and_distributions_are_accepted():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    dists = {
        "lr": optuna.distributions.FloatDistribution(1e-6, 1.0, log=True),
        "k": optuna.distributions.CategoricalDistribution(["a", "b"]),
    }
    study.optimize(
        lambda t: (
            -math.log10(t.suggest_float("lr", 1e-6, 1.0, log=True))
            + (t.suggest_categorical("k", ["a", "b"]) == "b")
        ),
        n_trials=10,
    )
    space = narrow_space(study.trials, dists, top=3, direction=study.direction)
    assert isinstance(space["lr"], FloatDistribution) and space["lr"].log
    for trial in sorted(study.trials, key=lambda t: t.value)[:3]:
        assert all(contains(space[n], v) for n, v in trial.params.items())


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"top": 0}, "at least 1"),
        ({"top": 1.5}, "(0, 1]"),
        ({"top": True}, "int or a float"),
        ({"margin": -1.0}, "margin"),
        ({"direction": "up"}, "direction"),
    ],
)
def test_bad_arguments(kwargs, words):
    kwargs = {"direction": "minimize", **kwargs}
    with pytest.raises(InvalidArgument, match=re.escape(words)):
        narrow_space(trials([1.0], x=[0.5]), {"x": X}, **kwargs)


def test_no_complete_trial_is_refused():
    with pytest.raises(InvalidArgument, match="no complete trial"):
        narrow_space([T({"x": 0.5}, None, "failed")], {"x": X}, direction="minimize")


# Client.refine through the server

SPACE = {"lr": LR, "x": X}


def f(params: dict[str, Any]) -> float:
    return (math.log10(params["lr"]) + 3) ** 2 + (params["x"] - 0.3) ** 2


def coarse_study(client, name: str, n_trials: int = 40):
    study = client.create_study(name=name, sampler={"type": "random", "seed": 0})
    study.optimize(lambda t: f(t.params), n_trials=n_trials, search_space=SPACE)
    return study


def inside(space, original) -> bool:
    return all(
        original[n].low <= d.low <= d.high <= original[n].high and d.log == original[n].log
        for n, d in space.items()
    )


def test_refine_end_to_end(client, study_name):
    coarse = coarse_study(client, study_name)
    coarse_best = coarse.best_trial
    fine, space = client.refine(
        source=study_name, name=f"{study_name}-fine", sampler={"type": "tpe", "seed": 0}
    )
    assert fine.directions == ["minimize"]
    assert inside(space, SPACE)
    assert all(contains(space[n], v) for n, v in coarse_best.params.items())
    # Narrower: the log range shrinks from 6 decades.
    assert math.log10(space["lr"].high / space["lr"].low) < 4

    # Warm start: the source trials inside the space, complete, with the source's values.
    source = {t.name: t for t in coarse.get_trials(states=["complete"])}
    expected = [t for t in source.values() if all(contains(space[n], t.params[n]) for n in space)]
    warm = fine.trials
    assert len(warm) == len(expected) >= 8  # the top 20 % of 40 are inside by construction
    for trial in warm:
        assert trial.state == "complete"
        origin = source[trial.user_attrs[REFINED_FROM]]
        assert trial.values == origin.values
        assert trial.params == origin.params
    assert fine.best_value == coarse_best.value

    # The fine search, with that evidence, beats the coarse best with its own new trials.
    fine.optimize(lambda t: f(t.params), n_trials=20, search_space=space)
    new = [t for t in fine.get_trials(states=["complete"]) if REFINED_FROM not in t.user_attrs]
    assert len(new) == 20
    assert all(all(contains(space[n], v) for n, v in t.params.items()) for t in new)
    assert min(t.value for t in new) <= coarse_best.value


def test_refine_again_does_not_warm_start_twice(client, study_name):
    coarse = coarse_study(client, study_name, n_trials=15)
    fine, space = client.refine(source=coarse, name=f"{study_name}-fine", top=5)
    n = len(fine.trials)
    coarse.optimize(lambda t: f(t.params), n_trials=5, search_space=SPACE)  # the source moves on
    again, space_again = client.refine(
        source=coarse, name=f"{study_name}-fine", top=5, load_if_exists=True
    )
    assert len(again.trials) == n
    assert space_again == space  # the space the study's trials were asked with

    # Copying a source trial again (a retry, or a second process racing past the check for
    # existing trials) reuses the first copy: enqueue and ask carry request ids.
    copied = {t.user_attrs[REFINED_FROM] for t in fine.trials}
    for trial in coarse.get_trials(states=["complete"]):
        if trial.name in copied:
            _copy_trial(fine, space, trial)
    assert len(fine.trials) == n
    assert all(t.state == "complete" for t in fine.trials)


def test_concurrent_refines_into_one_study_copy_each_trial_once(client, study_name):
    coarse = coarse_study(client, study_name, n_trials=20)
    results: list[Any] = []

    def refine() -> None:
        results.append(
            client.refine(source=coarse, name=f"{study_name}-fine", top=0.5, load_if_exists=True)
        )

    threads = [threading.Thread(target=refine) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    trials = results[0][0].trials
    origins = [t.user_attrs[REFINED_FROM] for t in trials]
    assert len(origins) == len(set(origins))
    assert all(t.state == "complete" for t in trials)


def test_refine_keeps_directions_and_needs_a_complete_trial(client, study_name):
    source = client.create_study(name=study_name, direction="maximize")
    with pytest.raises(FailedPrecondition, match="no complete trial"):
        client.refine(source=study_name, name=f"{study_name}-fine")
    source.optimize(lambda t: -f(t.params), n_trials=5, search_space=SPACE)
    fine, space = client.refine(source=study_name, name=f"{study_name}-fine", top=1)
    assert fine.directions == ["maximize"]
    assert fine.best_trial.params == source.best_trial.params

"""The client's Study, Trial and FrozenTrial carry Optuna's public API; its enums are Optuna's."""

from __future__ import annotations

import optuna
import pytest

from hposerve.client import FrozenTrial, StudyDirection, TrialState

# What cannot work remotely, and must say so (NotImplementedError naming why).
REFUSED = {"relative_params", "storage"}


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_every_public_attribute_of_optunas_classes_is_there(client):
    # Instances, since some of ours are instance attributes where Optuna has properties.
    study = client.create_study(sampler={"type": "random", "seed": 0})
    trial = study.ask()
    frozen = study.tell(trial, 1.0)
    local = optuna.create_study()
    pairs = [
        (study, local),
        (trial, local.ask()),
        (frozen, local.get_trials()[0] if local.optimize(lambda t: 1.0, 1) is None else None),
    ]
    for ours, theirs in pairs:
        missing = _public(type(theirs)) - set(dir(ours))
        assert not missing, f"{type(ours).__name__} lacks {sorted(missing)}"


def test_instance_attributes_of_a_live_trial(client):
    study = client.create_study(sampler={"type": "random", "seed": 0})
    trial = study.ask()
    local = optuna.create_study().ask()
    for name in {"study", "number", "params", "distributions", "user_attrs", "datetime_start"}:
        assert hasattr(local, name) and hasattr(trial, name)
    for name in REFUSED:
        with pytest.raises(NotImplementedError, match="server"):
            getattr(trial, name)
    trial.set_constraint("c", 0.5)
    assert trial.constraints == {"c": 0.5}
    frozen = study.tell(trial, 1.0)
    assert frozen.constraints == {"c": 0.5}
    assert frozen.system_attrs == {"constraints:c": 0.5}
    assert frozen.should_prune() is False


def test_enums_equal_optunas_and_their_names():
    assert TrialState.COMPLETE == optuna.trial.TrialState.COMPLETE
    assert optuna.trial.TrialState.PRUNED == TrialState.PRUNED
    assert TrialState.FAIL in (optuna.trial.TrialState.FAIL,)
    assert TrialState.COMPLETE in {optuna.trial.TrialState.COMPLETE}
    assert [s.value for s in TrialState] == [s.value for s in optuna.trial.TrialState]
    assert [s.name for s in TrialState] == [s.name for s in optuna.trial.TrialState]
    assert [d.name for d in StudyDirection] == [d.name for d in optuna.study.StudyDirection]
    assert StudyDirection.MAXIMIZE == optuna.study.StudyDirection.MAXIMIZE
    assert TrialState.COMPLETE == "complete" and TrialState.FAIL == "failed"
    assert TrialState.COMPLETE != "pruned" and StudyDirection.MINIMIZE == "minimize"
    assert TrialState.PRUNED.is_finished() and not TrialState.WAITING.is_finished()
    assert str(TrialState.COMPLETE) == str(optuna.trial.TrialState.COMPLETE)


def test_a_frozen_trial_reruns_an_objective_like_optunas():
    frozen = FrozenTrial(
        number=0,
        state="complete",
        values=[1.0],
        params={"x": 0.5},
        distributions={},
        intermediate_values={},
        user_attrs={},
        datetime_start=None,
        datetime_complete=None,
    )
    assert frozen.state == TrialState.COMPLETE
    assert frozen.suggest_float("x", 0, 1) == 0.5
    with pytest.raises(ValueError, match="not found"):
        frozen.suggest_int("n", 0, 3)

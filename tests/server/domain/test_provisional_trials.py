"""An ask samples on a provisional trial and stores it in one record, choosing what Optuna's
own ``study.ask(space)`` chooses, with the sampler's own trial attributes kept."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from hposerve.server.domain import _optuna
from hposerve.server.domain._provisional import trial_count

SPACE = {
    "x": FloatDistribution(-5.0, 5.0),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "n": IntDistribution(1, 8),
    "act": CategoricalDistribution(["relu", "tanh"]),
}
NUMERIC = {k: v for k, v in SPACE.items() if k != "act"}

SAMPLERS: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
    "random": lambda: optuna.samplers.RandomSampler(seed=1),
    "tpe": lambda: optuna.samplers.TPESampler(seed=1, n_startup_trials=5, multivariate=True),
    "tpe-liar": lambda: optuna.samplers.TPESampler(seed=1, n_startup_trials=5, constant_liar=True),
    "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=1, n_startup_trials=3),
    "qmc": lambda: optuna.samplers.QMCSampler(seed=1),
    "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=1, population_size=4),
    "grid": lambda: optuna.samplers.GridSampler(
        {"x": [-1.0, 0.0, 1.0], "n": [1, 2, 3], "act": ["relu", "tanh"]}, seed=1
    ),
    "gp": lambda: optuna.samplers.GPSampler(seed=1, n_startup_trials=4),
}


def _space(kind: str) -> dict[str, optuna.distributions.BaseDistribution]:
    if kind == "grid":
        return {
            "x": FloatDistribution(-5.0, 5.0),
            "n": IntDistribution(1, 8),
            "act": SPACE["act"],
        }
    return NUMERIC if kind in ("cmaes", "gp") else SPACE


def _value(params: dict[str, object]) -> float:
    return sum(float(v) for v in params.values() if not isinstance(v, str))


def _run(study: optuna.Study, ask: Callable[[optuna.Study], optuna.Trial], n: int) -> None:
    for i in range(n):
        trial = ask(study)
        # Two at a time stay running across an ask, as with concurrent trainers.
        if i % 3 == 2:
            continue
        _optuna.tell(study, trial, [_value(trial.params)], TrialState.COMPLETE)


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_an_ask_chooses_what_optunas_ask_chooses(kind: str) -> None:
    space = _space(kind)
    n = 12 if kind == "gp" else 24
    theirs = optuna.create_study(sampler=SAMPLERS[kind]())
    ours = optuna.create_study(sampler=SAMPLERS[kind]())
    _run(theirs, lambda s: s.ask(space), n)
    _run(ours, lambda s: _optuna.new_trial(s, space), n)
    for a, b in zip(theirs.trials, ours.trials, strict=True):
        assert (a.number, a.state, a.params) == (b.number, b.state, b.params), kind
        assert a.system_attrs == b.system_attrs, kind


def test_an_ask_is_one_journal_record_with_everything_the_sampler_wrote(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "journal.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    grid = {"x": [-1.0, 1.0], "n": [1, 2]}
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.GridSampler(grid))
    space = {"x": FloatDistribution(-5.0, 5.0), "n": IntDistribution(1, 8)}
    before = len(path.read_text().splitlines())
    trial = _optuna.new_trial(study, space, system_attrs={"hposerve:lease": 1.0})
    records = path.read_text().splitlines()[before:]
    assert len(records) == 1
    stored = study.trials[-1]
    assert stored.params == trial.params and set(stored.params) == {"x", "n"}
    assert {"grid_id", "search_space", "hposerve:lease"} <= set(stored.system_attrs)
    assert optuna.load_study(study_name=study.study_name, storage=storage).trials[-1] == stored


@pytest.mark.parametrize("hint", [None, 0, 4, 5, 6, 100])
def test_the_trial_count_is_exact_whatever_the_hint(hint: int | None) -> None:
    study = optuna.create_study()
    for _ in range(5):
        study.add_trial(optuna.trial.create_trial(value=0.0))
    assert trial_count(study._storage, study._study_id, hint=hint) == 5


def test_the_sampler_sees_the_number_the_trial_gets() -> None:
    seen: list[int] = []

    class Recording(optuna.samplers.RandomSampler):
        def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            seen.append(trial.number)

    study = optuna.create_study(sampler=Recording(seed=0))
    study.add_trial(optuna.trial.create_trial(value=0.0))
    space = {"x": FloatDistribution(0.0, 1.0)}
    numbers = [
        _optuna.new_trial(study, space).number,
        _optuna.new_trial(study, space, number=2).number,
    ]
    assert seen == numbers == [1, 2]

"""The demo task: search space, training, determinism and pruning, with in-process Optuna."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
import torch

from hposerve.lab import _mlp_digits
from hposerve.lab._mlp_digits import (
    SCHEDULES,
    load_data,
    objective,
    suggest_params,
    train,
)

# One thread: the tests share 2 cores with other suites, and torch's pool would only contend.
torch.set_num_threads(1)

SENSIBLE: dict[str, Any] = {
    "lr": 3e-3,
    "batch_size": 64,
    "weight_decay": 1e-4,
    "dropout": 0.2,
    "n_layers": 2,
    "n_units": 64,
    "schedule": "cosine",
}
BASE = {k: v for k, v in SENSIBLE.items() if k != "schedule"}


class StubTrial:
    """A fixed-parameter trial that records reports and prunes from a given epoch on."""

    def __init__(self, params: dict[str, Any], *, prune_from: int | None = None) -> None:
        self._fixed = optuna.trial.FixedTrial(params)
        self._prune_from = prune_from
        self.reports: list[tuple[int, float]] = []

    def suggest_float(self, name: str, low: float, high: float, **kwargs: Any) -> float:
        return self._fixed.suggest_float(name, low, high, **kwargs)

    def suggest_int(self, name: str, low: int, high: int, **kwargs: Any) -> int:
        return self._fixed.suggest_int(name, low, high, **kwargs)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._fixed.suggest_categorical(name, choices)

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self._prune_from is not None and self.reports[-1][0] >= self._prune_from


def test_data_is_a_fixed_stratified_split_scaled_to_unit_range() -> None:
    data = load_data()
    assert load_data() is data  # cached per process
    assert data.x_train.shape == (1437, 64) and data.x_val.shape == (360, 64)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) <= 1.0
    # Stratified: every class holds about a tenth of the validation set.
    counts = torch.bincount(data.y_val, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37


def test_search_space_and_conditional_parameters() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: len(suggest_params(t)), n_trials=60)
    seen = set()
    for trial in study.trials:
        params = trial.params
        schedule = params["schedule"]
        seen.add(schedule)
        assert 1e-5 <= params["lr"] <= 1e-1
        assert 16 <= params["batch_size"] <= 512
        assert 1e-5 <= params["weight_decay"] <= 1e-1
        assert 0.1 <= params["dropout"] <= 0.5
        assert 1 <= params["n_layers"] <= 4
        assert 32 <= params["n_units"] <= 256
        # Each conditional parameter exists exactly on its own branch.
        assert ("step_gamma" in params) == (schedule == "step")
        assert ("warmup_epochs" in params) == (schedule == "warmup_cosine")
        if schedule == "step":
            assert 0.1 <= params["step_gamma"] <= 0.9
        if schedule == "warmup_cosine":
            assert 1 <= params["warmup_epochs"] <= 3
    assert seen == set(SCHEDULES)
    distributions = study.trials[0].distributions
    for name in ("lr", "batch_size", "weight_decay", "n_units"):
        distribution = distributions[name]
        assert isinstance(
            distribution,
            optuna.distributions.FloatDistribution | optuna.distributions.IntDistribution,
        )
        assert distribution.log, name


@pytest.mark.parametrize(
    ("schedule", "extra"),
    [("cosine", {}), ("step", {"step_gamma": 0.5}), ("warmup_cosine", {"warmup_epochs": 3})],
)
def test_suggest_params_asks_only_the_branch_it_takes(schedule: str, extra: dict[str, Any]) -> None:
    # FixedTrial raises for a parameter it was not given, so a stray suggestion would fail.
    params = suggest_params(optuna.trial.FixedTrial({**BASE, "schedule": schedule, **extra}))
    assert params == {**BASE, "schedule": schedule, **extra}


@pytest.mark.parametrize(
    ("schedule", "extra"),
    [("cosine", {}), ("step", {"step_gamma": 0.5}), ("warmup_cosine", {"warmup_epochs": 3})],
)
def test_every_schedule_trains(schedule: str, extra: dict[str, Any]) -> None:
    # warmup_epochs=3 > epochs=2: training ends inside the warmup, which must still work.
    loss = train({**BASE, "schedule": schedule, **extra}, epochs=2, seed=0)
    assert math.isfinite(loss) and loss > 0


def test_warmup_ramps_to_the_full_learning_rate_then_anneals() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    scheduler = _mlp_digits._make_scheduler(
        optimizer, {"schedule": "warmup_cosine", "warmup_epochs": 2}, epochs=10
    )
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.1 / 3) and lrs[1] == pytest.approx(0.2 / 3)
    assert lrs[2] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:], strict=False))


def test_loss_decreases_with_sensible_params() -> None:
    losses: list[float] = []
    final = train(SENSIBLE, epochs=5, seed=0, report=lambda loss, epoch: losses.append(loss))
    assert len(losses) == 5
    assert final == losses[-1]  # the final loss, not the best one
    assert losses[-1] < losses[0] / 2
    assert final < 0.5  # ln(10) = 2.30 is chance level


def test_training_is_deterministic_for_a_seed() -> None:
    def losses(seed: int) -> list[float]:
        seen: list[float] = []
        train(SENSIBLE, epochs=3, seed=seed, report=lambda loss, epoch: seen.append(loss))
        return seen

    assert losses(1) == losses(1)
    assert losses(1) != losses(2)


def test_a_raising_report_stops_training() -> None:
    epochs_seen: list[int] = []

    def report(loss: float, epoch: int) -> None:
        epochs_seen.append(epoch)
        if epoch == 1:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        train(SENSIBLE, epochs=10, seed=0, report=report)
    assert epochs_seen == [0, 1]


def test_objective_reports_every_epoch_and_raises_trial_pruned() -> None:
    trial = StubTrial(SENSIBLE, prune_from=2)
    with pytest.raises(optuna.TrialPruned) as caught:
        objective(trial, epochs=10)
    assert [step for step, _ in trial.reports] == [0, 1, 2]
    # The hposerve client prunes on any exception class of this name.
    assert type(caught.value).__name__ == "TrialPruned"

    complete = StubTrial(SENSIBLE)
    value = objective(complete, epochs=3)
    assert [step for step, _ in complete.reports] == [0, 1, 2]
    assert value == complete.reports[-1][1]


def test_objective_in_an_optuna_study_with_median_pruning() -> None:
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    study.optimize(lambda t: objective(t, epochs=2), n_trials=5)
    states = [t.state for t in study.trials]
    assert set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert states[0] == optuna.trial.TrialState.COMPLETE  # nothing to compare with yet
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == [0, 1]
            assert trial.value == trial.intermediate_values[1]
    assert math.isfinite(study.best_value)


def test_divergence_raises_floating_point_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_mlp_digits, "_validation_loss", lambda model, data: math.nan)
    reported: list[float] = []
    with pytest.raises(FloatingPointError, match="diverged"):
        train(SENSIBLE, epochs=3, seed=0, report=lambda loss, epoch: reported.append(loss))
    assert reported == []  # a non-finite value is never reported (the server would refuse it)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="epochs"):
        train(SENSIBLE, epochs=0, seed=0)
    with pytest.raises(ValueError, match="schedule"):
        train({**SENSIBLE, "schedule": "linear"}, epochs=1, seed=0)

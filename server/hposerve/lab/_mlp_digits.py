"""The demo task: a PyTorch MLP on scikit-learn's bundled digits data.

The search space is the classic hyperparameter table: learning rate, batch size, weight decay,
dropout, depth and width, and the learning-rate schedule, whose own parameters are conditional
(``step_gamma`` only for ``"step"``, ``warmup_epochs`` only for ``"warmup_cosine"``).

Everything runs on the CPU and nothing is downloaded (``load_digits`` ships with
scikit-learn). With one torch thread, 15 epochs of a typical configuration take 0.2-1 s; the
slowest corner of the space (batch size 16, 4 layers of 256) about 4 s. The first training in a
process costs about 1.5 s more (torch's lazy initialization). A configuration trained with a
given seed always gives the same losses, so a study's objective is a deterministic function of
its parameters. Callers should keep torch at one thread per process (``torch.set_num_threads(1)``);
this module does not change global thread settings itself.

The same code runs with an in-process ``optuna`` trial and with an hposerve client trial: it
uses only ``suggest_float``, ``suggest_int``, ``suggest_categorical``, ``report`` and
``should_prune``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

__all__ = [
    "SCHEDULES",
    "DigitsData",
    "TrialLike",
    "build_model",
    "load_data",
    "objective",
    "suggest_params",
    "train",
]

#: The learning-rate schedules of the search space.
SCHEDULES: tuple[str, ...] = ("cosine", "step", "warmup_cosine")

_N_FEATURES = 64  # 8x8 images, flattened
_N_CLASSES = 10
_VALIDATION_FRACTION = 0.2
# The split is part of the task, not of a trial: every trial and every run sees the same one.
_SPLIT_SEED = 0
# StepLR decays this many times over a run, whatever the number of epochs.
_STEP_DECAYS = 3


class TrialLike(Protocol):
    """The part of a trial that this task uses (an ``optuna.Trial`` or an hposerve trial)."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...

    def report(self, value: float, step: int) -> Any: ...

    def should_prune(self) -> bool: ...


@dataclass(frozen=True)
class DigitsData:
    """The fixed train/validation split of the digits data, as CPU tensors.

    Attributes:
        x_train: Training inputs, float32, shape ``(n_train, 64)``, scaled to [0, 1].
        y_train: Training labels, int64, shape ``(n_train,)``.
        x_val: Validation inputs, float32, shape ``(n_val, 64)``, scaled to [0, 1].
        y_val: Validation labels, int64, shape ``(n_val,)``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


@functools.cache
def load_data() -> DigitsData:
    """Loads the digits data and splits it, once per process.

    Returns:
        The stratified 80/20 split, always the same one (seeded). Pixel values are divided by
        16 (their maximum), which needs no statistics fitted on the training part.
    """
    digits = load_digits()
    x_train, x_val, y_train, y_val = train_test_split(
        digits.data / 16.0,
        digits.target,
        test_size=_VALIDATION_FRACTION,
        stratify=digits.target,
        random_state=_SPLIT_SEED,
    )
    return DigitsData(
        x_train=torch.as_tensor(x_train, dtype=torch.float32),
        y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_val=torch.as_tensor(x_val, dtype=torch.float32),
        y_val=torch.as_tensor(y_val, dtype=torch.int64),
    )


def suggest_params(trial: TrialLike) -> dict[str, Any]:
    """Samples one configuration from the search space.

    Args:
        trial: An ``optuna.Trial`` or an hposerve client trial.

    Returns:
        The parameters by name: ``lr``, ``batch_size``, ``weight_decay``, ``dropout``,
        ``n_layers``, ``n_units``, ``schedule``, and ``step_gamma`` (only when the schedule is
        ``"step"``) or ``warmup_epochs`` (only when it is ``"warmup_cosine"``).
    """
    params: dict[str, Any] = {
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        "batch_size": trial.suggest_int("batch_size", 16, 512, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        "n_layers": trial.suggest_int("n_layers", 1, 4),
        "n_units": trial.suggest_int("n_units", 32, 256, log=True),
        "schedule": trial.suggest_categorical("schedule", list(SCHEDULES)),
    }
    # Conditional parameters: asked only on the branch that uses them, so the sampler never
    # sees (or learns from) a value that had no effect.
    if params["schedule"] == "step":
        params["step_gamma"] = trial.suggest_float("step_gamma", 0.1, 0.9)
    elif params["schedule"] == "warmup_cosine":
        params["warmup_epochs"] = trial.suggest_int("warmup_epochs", 1, 3)
    return params


def build_model(params: dict[str, Any]) -> nn.Sequential:
    """Builds the MLP: ``n_layers`` blocks of Linear, ReLU, Dropout, then a linear head.

    Args:
        params: A configuration from :func:`suggest_params` (``n_layers``, ``n_units``,
            ``dropout`` are used).

    Returns:
        The (untrained) model; its initial weights come from torch's global generator.
    """
    layers: list[nn.Module] = []
    width_in = _N_FEATURES
    for _ in range(int(params["n_layers"])):
        layers += [
            nn.Linear(width_in, int(params["n_units"])),
            nn.ReLU(),
            nn.Dropout(float(params["dropout"])),
        ]
        width_in = int(params["n_units"])
    layers.append(nn.Linear(width_in, _N_CLASSES))
    return nn.Sequential(*layers)


def _make_scheduler(
    optimizer: torch.optim.Optimizer, params: dict[str, Any], epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Builds the per-epoch learning-rate schedule named by ``params["schedule"]``."""
    schedule = params["schedule"]
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer,
            step_size=max(1, epochs // _STEP_DECAYS),
            gamma=float(params["step_gamma"]),
        )
    if schedule == "warmup_cosine":
        warmup = int(params["warmup_epochs"])
        # Ramps lr/(w+1), 2*lr/(w+1), ... so that the first cosine epoch runs at the full lr.
        warm = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1.0 / (warmup + 1), total_iters=warmup
        )
        cool = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs - warmup))
        return torch.optim.lr_scheduler.SequentialLR(
            optimizer, schedulers=[warm, cool], milestones=[warmup]
        )
    raise ValueError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")


def _adamw(model: nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, fused where torch supports it on the CPU (2.4+).

    With models this small the optimizer's per-tensor Python overhead dominates a step; the
    fused kernel makes a whole trial about 1.5x faster and is just as deterministic.
    """
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # older torch: fused is CUDA-only
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def _validation_loss(model: nn.Module, data: DigitsData) -> float:
    model.eval()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(data.x_val), data.y_val)
    model.train()
    return float(loss)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DigitsData,
    order: torch.Tensor,
    batch_size: int,
) -> None:
    """One pass over the training data in ``order``, a step per mini-batch."""
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        loss.backward()
        optimizer.step()


def train(
    params: dict[str, Any],
    *,
    epochs: int,
    seed: int,
    report: Callable[[float, int], None] | None = None,
) -> float:
    """Trains the MLP for one configuration and returns its final validation loss.

    Uses AdamW (``lr``, ``weight_decay``), mini-batches of ``batch_size`` reshuffled every
    epoch, and steps the learning-rate schedule once per epoch. The result is the validation
    cross-entropy after the last epoch (not the best over epochs), which is what the pruner saw
    last and what a model trained with this configuration would actually deliver.

    Args:
        params: A configuration from :func:`suggest_params`.
        epochs: Number of passes over the training data (at least 1).
        seed: Seeds the initial weights, dropout and shuffling; the same configuration and seed
            always give the same losses.
        report: Called as ``report(val_loss, epoch)`` after every epoch, ``epoch`` counting
            from 0. It may raise (e.g. ``optuna.TrialPruned``) to stop training; the exception
            propagates.

    Returns:
        The validation cross-entropy loss after the last epoch.

    Raises:
        ValueError: If ``epochs`` < 1 or the schedule is unknown.
        FloatingPointError: If training diverged (the validation loss is not finite).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    data = load_data()
    # Seeds the global generator for weight init and dropout; shuffling has its own generator.
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    model = build_model(params)
    optimizer = _adamw(model, lr=float(params["lr"]), weight_decay=float(params["weight_decay"]))
    scheduler = _make_scheduler(optimizer, params, epochs)
    batch_size = int(params["batch_size"])
    n_train = len(data.y_train)

    model.train()
    val_loss = math.inf
    for epoch in range(epochs):
        order = torch.randperm(n_train, generator=shuffle)
        _train_epoch(model, optimizer, data, order, batch_size)
        scheduler.step()
        val_loss = _validation_loss(model, data)
        if not math.isfinite(val_loss):
            # Optuna fails a trial whose value is NaN, and hposerve rejects non-finite values
            # outright; stopping here says why instead of wasting the remaining epochs.
            raise FloatingPointError(
                f"training diverged: validation loss {val_loss} after epoch {epoch}"
            )
        if report is not None:
            report(val_loss, epoch)
    return val_loss


def objective(trial: TrialLike, *, epochs: int, seed: int = 0) -> float:
    """The study objective: sample a configuration, train it, return the validation loss.

    Reports the validation loss after every epoch and stops as soon as the study's pruner says
    so, by raising ``optuna.TrialPruned``. Optuna handles that natively; the hposerve client's
    ``optimize`` recognizes it as well (it treats any exception class named ``TrialPruned`` as
    a pruned trial), so the same function serves both.

    Args:
        trial: An ``optuna.Trial`` or an hposerve client trial.
        epochs: Training epochs per trial (the pruner's steps are 0..epochs-1).
        seed: Training seed, the same for every trial so that the objective depends on the
            parameters only and samplers can be compared on it.

    Returns:
        The final validation loss (see :func:`train`).

    Raises:
        optuna.TrialPruned: If the pruner stops the trial.
        FloatingPointError: If training diverged; the trial should count as failed.
    """
    params = suggest_params(trial)

    def report(val_loss: float, epoch: int) -> None:
        trial.report(val_loss, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} (validation loss {val_loss:.4f})")

    return train(params, epochs=epochs, seed=seed, report=report)

"""The ``mlp-digits`` task: the PyTorch MLP of :mod:`hposerve.lab._mlp_digits`.

It reports a learning curve (one validation loss per epoch) for pruners. Its fixed space is
derived from the demo's define-by-run space. torch is imported only when a task is built.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hposerve.lab._task import Params, Report, Task

__all__ = ["DEFAULT_MLP_EPOCHS", "mlp_digits_task"]

#: Training epochs per trial of ``mlp-digits`` (its ``max_steps``).
DEFAULT_MLP_EPOCHS = 15


class _SpaceRecorder:
    """A trial that records what ``suggest_params`` asks for instead of sampling.

    Categorical parameters named in ``force`` take the given choice, so that running
    ``suggest_params`` once per choice reaches every conditional branch.
    """

    def __init__(self, force: dict[str, Any] | None = None) -> None:
        self.space: dict[str, BaseDistribution] = {}
        self._force = force or {}

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self.space[name] = FloatDistribution(low, high, step=step, log=log)
        return low

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        self.space[name] = IntDistribution(low, high, step=step, log=log)
        return low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.space[name] = CategoricalDistribution(tuple(choices))
        return self._force.get(name, choices[0])

    def report(self, value: float, step: int) -> None:  # pragma: no cover - never called
        pass

    def should_prune(self) -> bool:  # pragma: no cover - never called
        return False


def _flat_space(suggest: Callable[[Any], Any]) -> dict[str, BaseDistribution]:
    """Flattens a define-by-run space with one level of conditionals into a fixed space.

    Runs ``suggest`` once as is, then once per choice of each categorical parameter, and
    merges the parameters in the order they first appear. Derived from the code rather than
    restated, so the comparison space cannot drift from the demo's.
    """
    first = _SpaceRecorder()
    suggest(first)
    space = dict(first.space)
    for name, dist in first.space.items():
        if isinstance(dist, CategoricalDistribution):
            for choice in dist.choices:
                branch = _SpaceRecorder({name: choice})
                suggest(branch)
                for p, d in branch.space.items():
                    space.setdefault(p, d)
    return space


def _evaluate_mlp(params: Params, *, seed: int, report: Report | None = None, epochs: int) -> float:
    """Trains the MLP and returns its final validation loss, reporting it after every epoch."""
    from hposerve.lab import _mlp_digits

    # train() reads step_gamma / warmup_epochs only when the schedule uses them, so the flat
    # space's inactive parameters can be passed as they are.
    return _mlp_digits.train(dict(params), epochs=epochs, seed=seed, report=report)


def mlp_digits_task(*, epochs: int = DEFAULT_MLP_EPOCHS) -> Task:
    """The ``mlp-digits`` task with a given number of epochs per trial.

    Callers should run torch with one thread per process (``torch.set_num_threads(1)``); this
    module does not change global thread settings. A trial costs 0.2-1 s for typical
    configurations at 15 epochs (about 4 s in the slowest corner), plus about 1.5 s once per
    process for torch's initialization.

    Args:
        epochs: Training epochs per trial; ``max_steps`` of the task.

    Returns:
        The task. Its flat space always includes ``step_gamma`` and ``warmup_epochs``, which
        only matter for the ``"step"`` and ``"warmup_cosine"`` schedules.

    Raises:
        ValueError: If ``epochs`` < 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    from hposerve.lab import _mlp_digits

    return Task(
        name="mlp-digits",
        direction="minimize",
        search_space=_flat_space(_mlp_digits.suggest_params),
        optimum=None,
        evaluate=functools.partial(_evaluate_mlp, epochs=epochs),
        max_steps=epochs,
        description=f"PyTorch MLP on sklearn's digits, {epochs} epochs, final validation "
        "cross-entropy; reports it per epoch",
    )

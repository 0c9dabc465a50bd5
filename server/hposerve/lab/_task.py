"""The task type of comparisons: what to optimize, over which space, and how good it can be."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution

__all__ = ["Params", "Report", "Task"]

Params = dict[str, Any]
Report = Callable[[float, int], None]


@dataclass(frozen=True)
class Task:
    """A comparison task: what to optimize, over which space, and how good the best can be.

    Attributes:
        name: The task's registry name, e.g. ``"branin"``.
        direction: ``"minimize"`` or ``"maximize"`` (every built-in task minimizes).
        search_space: Parameter name -> Optuna distribution, in a fixed order. Flat: every
            parameter is sampled for every trial.
        optimum: The best achievable value (analytic for synthetic functions, the table's best
            for tabular benchmarks), or None when unknown.
        evaluate: ``evaluate(params, *, seed, report=None) -> float``. ``seed`` makes stochastic
            tasks reproducible (deterministic tasks ignore it). Tasks with ``max_steps > 0``
            call ``report(value, step)`` for steps 0..max_steps-1; ``report`` may raise (e.g.
            to prune) and the exception propagates out of ``evaluate``.
        max_steps: Number of intermediate values ``evaluate`` reports; 0 when it reports none.
        description: One line saying what the task is.
    """

    name: str
    direction: str
    search_space: dict[str, BaseDistribution]
    optimum: float | None
    evaluate: Callable[..., float]
    max_steps: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {self.direction!r}")

    def regret(self, value: float) -> float | None:
        """How far ``value`` is from the optimum, in the task's direction.

        Args:
            value: An objective value of this task.

        Returns:
            ``value - optimum`` when minimizing, ``optimum - value`` when maximizing, clamped
            at 0 (an optimum known to float precision can be undercut by rounding, and regret
            curves are drawn on a log scale); None when the optimum is unknown.
        """
        if self.optimum is None:
            return None
        gap = value - self.optimum if self.direction == "minimize" else self.optimum - value
        return max(0.0, gap)

"""Multi-objective tasks: ZDT1 and ZDT2 (Zitzler, Deb and Thiele 2000), two objectives.

Both minimize ``f1 = x0`` and ``f2 = g (1 - h(f1 / g))`` over ``[0, 1]^d`` with
``g = 1 + 9 mean(x1..x_{d-1})``; ``h`` is a square root (ZDT1, a convex front) or a square
(ZDT2, a concave one). The Pareto front is ``g = 1``. A comparison scores a run by the
hypervolume its trials dominate up to :data:`REFERENCE_POINT`, which every point of the box
dominates (``f1 <= 1``, ``f2 <= g <= 10``); the front's own hypervolume is known in closed form,
so the hypervolume regret (front's minus the run's) has optimum 0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, FloatDistribution

__all__ = ["MULTI_TASKS", "REFERENCE_POINT", "MultiObjectiveTask", "get_multi_task"]

#: The hypervolume's reference point for both tasks.
REFERENCE_POINT = (1.1, 11.0)
_DIM = 6


@dataclass(frozen=True)
class MultiObjectiveTask:
    """A task with several objectives, all minimized, scored by hypervolume.

    Attributes:
        name: The registry name, e.g. ``"zdt1"``.
        directions: One ``"minimize"`` per objective.
        search_space: Parameter name -> Optuna distribution (flat).
        reference_point: The hypervolume's reference point.
        optimal_hypervolume: The Pareto front's hypervolume up to ``reference_point``.
        evaluate: ``evaluate(params, *, seed, report=None) -> tuple[float, ...]``.
        description: One line saying what the task is.
    """

    name: str
    directions: tuple[str, ...]
    search_space: dict[str, BaseDistribution]
    reference_point: tuple[float, ...]
    optimal_hypervolume: float
    evaluate: Callable[..., tuple[float, ...]]
    description: str = ""
    max_steps: int = 0


def _zdt(params: dict[str, Any], *, seed: int, report: Any = None, h: str) -> tuple[float, float]:
    del seed, report  # deterministic, no learning curve
    x = [float(params[f"x{i}"]) for i in range(len(params))]
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    ratio = x[0] / g
    return x[0], g * (1 - (math.sqrt(ratio) if h == "sqrt" else ratio * ratio))


def _front_hypervolume(integral: float, reference: Sequence[float]) -> float:
    """Hypervolume of the front ``f2 = 1 - h(f1)`` on ``f1 in [0, 1]``, with
    ``integral`` = the integral of ``1 - h`` over [0, 1] (the area under the front)."""
    r1, r2 = reference
    return r1 * r2 - integral  # f2 = 0 from f1 = 1 to r1: nothing under it there


def _zdt_task(name: str, h: str, integral: float, what: str) -> MultiObjectiveTask:
    space: dict[str, BaseDistribution] = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(_DIM)}
    return MultiObjectiveTask(
        name=name,
        directions=("minimize", "minimize"),
        search_space=space,
        reference_point=REFERENCE_POINT,
        optimal_hypervolume=_front_hypervolume(integral, REFERENCE_POINT),
        evaluate=functools.partial(_zdt, h=h),
        description=f"{name.upper()}, {_DIM}-D on [0, 1], 2 objectives, {what} Pareto front "
        f"(synthetic; hypervolume up to {REFERENCE_POINT})",
    )


#: Name -> factory of the built-in multi-objective tasks.
MULTI_TASKS: dict[str, Callable[[], MultiObjectiveTask]] = {
    # The area under 1 - sqrt(f) is 1/3; under 1 - f^2 it is 2/3.
    "zdt1": functools.partial(_zdt_task, "zdt1", "sqrt", 1.0 / 3.0, "convex"),
    "zdt2": functools.partial(_zdt_task, "zdt2", "square", 2.0 / 3.0, "concave"),
}


def get_multi_task(name: str) -> MultiObjectiveTask:
    """Builds a built-in multi-objective task by name.

    Raises:
        KeyError: No such task.
    """
    try:
        return MULTI_TASKS[name]()
    except KeyError:
        raise KeyError(
            f"unknown multi-objective task {name!r}; known: {', '.join(MULTI_TASKS)}"
        ) from None

"""Synthetic tasks: test functions with known optima (Branin, Hartmann 6-D, BBOB-style 5-D).

Pure Python: a single point is cheaper without numpy's overhead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

from optuna.distributions import BaseDistribution, FloatDistribution

from hposerve.lab._task import Params, Report, Task

__all__ = [
    "SHIFTED_KINDS",
    "branin_task",
    "hartmann6_task",
    "shifted_task",
    "styblinski_tang_task",
    "synthetic_argmin",
]


def _branin(x: Sequence[float]) -> float:
    x1, x2 = x
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_HARTMANN6_ALPHA = (1.0, 1.2, 3.0, 3.2)
_HARTMANN6_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_HARTMANN6_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)
# Not analytic: found by polishing the published minimizer with L-BFGS-B and Nelder-Mead.
_HARTMANN6_ARGMIN = (0.2016895, 0.1500107, 0.4768740, 0.2753324, 0.3116516, 0.6573005)
_HARTMANN6_MIN = -3.3223680114155143


def _hartmann6(x: Sequence[float]) -> float:
    return -sum(
        alpha * math.exp(-sum(a * (xi - p) ** 2 for a, xi, p in zip(row_a, x, row_p, strict=True)))
        for alpha, row_a, row_p in zip(_HARTMANN6_ALPHA, _HARTMANN6_A, _HARTMANN6_P, strict=True)
    )


# BBOB-style functions are shifted so that the optimum is neither the box's centre nor a point
# of a coarse grid: grid, QMC and CMA-ES (which starts at the centre) would otherwise hit it by
# construction and the comparison would say nothing. Fixed, so every run sees the same task.
_SHIFT = (1.37, -2.61, 0.84, 3.12, -0.53, -3.48, 2.26, -1.19, 0.31, -2.94)
_BBOB_BOUND = 5.0
_DEFAULT_DIM = 5


def _sphere(z: Sequence[float]) -> float:
    return sum(zi * zi for zi in z)


def _ellipsoid(z: Sequence[float]) -> float:
    # Axis scales from 1 to 1e6 (condition number 1e6), as in BBOB f2.
    d = len(z)
    return sum(10 ** (6 * i / (d - 1)) * zi * zi for i, zi in enumerate(z))


def _rastrigin(z: Sequence[float]) -> float:
    return 10 * len(z) + sum(zi * zi - 10 * math.cos(2 * math.pi * zi) for zi in z)


def _rosenbrock(z: Sequence[float]) -> float:
    # Shifted by one more (as BBOB f8 does) so that the minimum z = (1, ..., 1) sits at x_opt.
    w = [zi + 1 for zi in z]
    return sum(100 * (w[i + 1] - w[i] ** 2) ** 2 + (1 - w[i]) ** 2 for i in range(len(w) - 1))


_SHIFTED: dict[str, tuple[Callable[[Sequence[float]], float], str]] = {
    "sphere": (_sphere, "sum of squares"),
    "ellipsoid": (_ellipsoid, "ill-conditioned quadratic, axis scales 1..1e6"),
    "rastrigin": (_rastrigin, "highly multimodal, a local minimum near every integer point"),
    "rosenbrock": (_rosenbrock, "curved narrow valley"),
}

#: The BBOB-style functions :func:`shifted_task` builds.
SHIFTED_KINDS = tuple(_SHIFTED)

# Root of d/dx (x^4 - 16x^2 + 5x)/2 = 0 in [-5, 5] that is the global minimum (not analytic).
_STYBLINSKI_TANG_ARGMIN = -2.903534027771177


def _styblinski_tang(x: Sequence[float]) -> float:
    return sum(xi**4 - 16 * xi**2 + 5 * xi for xi in x) / 2


def _styblinski_tang_min(dim: int) -> float:
    return dim * _styblinski_tang([_STYBLINSKI_TANG_ARGMIN])


def _evaluate_synthetic(
    params: Params,
    *,
    seed: int,
    report: Report | None = None,
    fn: Callable[[Sequence[float]], float],
    names: tuple[str, ...],
    shift: tuple[float, ...] | None = None,
) -> float:
    """Evaluates ``fn`` at the point named by ``params`` (``seed`` and ``report`` unused)."""
    del seed, report  # deterministic, no learning curve
    x = [float(params[name]) for name in names]
    if shift is not None:
        x = [xi - si for xi, si in zip(x, shift, strict=True)]
    return fn(x)


def _box(dim: int, low: float, high: float) -> dict[str, BaseDistribution]:
    return {f"x{i}": FloatDistribution(low, high) for i in range(dim)}


def _synthetic_task(
    name: str,
    fn: Callable[[Sequence[float]], float],
    space: dict[str, BaseDistribution],
    optimum: float,
    description: str,
    shift: tuple[float, ...] | None = None,
) -> Task:
    return Task(
        name=name,
        direction="minimize",
        search_space=space,
        optimum=optimum,
        evaluate=functools.partial(_evaluate_synthetic, fn=fn, names=tuple(space), shift=shift),
        description=description,
    )


def branin_task() -> Task:
    space: dict[str, BaseDistribution] = {
        "x0": FloatDistribution(-5.0, 10.0),
        "x1": FloatDistribution(0.0, 15.0),
    }
    # At (pi, 2.275), one of three minimizers: the squared term vanishes and cos = -1.
    optimum = 5 / (4 * math.pi)
    return _synthetic_task(
        "branin", _branin, space, optimum, "Branin, 2-D, three global minima (synthetic)"
    )


def hartmann6_task() -> Task:
    return _synthetic_task(
        "hartmann6",
        _hartmann6,
        _box(6, 0.0, 1.0),
        _HARTMANN6_MIN,
        "Hartmann 6-D on [0, 1]^6, multimodal (synthetic)",
    )


def shifted_task(kind: str, dim: int = _DEFAULT_DIM) -> Task:
    if not 2 <= dim <= len(_SHIFT):
        raise ValueError(f"dim must be in 2..{len(_SHIFT)}, got {dim}")
    fn, what = _SHIFTED[kind]
    return _synthetic_task(
        kind,
        fn,
        _box(dim, -_BBOB_BOUND, _BBOB_BOUND),
        0.0,
        f"{kind.capitalize()} {dim}-D on [-5, 5], {what}; minimum 0 at a fixed shifted point "
        "(synthetic)",
        shift=_SHIFT[:dim],
    )


def styblinski_tang_task(dim: int = _DEFAULT_DIM) -> Task:
    return _synthetic_task(
        "styblinski_tang",
        _styblinski_tang,
        _box(dim, -_BBOB_BOUND, _BBOB_BOUND),
        _styblinski_tang_min(dim),
        f"Styblinski-Tang {dim}-D on [-5, 5], 2^{dim} local minima, global at x_i = -2.9035 "
        "(synthetic)",
    )


def synthetic_argmin(task: Task) -> dict[str, float]:
    """The (or a) point where a synthetic task attains its optimum.

    Args:
        task: A task built by this module from a synthetic function.

    Returns:
        Parameter name -> value, inside the task's box.

    Raises:
        KeyError: If the task is not synthetic.
    """
    names = list(task.search_space)
    if task.name == "branin":
        return {"x0": math.pi, "x1": 2.275}
    if task.name == "hartmann6":
        return dict(zip(names, _HARTMANN6_ARGMIN, strict=True))
    if task.name == "styblinski_tang":
        return dict.fromkeys(names, _STYBLINSKI_TANG_ARGMIN)
    if task.name in _SHIFTED:
        return dict(zip(names, _SHIFT, strict=False))
    raise KeyError(f"{task.name!r} is not a synthetic task")

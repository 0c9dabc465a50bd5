"""The report's input: the trials of each member study, digested into best-so-far curves.

See :mod:`hposerve.lab._report` for the definitions (finished trials, best-so-far, regret).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ArmRun", "Metric", "Run", "group_runs", "state_name"]

_FINISHED = frozenset({"complete", "pruned", "failed"})
_UNFINISHED = frozenset({"running", "waiting"})


@dataclass(frozen=True)
class ArmRun:
    """The trials of one member study of a comparison.

    Attributes:
        arm: The arm's name, e.g. ``"tpe"`` or ``"random"``.
        seed: The seed of this run; an arm's runs have distinct seeds.
        trials: The study's trials, in any order (``hposerve.client.FrozenTrial`` or anything
            with its attributes).
    """

    arm: str
    seed: int
    trials: Sequence[Any]


class Metric:
    """Direction-aware conversions from objective values to the reported metric and a loss."""

    def __init__(self, direction: Any, optimum: float | None) -> None:
        direction = str(getattr(direction, "name", direction)).lower()  # a StudyDirection too
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', not {direction!r}")
        self.direction = direction
        self.optimum = optimum
        self.name = "regret" if optimum is not None else "best"

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` is better than ``b``."""
        return a < b if self.direction == "minimize" else a > b

    def metric(self, best: float) -> float:
        """The reported metric of a best value: its regret, or the value itself."""
        if self.optimum is None:
            return best
        gap = best - self.optimum if self.direction == "minimize" else self.optimum - best
        return max(gap, 0.0)

    def loss(self, metric: float) -> float:
        """The metric as a loss (lower is better)."""
        # Regret is a loss already; a best value is one when minimizing.
        if self.name == "regret" or self.direction == "minimize":
            return metric
        return -metric


@dataclass
class Run:
    """One run, digested: finished trials and best-so-far curves."""

    arm: str
    seed: int
    trials_done: int
    done: bool  # reached the largest budget
    running: int
    pruned: int
    failed: int
    best: np.ndarray  # metric after k finished trials at index k-1; length max_budget, NaN past
    loss: np.ndarray  # same, lower is better
    times: np.ndarray  # seconds since the run's first start, per finished trial (completion)
    best_by_time: np.ndarray  # metric best-so-far in completion order
    has_steps: bool
    cum_steps: np.ndarray  # cumulative training steps after each finished trial (number order)
    steps_to_best: int | None
    sample_seconds: list[float]


def state_name(trial: Any) -> str:
    """A trial's state as a lowercase name: ``complete``, ``pruned``, ``failed``, ``running``
    or ``waiting``, whether it is a name or a TrialState (the client's or Optuna's)."""
    state = trial.state
    name = str(getattr(state, "name", state)).lower()
    return "failed" if name == "fail" else name  # TrialState.FAIL


def _value(trial: Any) -> float | None:
    """The value of a complete trial; None for any other."""
    if state_name(trial) != "complete":
        return None
    values = trial.values
    if not values:
        return None
    if len(values) != 1:
        raise ValueError("comparison reports support single-objective studies only")
    return float(values[0])


def _steps(trial: Any) -> int:
    intermediate = trial.intermediate_values or {}
    return max(intermediate) + 1 if intermediate else 0


def _best_so_far(trials: Sequence[Any], metric: Metric) -> np.ndarray:
    """The metric of the best value among ``trials[:k+1]`` at index k (NaN before the first)."""
    out = np.full(len(trials), np.nan)
    current: float | None = None
    for i, trial in enumerate(trials):
        value = _value(trial)
        if value is not None and (current is None or metric.better(value, current)):
            current = value
        if current is not None:
            out[i] = metric.metric(current)
    return out


def _steps_to_best(trials: Sequence[Any], metric: Metric) -> tuple[np.ndarray, int | None]:
    """Cumulative steps after each trial, and the steps used when the final best was first hit."""
    cum_steps = np.cumsum([_steps(t) for t in trials], dtype=np.int64)
    current: float | None = None
    at_best: int | None = None
    for trial, steps in zip(trials, cum_steps, strict=True):
        value = _value(trial)
        if value is not None and (current is None or metric.better(value, current)):
            current, at_best = value, int(steps)
    return cum_steps, at_best


def _by_time(trials: Sequence[Any], finished: Sequence[Any], metric: Metric) -> tuple[Any, Any]:
    """Completion times (since the run's first start) and the best-so-far in that order."""
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    if not starts:
        return np.array([]), np.array([])
    origin = min(starts)
    timed = sorted(
        (t for t in finished if t.datetime_complete is not None),
        key=lambda t: t.datetime_complete,
    )
    times = np.array([(t.datetime_complete - origin).total_seconds() for t in timed])
    return times, _best_so_far(timed, metric)


def _digest(run: ArmRun, metric: Metric, max_budget: int) -> Run:
    trials = sorted(run.trials, key=lambda t: t.number)
    states = [state_name(t) for t in trials]
    finished_all = [t for t, s in zip(trials, states, strict=True) if s in _FINISHED]
    finished = finished_all[:max_budget]

    best = np.full(max_budget, np.nan)
    best[: len(finished)] = _best_so_far(finished, metric)
    loss = np.array([np.nan if math.isnan(v) else metric.loss(v) for v in best])
    cum_steps, steps_at_best = _steps_to_best(finished, metric)
    times, best_by_time = _by_time(trials, finished, metric)
    has_steps = any(t.intermediate_values for t in trials)
    finished_states = [state_name(t) for t in finished]
    return Run(
        arm=run.arm,
        seed=run.seed,
        trials_done=len(finished_all),
        done=len(finished_all) >= max_budget,
        running=sum(s in _UNFINISHED for s in states),
        pruned=finished_states.count("pruned"),
        failed=finished_states.count("failed"),
        best=best,
        loss=loss,
        times=times,
        best_by_time=best_by_time,
        has_steps=has_steps,
        cum_steps=cum_steps,
        steps_to_best=steps_at_best if has_steps else None,
        sample_seconds=[
            float(s) for t in trials if (s := getattr(t, "sample_seconds", None)) is not None
        ],
    )


def group_runs(runs: Sequence[ArmRun], metric: Metric, max_budget: int) -> dict[str, list[Run]]:
    """Digests the runs, grouped by arm in order of first appearance, seeds ascending.

    Raises:
        ValueError: Two runs of an arm with the same seed, or a multi-objective trial.
    """
    arms: dict[str, list[Run]] = {}
    seen: set[tuple[str, int]] = set()
    for run in runs:
        key = (run.arm, run.seed)
        if key in seen:
            raise ValueError(f"two runs of arm {run.arm!r} with seed {run.seed}")
        seen.add(key)
        arms.setdefault(run.arm, []).append(_digest(run, metric, max_budget))
    for digested in arms.values():
        digested.sort(key=lambda r: r.seed)
    return arms

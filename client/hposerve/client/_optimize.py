"""``Study.optimize``: an objective run on trials one after another, as Optuna runs it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import FailedPrecondition
from ._trial import FrozenTrial, Trial

if TYPE_CHECKING:
    from ._study import Study

_logger = logging.getLogger("hposerve.client")


def as_floats(values: Any) -> list[float]:
    """Converts a value or a sequence of values (numpy, torch scalars...) to floats."""
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        try:
            return [float(values)]
        except (TypeError, ValueError):
            pass  # a sequence such as a numpy array: iterate below
    return [float(v) for v in values]


def _is_trial_pruned(error: BaseException) -> bool:
    # Ours, optuna.TrialPruned, or any other class of that name (Optuna may not be installed).
    return any(cls.__name__ == "TrialPruned" for cls in type(error).__mro__)


def _objective_values(result: Any) -> list[float] | None:
    """Converts an objective's return value to floats, or None if it is not usable."""
    if isinstance(result, (str, bytes)) or result is None:
        return None
    try:
        values = as_floats(result)
    except (TypeError, ValueError):
        return None
    if not values or any(math.isnan(v) for v in values):
        return None
    return values


def optimize(
    study: Study,
    objective: Callable[[Trial], Any],
    *,
    n_trials: int | None,
    timeout: float | None,
    catch: type[Exception] | Sequence[type[Exception]],
    search_space: Mapping[str, Any] | None,
    callbacks: Sequence[Callable[[Study, FrozenTrial], None]],
    stopped: Callable[[], bool],
) -> None:
    """Implements :meth:`Study.optimize` (see there); ``stopped()`` says when to stop."""
    catch_classes = (catch,) if isinstance(catch, type) else tuple(catch)
    started = time.monotonic()
    done = 0
    while not stopped():
        if n_trials is not None and done >= n_trials:
            break
        if timeout is not None and time.monotonic() - started >= timeout:
            break
        trial = study.ask(search_space)
        frozen = _run_trial(study, objective, trial, catch_classes)
        done += 1
        if frozen is not None:
            for callback in callbacks:
                callback(study, frozen)


def _run_trial(
    study: Study,
    objective: Callable[[Trial], Any],
    trial: Trial,
    catch: tuple[type[Exception], ...],
) -> FrozenTrial | None:
    try:
        result = objective(trial)
    except BaseException as error:
        if _is_trial_pruned(error):
            return _tell_quietly(study, trial, None, "pruned")
        if isinstance(error, catch):
            _logger.warning("trial %d failed: %r", trial.number, error, exc_info=True)
            return _tell_quietly(study, trial, None, "failed")
        try:
            _tell_quietly(study, trial, None, "failed")
        except Exception:  # keep the objective's exception, which is the real cause
            _logger.exception("could not tell trial %d failed", trial.number)
        raise
    values = _objective_values(result)
    if values is None:
        _logger.warning(
            "trial %d failed: the objective returned %r, not a number (or numbers) without NaN",
            trial.number,
            result,
        )
        return _tell_quietly(study, trial, None, "failed")
    return _tell_quietly(study, trial, values, "complete")


def _tell_quietly(
    study: Study, trial: Trial, values: list[float] | None, state: str
) -> FrozenTrial | None:
    """Tells a trial; a trial the server already finished (lease expired) is only logged."""
    try:
        return study.tell(trial, values, state=state)
    except FailedPrecondition as error:
        _logger.warning("could not tell trial %d %s: %s", trial.number, state, error)
        return None

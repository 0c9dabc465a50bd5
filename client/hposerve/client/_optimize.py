"""``Study.optimize``: an objective run on trials, as ``optuna.Study.optimize`` runs it.

The same loop, arguments and log lines as Optuna's: ``n_jobs`` threads share the ``n_trials``
budget; ``callbacks`` run after each trial; ``gc_after_trial`` collects garbage; a progress
bar when tqdm is installed; "Trial N finished with value: ... and parameters: ..." at INFO on
the ``hposerve.client`` logger (failures at WARNING).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from hposerve.v1 import study_service_pb2 as pb

from ._distributions import add_search_space
from ._errors import FailedPrecondition, ResourceExhausted
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


def infeasible(values: Any, n_objectives: int) -> str | None:
    """Why Optuna would fail a trial told these values (its messages), or None if fine."""
    if values is None:
        return "The value None could not be cast to float."
    raw = values if isinstance(values, (list, tuple)) else [values]
    if not isinstance(values, (list, tuple)) and hasattr(values, "__iter__"):
        raw = list(values)
    for v in raw:
        try:
            number = float(v)
        except (TypeError, ValueError):
            return f"The value {v!r} could not be cast to float."
        if math.isnan(number):
            return f"The value {number} is not acceptable."
    if len(raw) != n_objectives:
        return (
            f"The number of the values {len(raw)} did not match the number of the objectives "
            f"{n_objectives}."
        )
    return None


def _is_trial_pruned(error: BaseException) -> bool:
    # Ours, optuna.TrialPruned, or any other class of that name (Optuna may not be installed).
    return any(cls.__name__ == "TrialPruned" for cls in type(error).__mro__)


class _Budget:
    """The trials left to start, shared by the worker threads."""

    def __init__(self, n_trials: int | None, timeout: float | None, stopped: Callable[[], bool]):
        self._left = n_trials
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._stopped = stopped
        self._lock = threading.Lock()
        self.failed = threading.Event()

    def take(self) -> bool:
        if self._stopped() or self.failed.is_set():
            return False
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return False
        with self._lock:
            if self._left is not None:
                if self._left <= 0:
                    return False
                self._left -= 1
        return True


def optimize(
    study: Study,
    objective: Callable[[Trial], Any],
    *,
    n_trials: int | None,
    timeout: float | None,
    n_jobs: int,
    catch: type[Exception] | Sequence[type[Exception]],
    callbacks: Sequence[Callable[[Study, FrozenTrial], None]],
    gc_after_trial: bool,
    show_progress_bar: bool,
    search_space: Mapping[str, Any] | None,
    stopped: Callable[[], bool],
) -> None:
    """Implements :meth:`Study.optimize` (see there); ``stopped()`` says when to stop."""
    catch_classes = (catch,) if isinstance(catch, type) else tuple(catch)
    workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    if workers < 1:
        raise ValueError(f"n_jobs must be a positive number or -1, got {n_jobs}")
    budget = _Budget(n_trials, timeout, stopped)
    bar = _progress_bar(show_progress_bar, n_trials, timeout)

    def work() -> None:
        # Without callbacks nothing can stop the loop between a tell and the next ask, so the
        # tell carries that ask (one round trip); a callback may call ``study.stop()``.
        teller = _Teller(study, budget, search_space, chain=not callbacks)
        try:
            while (trial := teller.next_trial()) is not None:
                frozen = _run_trial(study, objective, trial, catch_classes, teller.tell)
                if gc_after_trial:
                    gc.collect()
                if frozen is not None:
                    for callback in callbacks:
                        callback(study, frozen)
                if bar is not None:
                    bar.update(1)
        except BaseException:
            budget.failed.set()  # the other threads finish their trial, then stop
            raise

    try:
        if workers == 1:
            work()
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(work) for _ in range(workers)]
        for future in futures:
            future.result()  # re-raises the first error, as Optuna does
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(show: bool, n_trials: int | None, timeout: float | None) -> Any:
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        _logger.warning("show_progress_bar needs tqdm (pip install tqdm); no progress bar")
        return None
    return tqdm(total=n_trials)


class _Teller:
    """One worker's trials: each tell, and the next trial, asked with the tell when ``chain``
    and the budget has another (``Study._tell_and_ask``), else asked on its own."""

    def __init__(
        self, study: Study, budget: _Budget, search_space: Mapping[str, Any] | None, chain: bool
    ) -> None:
        self._study, self._budget, self._space, self._chain = study, budget, search_space, chain
        self._next: Trial | None = None
        self._reserved = False  # a trial of the budget taken for the next ask

    def tell(self, trial: Trial, values: list[float] | None, state: str) -> FrozenTrial:
        if self._chain and self._budget.take():
            self._reserved = True
            frozen, self._next = _tell_and_ask(self._study, trial, values, state, self._space)
            return frozen
        return self._study.tell(trial, values, state=state)

    def next_trial(self) -> Trial | None:
        """The next trial to run, or None when the budget is spent (or the study stopped)."""
        if self._next is not None:
            trial, self._next, self._reserved = self._next, None, False
            return trial
        if self._reserved or self._budget.take():
            self._reserved = False
            return self._study.ask(self._space)
        return None


def _tell_and_ask(
    study: Study,
    trial: Trial,
    values: list[float] | None,
    state: str,
    search_space: Mapping[str, Any] | None,
) -> tuple[FrozenTrial, Trial | None]:
    """Tells ``trial`` and asks for the next in one round trip. The next trial is None if the
    server refused the ask once the tell landed: ``ask`` again, which raises the refusal if it
    holds."""
    ask = pb.AskTrialsRequest(parent=study.resource_name, count=1)
    add_search_space(ask.search_space, search_space or {})
    ask.request_id = uuid.uuid4().hex  # retries carry it: the ask is made once
    tell = study._tell_request(trial, values, state, None)
    try:
        response = study._told(trial, "TellAndAsk", pb.TellAndAskRequest(tell=tell, ask=ask))
    except ResourceExhausted:
        # The ask's quota refused the whole: the tell alone now; the next ask waits its turn.
        return FrozenTrial.from_proto(study._told(trial, "TellTrial", tell)), None
    if response.HasField("ask_error"):
        return FrozenTrial.from_proto(response.told), None
    (asked,) = (Trial(study, t) for t in response.asked)
    study._heartbeat.register(asked, study.lease_seconds)
    return FrozenTrial.from_proto(response.told), asked


def _run_trial(
    study: Study,
    objective: Callable[[Trial], Any],
    trial: Trial,
    catch: tuple[type[Exception], ...],
    tell: Any,
) -> FrozenTrial | None:
    """Runs the objective on ``trial`` and tells its outcome with ``tell`` (a failure that ends
    the loop with a plain tell: no next trial follows)."""
    try:
        result = objective(trial)
    except BaseException as error:
        if _is_trial_pruned(error):
            frozen = _tell_quietly(tell, trial, None, "pruned")
            _logger.info("Trial %d pruned. %s", trial.number, error)
            return frozen
        frozen = _tell_failed(trial, tell if isinstance(error, catch) else study.tell)
        _logger.warning(
            "Trial %d failed with parameters: %s because of the following error: %r.",
            trial.number,
            trial.params,
            error,
            exc_info=True,
        )
        if isinstance(error, catch):
            return frozen
        raise
    problem = infeasible(result, len(study.directions))
    if problem is not None:
        _logger.warning("Trial %d failed with value %r.", trial.number, result)
        return _tell_quietly(tell, trial, None, "failed")
    frozen = _tell_quietly(tell, trial, as_floats(result), "complete")
    if frozen is not None:
        log_completed(study, frozen)
    return frozen


def _tell_failed(trial: Trial, tell: Any) -> FrozenTrial | None:
    try:
        return _tell_quietly(tell, trial, None, "failed")
    except Exception:  # keep the objective's exception, which is the real cause
        _logger.exception("could not tell trial %d failed", trial.number)
        return None


def log_completed(study: Study, frozen: FrozenTrial) -> None:
    """Logs a complete trial as Optuna does ("Trial N finished with value: ...")."""
    if not _logger.isEnabledFor(logging.INFO) or not frozen.values:
        return
    names = study.metric_names
    values = frozen.values
    if len(values) > 1:
        shown: Any = values if names is None else dict(zip(names, values, strict=False))
        _logger.info(
            "Trial %d finished with values: %s and parameters: %s.",
            frozen.number,
            shown,
            frozen.params,
        )
        return
    shown = values[0] if names is None else {names[0]: values[0]}
    message = f"Trial {frozen.number} finished with value: {shown} and parameters: {frozen.params}."
    try:
        best = study.best_trial
        message += f" Best is trial {best.number} with value: {best.value}."
    except ValueError:
        pass  # no feasible complete trial yet
    _logger.info("%s", message)


def _tell_quietly(
    tell: Any, trial: Trial, values: list[float] | None, state: str
) -> FrozenTrial | None:
    """Tells a trial; a trial the server already finished (lease expired) is only logged."""
    try:
        return tell(trial, values, state=state)  # type: ignore[no-any-return]
    except FailedPrecondition as error:
        _logger.warning("could not tell trial %d %s: %s", trial.number, state, error)
        return None

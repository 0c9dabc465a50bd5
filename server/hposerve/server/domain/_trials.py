"""The trials handed out: reports and pruning, tells, heartbeats, attributes; and reading them.

These calls are idempotent by what they name (a report keeps a step's first value, a tell of
the outcome a trial already has is a no-op, setting attributes again sets the same values), so
they carry no request id. Each holds the study's ``lock`` for short storage calls only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain import _optuna
from hposerve.server.domain._config import FINISHED_STATES, MAX_BATCH_REPORTS, MAX_STEP
from hposerve.server.domain._exceptions import FailedPrecondition, InvalidArgument, NotFound
from hposerve.server.domain._held_reports import reports_with_outcome
from hposerve.server.domain._live_study import (
    LiveStudy,
    TrialRecord,
    check_finite,
    deleted_is_not_found,
    expired,
)
from hposerve.server.domain._names import StudyRef, TrialRef

__all__ = ["TrialOutcomes"]


class TrialOutcomes:
    """Reports, tells, heartbeats and attributes of trials; reads of trials.

    Thread-safety: every method may be called from any thread; each takes one trial's
    ``trial_lock`` and, inside it, its study's ``lock`` briefly (``heartbeat`` one trial after
    another).
    """

    def __init__(self, live: Callable[[StudyRef], LiveStudy]) -> None:
        self._live = live

    # -- writing ---------------------------------------------------------------------------

    @deleted_is_not_found
    def report(self, ref: TrialRef, *, step: int, value: float) -> bool:
        """Records an intermediate value and returns whether the trial should be pruned.

        Raises:
            InvalidArgument: a negative step or a value that is not finite.
            FailedPrecondition: a multi-objective study, or a trial that is not running.
            NotFound: no such study or trial.
        """
        _check_reports([(step, value)])
        live = self._live(ref.study)
        _check_single_objective(live)
        with live.trial_lock(ref.number):
            with live.lock:
                lease = live.lease_of_running(ref.number, "report to")
            trial = live.live_trial(lease)
            _record_report(trial, step, value)
            return trial.should_prune()

    @deleted_is_not_found
    def should_prune(self, ref: TrialRef) -> bool:
        """The pruning decision at the last reported step. Raises as ``report``."""
        live = self._live(ref.study)
        live.check_single_objective("pruning needs a single-objective study", "trial")
        with live.trial_lock(ref.number):
            with live.lock:
                lease = live.lease_of_running(ref.number, "check pruning of")
            return live.live_trial(lease).should_prune()

    @deleted_is_not_found
    def tell(
        self,
        ref: TrialRef,
        *,
        state: TrialState,
        values: Sequence[float] = (),
        constraints: Mapping[str, float] | None = None,
        reports: Sequence[tuple[int, float]] = (),
    ) -> TrialRecord:
        """Finishes a trial. Telling a finished trial its own outcome again is a no-op.

        ``constraints`` are set first, as Optuna's ``Trial.set_constraint`` sets them (a name
        already set keeps its value), where the samplers' after-trial step and ``best_trial``
        read them. ``reports`` (step, value) are recorded first too, each as ``report`` records
        it: a client whose study never prunes sends a trial's last reports with its tell.
        Everything is checked before anything is written.

        Raises:
            InvalidArgument: a state other than COMPLETE/PRUNED/FAIL; COMPLETE without one
                finite value per objective; values with another state; a NaN constraint or one
                without a name; a report ``report`` would refuse.
            FailedPrecondition: the trial already finished with another outcome, or without
                one of ``reports``; reports to a multi-objective study.
            NotFound: no such study or trial.
        """
        _check_state(state)
        live = self._live(ref.study)
        values = list(values)
        _check_values(live, state, values)
        _check_constraints(constraints or {})
        if reports:
            _check_reports(reports, "intermediate_values")
            _check_single_objective(live)
        with live.trial_lock(ref.number):
            current = live.frozen(ref.number)
            if current.state == TrialState.RUNNING:
                try:
                    return self._finish(live, ref, state, values, constraints, reports)
                except optuna.exceptions.UpdateFinishedTrialError:
                    # Finished by another replica meanwhile (a tell retried here while the
                    # first, on a replica that died, still landed; the reaper): as if it had
                    # been finished when this call began.
                    with live.lock:
                        live.leases.pop(ref.number, None)
                    current = live.frozen(ref.number)
            if not current.state.is_finished():
                raise FailedPrecondition(
                    f"{ref} is {current.state.name}; ask for it first", field="trial"
                )
            _check_reported(ref, current, reports)
            _check_same_outcome(ref, current, state, values)
            return live.record(current)

    @staticmethod
    def _finish(
        live: LiveStudy,
        ref: TrialRef,
        state: TrialState,
        values: list[float],
        constraints: Mapping[str, float] | None,
        reports: Sequence[tuple[int, float]],
    ) -> TrialRecord:
        """Writes a running trial's constraints, reports and outcome; call with its
        ``trial_lock`` held. Raises UpdateFinishedTrialError if another replica finished it.

        The reports may go to storage in one write with the outcome (``_held_reports``)."""
        with reports_with_outcome():
            if constraints or reports:
                with live.lock:
                    running = live.lease_of_running(ref.number, "tell")
                trial = live.live_trial(running)
                _set_constraints(trial, constraints or {})
                _optuna.own_cached_trial(trial)
                for step, value in reports:
                    _record_report(trial, step, value)
            with live.lock:
                lease = live.leases.pop(ref.number, None)
                if lease is None:
                    live.check_handed_out(ref.number)
            told = lease.trial if lease and lease.trial else ref.number
            return live.record(live.tell(told, values or None, state))

    def heartbeat(self, refs: Sequence[TrialRef]) -> list[TrialRecord | None]:
        """Renews leases; None for a trial that is not running (or does not exist)."""
        out: list[TrialRecord | None] = []
        for ref in refs:
            try:
                out.append(self._heartbeat(ref))
            except (NotFound, FailedPrecondition):
                out.append(None)
        return out

    @deleted_is_not_found
    def _heartbeat(self, ref: TrialRef) -> TrialRecord:
        live = self._live(ref.study)
        with live.trial_lock(ref.number):
            with live.lock:
                lease = live.lease_of_running(ref.number, "renew")
            try:
                live.renew(lease)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Told before its ask had leased it (a tell racing the ask): not running.
                with live.lock:
                    live.leases.pop(ref.number, None)
                raise FailedPrecondition(f"{ref} is finished", field="trial") from None
            with live.lock:
                return live.record(live.frozen(ref.number))

    @deleted_is_not_found
    def set_user_attrs(self, ref: TrialRef, attrs: Mapping[str, Any]) -> TrialRecord:
        """Sets user attributes on a running trial. Raises: NotFound, FailedPrecondition."""
        live = self._live(ref.study)
        with live.trial_lock(ref.number):
            with live.lock:
                lease = live.lease_of_running(ref.number, "set user attributes of")
            trial = live.live_trial(lease)
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            with live.lock:
                return live.record(live.frozen(ref.number))

    # -- reading ---------------------------------------------------------------------------

    @deleted_is_not_found
    def get_trial(self, ref: TrialRef) -> TrialRecord:
        """Raises: NotFound."""
        live = self._live(ref.study)
        return live.record(live.frozen(ref.number))

    @deleted_is_not_found
    def list_trials(
        self, ref: StudyRef, *, states: Sequence[TrialState], after: int, limit: int
    ) -> list[TrialRecord]:
        """Trials with number > after, in number order, optionally of some states only."""
        live = self._live(ref)
        trials = live.study.get_trials(deepcopy=False, states=tuple(states) or None)
        start = _first_index_after(trials, after)
        return [live.record(t) for t in trials[start : start + limit]]

    @deleted_is_not_found
    def best_trial(self, ref: StudyRef) -> TrialRecord:
        """Raises: NotFound; FailedPrecondition (multi-objective, or no complete trial)."""
        live = self._live(ref)
        live.check_single_objective("it has a Pareto front, not one best trial", "parent")
        try:
            return live.record(live.study.best_trial)
        except ValueError:
            raise FailedPrecondition(f"{ref} has no complete trial yet", field="parent") from None

    @deleted_is_not_found
    def pareto_front(self, ref: StudyRef) -> list[TrialRecord]:
        """The Pareto-optimal complete trials (the best trial when single-objective)."""
        live = self._live(ref)
        return [live.record(t) for t in live.study.best_trials]


def _check_state(state: TrialState) -> None:
    if state not in FINISHED_STATES:
        raise InvalidArgument(
            f"a trial can be told COMPLETE, PRUNED or FAILED, not {state.name}", field="state"
        )


def _check_reports(reports: Sequence[tuple[int, float]], field: str = "") -> None:
    """Raises InvalidArgument for a step or value ``report`` would refuse; ``field`` names the
    reports' list in the request ("" for a report's own fields)."""
    if len(reports) > MAX_BATCH_REPORTS:
        raise InvalidArgument(
            f"{len(reports)} reports in one call, more than the limit "
            f"MAX_BATCH_REPORTS = {MAX_BATCH_REPORTS}",
            field=field,
        )
    for i, (step, value) in enumerate(reports):
        where = f"{field}[{i}]." if field else ""
        if not 0 <= step <= MAX_STEP:
            raise InvalidArgument(
                f"step must be in [0, 2**31 - 1], got {step}", field=f"{where}step"
            )
        check_finite([value], f"{where}value")


def _check_single_objective(live: LiveStudy) -> None:
    live.check_single_objective(
        "intermediate values and pruning need a single-objective study", "trial"
    )


def _record_report(trial: optuna.Trial, step: int, value: float) -> None:
    """Records an intermediate value; a step already reported keeps its first value."""
    if step not in _optuna.cached_trial(trial).intermediate_values:
        trial.report(value, step)


def _check_constraints(constraints: Mapping[str, float]) -> None:
    for key, value in constraints.items():
        if math.isnan(value) or not key:
            raise InvalidArgument(
                f"constraint {key!r} needs a name and a value that is not NaN, got {value}",
                field="constraints",
            )


def _check_reported(
    ref: TrialRef, current: FrozenTrial, reports: Sequence[tuple[int, float]]
) -> None:
    """Raises FailedPrecondition unless a finished trial holds every step of ``reports``
    (a retried tell whose first attempt recorded them)."""
    missing = [step for step, _ in reports if step not in current.intermediate_values]
    if missing:
        raise FailedPrecondition(
            f"cannot report to {ref}: it is {current.state.name}"
            + (" (its lease expired)" if expired(current) else "")
            + f"; step(s) {missing[:5]} not recorded",
            field="trial",
        )


def _set_constraints(trial: optuna.Trial, constraints: Mapping[str, float]) -> None:
    with warnings.catch_warnings():
        # Optuna warns that it keeps the first value of a constraint set twice: so do we.
        warnings.simplefilter("ignore")
        for key, value in constraints.items():
            trial.set_constraint(key, value)


def _check_values(live: LiveStudy, state: TrialState, values: list[float]) -> None:
    if state == TrialState.COMPLETE:
        n = len(live.config.directions)
        if len(values) != n:
            raise InvalidArgument(
                f"{live.ref} has {n} objective(s); got {len(values)} value(s)", field="values"
            )
        check_finite(values, "values")
    elif values:
        raise InvalidArgument(
            f"values go with state COMPLETE only, not {state.name}", field="values"
        )


def _check_same_outcome(
    ref: TrialRef, current: FrozenTrial, state: TrialState, values: list[float]
) -> None:
    """Raises FailedPrecondition unless a finished trial already has the outcome told."""
    if current.state == state and (state != TrialState.COMPLETE or current.values == values):
        return
    told = f"{state.name} {values}" if values else state.name
    raise FailedPrecondition(
        f"{ref} already finished as {current.state.name}"
        + (f" {current.values}" if current.values else "")
        + (" (its lease expired)" if expired(current) else "")
        + f"; cannot tell it {told}",
        field="trial",
    )


def _first_index_after(trials: Sequence[FrozenTrial], after: int) -> int:
    lo, hi = 0, len(trials)
    while lo < hi:  # trials are in number order
        mid = (lo + hi) // 2
        if trials[mid].number <= after:
            lo = mid + 1
        else:
            hi = mid
    return lo

"""Starting trials: ask (both styles), define-by-run suggest, and enqueue.

Everything here runs the sampler or changes what the sampler sees, under the study's
``sample_lock``. Asks and enqueues carry request ids: a retry returns the trials the first
created (remembered in memory, and in each trial's ``hposerve:request`` attribute, or
``hposerve:asked_by`` for an enqueued trial an ask started, which the live study reloads after
a restart). The id is in the same journal record as the trial it names (Optuna's
``create_new_trial`` with a template), so a crash cannot keep one without the other; a retry
completes what a crash cut short (the trials of a count not all made, parameters not all
sampled, a reserved enqueued trial not yet started).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain import _grid, _optuna, _specs
from hposerve.server.domain._config import MAX_ASK_COUNT, REQUEST_ATTR, check_ask_size
from hposerve.server.domain._exceptions import FailedPrecondition, InvalidArgument
from hposerve.server.domain._live_study import LiveStudy, TrialRecord, deleted_is_not_found
from hposerve.server.domain._names import StudyRef, TrialRef
from hposerve.server.domain._turns import Turn

__all__ = ["TrialAsking"]

T = TypeVar("T")


class TrialAsking:
    """Hands out trials and samples their parameters.

    Thread-safety: every method may be called from any thread; each takes the locks of one
    study (``sample_lock``, then ``lock`` briefly).
    """

    def __init__(self, live: Callable[[StudyRef], LiveStudy]) -> None:
        self._live = live

    def check_ask(
        self, ref: StudyRef, *, search_space: Mapping[str, BaseDistribution], count: int
    ) -> LiveStudy:
        """Raises what ``ask`` raises before it samples (count, size, the space against the
        sampler); returns the live study."""
        if not 1 <= count <= MAX_ASK_COUNT:
            raise InvalidArgument(
                f"count must be in [1, {MAX_ASK_COUNT}], got {count}", field="count"
            )
        check_ask_size(count, len(search_space))
        live = self._live(ref)
        _check_space_fits_sampler(live, search_space)
        return live

    @deleted_is_not_found
    def ask(
        self,
        ref: StudyRef,
        *,
        search_space: Mapping[str, BaseDistribution],
        count: int = 1,
        request_id: str = "",
    ) -> list[TrialRecord]:
        """Starts ``count`` trials; with a search space, samples all its parameters now.

        Raises:
            NotFound: no such study.
            InvalidArgument: count out of range; a space the study's sampler cannot sample.
        """
        live = self.check_ask(ref, search_space=search_space, count=count)

        with Turn(live.sample_lock) as turn:
            live.check_compatible(search_space, "search_space")
            if request_id:
                live.handed_over.wait_for(request_id)  # a retry of an ask still storing its trial
            # A retry: the trials the first call handed out, completed where a crash cut it
            # short (the trials carry the request id from their first storage record on).
            earlier = (live.requests.get(request_id) if request_id else None) or []
            numbers = [n for n in earlier if _sampled(live.resume, n, search_space, request_id)]
            try:
                while len(numbers) < count:
                    # Only the last trial of a request may hand the turn over (``_turns``),
                    # and only where the sampler draws blind.
                    last = turn if live.draws_blind and len(numbers) == count - 1 else None
                    if last is not None and request_id:
                        live.handed_over.begin(request_id)
                    numbers.append(self._ask_one(live, search_space, request_id, last).number)
            finally:
                if request_id:
                    if numbers:
                        # Partial when sampling failed: a retry resumes from there, as after a
                        # crash.
                        live.requests.remember(request_id, numbers)
                    live.handed_over.done(request_id)
        with live.lock:
            return live.records(numbers)

    @staticmethod
    def _ask_one(
        live: LiveStudy,
        search_space: Mapping[str, BaseDistribution],
        request_id: str,
        turn: Turn | None,
    ) -> optuna.Trial:
        return _sampled(live.ask, search_space, request_id=request_id, turn=turn)

    @deleted_is_not_found
    def suggest(self, ref: TrialRef, name: str, distribution: BaseDistribution) -> Any:
        """Samples one parameter of a running trial (define-by-run); repeats return the same.

        Raises:
            NotFound: no such study or trial.
            FailedPrecondition: the trial is not running.
            InvalidArgument: a distribution that conflicts with the parameter's earlier one,
                or that the sampler cannot sample.
        """
        live = self._live(ref.study)
        _check_space_fits_sampler(live, {name: distribution})
        with live.sample_lock:
            with live.lock:
                lease = live.lease_of_running(ref.number, "suggest a parameter of")
                trial = live.live_trial(lease)
            live.check_compatible({name: distribution}, "parameter")
            # Requests of one trial arrive on any thread: start each suggest afresh.
            _optuna.drop_trials_cache(live.study)
            try:
                start = time.perf_counter()
                value = _optuna.suggest(trial, name, distribution)
                live.add_sample_seconds(trial, time.perf_counter() - start)
                return value
            except optuna.exceptions.UpdateFinishedTrialError:
                # Told, or its lease expired, while the sampler was at work.
                raise FailedPrecondition(
                    f"{ref} finished during the suggest", field="trial"
                ) from None
            except _specs.SAMPLER_REFUSALS as e:
                raise InvalidArgument(f"cannot suggest {name!r}: {e}", field="parameter") from e

    @deleted_is_not_found
    def enqueue(
        self,
        ref: StudyRef,
        *,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any],
        skip_if_exists: bool,
        request_id: str = "",
    ) -> TrialRecord | None:
        """Enqueues parameters for a future ask. None when skipped as already existing.

        Raises:
            NotFound: no such study.
        """
        live = self._live(ref)

        def enqueue() -> list[int]:
            # As ``Study.enqueue_trial``, the request id in the trial's one storage record.
            if skip_if_exists and _optuna.should_skip_enqueue(live.study, params):
                return []
            attrs: dict[str, Any] = {"fixed_params": dict(params)}
            if request_id:
                attrs[REQUEST_ATTR] = request_id
            waiting = optuna.trial.create_trial(
                state=TrialState.WAITING, system_attrs=attrs, user_attrs=dict(user_attrs)
            )
            return [live.add_trial(waiting)]

        with live.sample_lock:
            numbers = live.requests.once(request_id or None, enqueue)
            return live.record(live.frozen(numbers[0])) if numbers else None

    @deleted_is_not_found
    def add_trials(
        self, ref: StudyRef, trials: Sequence[FrozenTrial], *, request_id: str = ""
    ) -> list[TrialRecord]:
        """Adds trials with known outcomes, as ``optuna.Study.add_trials``: no sampler runs.

        All are checked before any is added, so a bad one adds none.

        Raises:
            NotFound: no such study.
            InvalidArgument: a RUNNING trial (ask for one instead), a trial Optuna refuses
                (values that do not fit its state or the study's objectives, a parameter
                outside its distribution), or a distribution that conflicts with the study's.
        """
        live = self._live(ref)
        for i, trial in enumerate(trials):
            _check_added(live, trial, f"trials[{i}]")

        with live.sample_lock:
            # A retry adds what a crash left out: the first call added them in order, each
            # with the request id in its one storage record.
            numbers = list(live.requests.get(request_id) or []) if request_id else []
            for trial in trials[len(numbers) :]:
                if request_id:
                    trial.system_attrs[REQUEST_ATTR] = request_id
                numbers.append(live.add_trial(trial))
            if request_id:
                live.requests.remember(request_id, numbers)
        with live.lock:
            return live.records(numbers)

    @deleted_is_not_found
    def asked_by_request(self, ref: StudyRef, request_id: str) -> list[TrialRecord] | None:
        """The trials that an earlier ask (or enqueue) with ``request_id`` created, or None.

        Raises:
            NotFound: no such study.
        """
        live = self._live(ref)
        with live.sample_lock:
            numbers = live.requests.get(request_id)
        if numbers is None:
            return None
        with live.lock:
            return live.records(numbers)


def _check_added(live: LiveStudy, trial: FrozenTrial, field: str) -> None:
    if trial.state == TrialState.RUNNING:
        raise InvalidArgument(
            f"{field} is RUNNING: add finished or waiting trials; ask for a running one",
            field=f"{field}.state",
        )
    n = len(live.config.directions)
    try:
        _optuna.validate_trial(trial)
    except ValueError as e:
        raise InvalidArgument(f"{field}: {e}", field=field) from None
    if trial.values is not None and len(trial.values) != n:
        raise InvalidArgument(
            f"{field} has {len(trial.values)} value(s); {live.ref} has {n} objective(s)",
            field=f"{field}.values",
        )
    live.check_compatible(trial.distributions, f"{field}.params")


def _check_space_fits_sampler(live: LiveStudy, space: Mapping[str, BaseDistribution]) -> None:
    """Refuses, before a trial is created, a space the study's sampler would fail on."""
    sampler = live.config.sampler
    if sampler.HasField("bruteforce"):  # Optuna enumerates (and caches) every value
        _grid.check_enumerable(space, "search_space")
    # The grid sampler can only sample its own axes.
    if sampler.HasField("grid"):
        axes = {axis.name for axis in sampler.grid.search_space}
        missing = sorted(set(space) - axes)
        if missing:
            raise InvalidArgument(
                f"parameters {missing} are not in the grid sampler's search space {sorted(axes)}",
                field="search_space",
            )
    # CMA-ES with a start point needs it for every numeric parameter (Optuna asserts it
    # only once sampling has begun, after the trial exists).
    if sampler.HasField("cmaes") and sampler.cmaes.x0.fields:
        numeric = {n for n, d in space.items() if not isinstance(d, CategoricalDistribution)}
        missing = sorted(numeric - set(sampler.cmaes.x0.fields))
        if missing:
            raise InvalidArgument(
                f"the cmaes sampler's x0 has no start value for parameters {missing}",
                field="search_space",
            )


def _sampled(sample: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``sample(...)``, a sampler's refusal of the space raised as the caller's error."""
    try:
        return sample(*args, **kwargs)
    except optuna.exceptions.UpdateFinishedTrialError:
        # Told through another call (or replica) before this ask handed it out.
        raise FailedPrecondition("the trial finished while it was asked", field="trial") from None
    except _specs.SAMPLER_REFUSALS as e:
        raise InvalidArgument(f"cannot sample this search space: {e}", field="search_space") from e

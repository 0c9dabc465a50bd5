"""The study handle: ask, tell, optimize, and read results, as ``optuna.Study``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hposerve.v1 import study_service_pb2 as pb

from ._distributions import add_search_space, value_to_proto
from ._enums import StudyDirection, TrialState, directions_from_proto, state_to_enum, state_to_proto
from ._errors import FailedPrecondition
from ._heartbeat import DEFAULT_LEASE_SECONDS, Heartbeat
from ._names import parse_study, trial_name
from ._optimize import as_floats, infeasible
from ._optimize import optimize as run_optimize
from ._study_compat import StudyCompat
from ._transport import Transport
from ._trial import FrozenTrial, Trial, user_attrs_json

ConstraintsFunc = Callable[[Any], Any]


class Study(StudyCompat):
    """A study on the server, like ``optuna.Study``. Get one from ``Client.create_study``,
    ``Client.load_study`` or ``Client.get_study``.

    Thread-safe: several threads may ask and tell through one handle. Picklable: a study
    unpickled elsewhere reconnects to the same server (its token is not pickled: it comes from
    ``HPOSERVE_TOKEN`` there, or from a client of the same target in the same process).

    Attributes:
        study_name: The short study name (``name`` too).
        resource_name: ``namespaces/{namespace}/studies/{name}``.
        directions: One :class:`StudyDirection` per objective (equal to Optuna's).
    """

    def __init__(
        self,
        transport: Transport,
        heartbeat: Heartbeat,
        proto: pb.Study,
        *,
        constraints_func: ConstraintsFunc | None = None,
    ) -> None:
        self._transport = transport
        self._heartbeat = heartbeat
        self._proto = proto
        self._stop_requested = False
        self._constraints_func = constraints_func
        self.resource_name: str = proto.name
        self.name: str = parse_study(proto.name).study
        self.directions: list[StudyDirection] = directions_from_proto(proto.directions)

    def __repr__(self) -> str:
        return f"Study(name={self.resource_name!r}, directions={self.directions!r})"

    @property
    def study_name(self) -> str:
        """The short study name (Optuna's spelling)."""
        return self.name

    @property
    def direction(self) -> StudyDirection:
        """The direction of a single-objective study.

        Raises:
            RuntimeError: The study has several objectives; use ``directions``.
        """
        if len(self.directions) != 1:
            raise RuntimeError("this study has several objectives; use `directions`")
        return self.directions[0]

    @property
    def lease_seconds(self) -> float:
        """How long an asked trial lives without a heartbeat."""
        options = self._proto.options
        return options.lease_seconds if options.HasField("lease_seconds") else DEFAULT_LEASE_SECONDS

    @property
    def _never_prunes(self) -> bool:
        """Whether a report's answer is known before it comes: a single-objective study whose
        pruner is ``none`` (reports then need no round trip of their own)."""
        return len(self.directions) == 1 and self._proto.pruner.WhichOneof("kind") == "none"

    @property
    def proto(self) -> pb.Study:
        """The study as the server last described it (sampler, pruner, options, counts)."""
        return self._proto

    # Ask and tell.

    def ask(
        self,
        search_space: Mapping[str, Any] | None = None,
        *,
        fixed_distributions: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Trial:
        """Starts a trial.

        Args:
            search_space: ``{name: distribution}`` to sample every parameter now, in one round
                trip (fixed space); None for define-by-run (``trial.suggest_*``). Distributions
                are ours, Optuna's or proto ones.
            fixed_distributions: Optuna's name for ``search_space``.
            request_id: Idempotency key; a fresh one is made if None.

        Returns:
            The running trial. Its lease is renewed until it is told.
        """
        space = search_space if search_space is not None else fixed_distributions
        return self.ask_batch(space, 1, request_id=request_id)[0]

    def ask_batch(
        self,
        search_space: Mapping[str, Any] | None,
        count: int,
        *,
        request_id: str | None = None,
    ) -> list[Trial]:
        """Starts ``count`` trials in one round trip.

        Args:
            search_space: As for :meth:`ask`.
            count: How many trials, 1 to 1000.
            request_id: Idempotency key; a fresh one is made if None.

        Returns:
            The running trials.
        """
        request = pb.AskTrialsRequest(
            parent=self.resource_name, count=count, request_id=request_id or ""
        )
        add_search_space(request.search_space, search_space or {})
        response = self._transport.call(
            "AskTrials", request, timeout=self._transport.config.ask_timeout
        )
        trials = [Trial(self, t) for t in response.trials]
        for trial in trials:
            self._heartbeat.register(trial, self.lease_seconds)
        return trials

    def tell(
        self,
        trial: Trial | int,
        values: float | Sequence[float] | None = None,
        state: Any = None,
        skip_if_finished: bool = False,
        *,
        constraints: Mapping[str, float] | Sequence[float] | None = None,
    ) -> FrozenTrial:
        """Finishes a trial, with the semantics of ``optuna.Study.tell``.

        With ``state=None``, the trial completes if ``values`` are usable (one number per
        objective, no NaN) and fails (with a warning) otherwise. A pruned trial gets its last
        intermediate value as its value, as in Optuna. Telling a finished trial the outcome it
        has again is not an error (a retried tell needs no request id).

        Args:
            trial: The trial, or its number.
            values: The objective value, or one per objective; needed for a complete trial.
            state: ``"complete"``, ``"pruned"``, ``"failed"``, a :class:`TrialState` or
                Optuna's; None as above.
            skip_if_finished: Return the trial as it is if it finished already.
            constraints: Constraint values (feasible when <= 0), by name or as a list (named
                ``"0"``, ``"1"``...), added to those set with ``trial.set_constraint``. A
                sampler given with a ``constraints_func`` computes them here.

        Returns:
            The finished trial as recorded.

        Raises:
            InvalidArgument: (a ValueError, as Optuna raises) ``state`` is COMPLETE and
                ``values`` are not usable, or values come with another state.
            FailedPrecondition: The trial finished already with another outcome (and not
                ``skip_if_finished``).
        """
        request = self._tell_request(trial, values, state, constraints)
        try:
            response = self._told(trial, "TellTrial", request)
        except FailedPrecondition:
            if skip_if_finished:
                return self.get_trial(trial.number if isinstance(trial, Trial) else trial)
            raise
        return FrozenTrial.from_proto(response)

    def _tell_request(
        self,
        trial: Trial | int,
        values: float | Sequence[float] | None,
        state: Any,
        constraints: Mapping[str, float] | Sequence[float] | None,
    ) -> pb.TellTrialRequest:
        name = trial.name if isinstance(trial, Trial) else trial_name(self.resource_name, trial)
        wanted, values = _outcome(state, values, len(self.directions))
        request = pb.TellTrialRequest(
            trial=name,
            state=state_to_proto(wanted),
            values=as_floats(values),  # with PRUNED or FAILED: refused, as Optuna refuses it
            constraints=_constraints(self, trial, wanted, constraints),
        )
        if isinstance(trial, Trial):
            trial._settle_deferred()  # its reports reach the server before its tell
        # Its reports this thread still holds go with the tell: one message for both.
        request.intermediate_values.extend(self._transport.take_held(name))
        return request

    def _told(self, trial: Trial | int, method: str, request: Any) -> Any:
        """Sends a tell (TellTrial; or TellAndAsk, which samples: the ask's deadline)."""
        name = request.trial if method == "TellTrial" else request.tell.trial
        chained = method == "TellAndAsk"
        timeout = self._transport.config.ask_timeout if chained else None
        try:
            # A quota that refuses a tell-and-ask may be waiting for that very tell: the
            # caller tells alone at once (``_optimize``), rather than wait here.
            response = self._transport.call(
                method, request, timeout=timeout, wait_for_quota=not chained
            )
        except FailedPrecondition:  # finished or expired on the server: no renewing it either
            self._finish_locally(trial, name)
            raise
        self._finish_locally(trial, name)
        if isinstance(trial, Trial):
            trial._raise_deferred()  # a report sent without waiting failed: say so now
        return response

    def _finish_locally(self, trial_or_number: Trial | int, name: str) -> None:
        self._heartbeat.unregister(name)
        if isinstance(trial_or_number, Trial):
            trial_or_number._mark_finished()

    def optimize(
        self,
        func: Callable[[Trial], Any],
        n_trials: int | None = None,
        timeout: float | None = None,
        n_jobs: int = 1,
        catch: Iterable[type[Exception]] | type[Exception] = (),
        callbacks: Iterable[Callable[[Study, FrozenTrial], None]] | None = None,
        gc_after_trial: bool = False,
        show_progress_bar: bool = False,
        *,
        search_space: Mapping[str, Any] | None = None,
    ) -> None:
        """Runs ``func`` on trials, as ``optuna.Study.optimize`` does (same arguments).

        A returned value (or sequence, for several objectives) completes the trial; NaN or a
        value that is not a number fails it. ``TrialPruned`` (ours, Optuna's, or any class of
        that name) prunes it. An exception in ``catch`` fails it and the loop goes on; any
        other fails it and is re-raised. Each trial is logged as Optuna logs it.

        Args:
            func: ``func(trial) -> float | Sequence[float]``.
            n_trials: Stop after this many trials (all threads together); None: no limit.
            timeout: Start no new trial after this many seconds; None for no limit.
            n_jobs: Threads running trials at once; -1 for one per CPU.
            catch: Exception classes that fail a trial without stopping the loop.
            callbacks: Each called as ``callback(study, frozen_trial)`` after every trial
                (Optuna's ``MaxTrialsCallback`` works).
            gc_after_trial: Run ``gc.collect()`` after each trial.
            show_progress_bar: A tqdm progress bar (when tqdm is installed).
            search_space: Fixed space to ask each trial with; None for define-by-run.
        """
        self._stop_requested = False
        run_optimize(
            self,
            func,
            n_trials=n_trials,
            timeout=timeout,
            n_jobs=n_jobs,
            catch=tuple(catch) if not isinstance(catch, type) else catch,
            callbacks=list(callbacks or ()),
            gc_after_trial=gc_after_trial,
            show_progress_bar=show_progress_bar,
            search_space=search_space,
            stopped=lambda: self._stop_requested,
        )

    def stop(self) -> None:
        """Makes a running :meth:`optimize` return after the current trials."""
        self._stop_requested = True

    def enqueue_trial(
        self,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
        *,
        request_id: str | None = None,
    ) -> FrozenTrial:
        """Queues parameter values for a future ask (the others are sampled then).

        Args:
            params: Values of some or all parameters.
            user_attrs: User attributes the trial will carry.
            skip_if_exists: Do nothing if a trial with the same parameters exists.
            request_id: Idempotency key; a fresh one is made if None.

        Returns:
            The waiting trial as recorded.
        """
        request = pb.EnqueueTrialRequest(
            parent=self.resource_name,
            params={name: value_to_proto(v) for name, v in params.items()},
            skip_if_exists=skip_if_exists,
            request_id=request_id or "",
        )
        if user_attrs:
            request.user_attrs_json = user_attrs_json(user_attrs)
        return FrozenTrial.from_proto(self._transport.call("EnqueueTrial", request))


def _outcome(state: Any, values: Any, n_objectives: int) -> tuple[TrialState, Any]:
    """The state and values a tell records, by Optuna's rules (see ``Study.tell``)."""
    wanted = None if state is None else state_to_enum(state)
    problem = infeasible(values, n_objectives) if values is not None else None
    if wanted is None:
        if values is None or problem is not None:
            warnings.warn(problem or "The value None could not be cast to float.", stacklevel=3)
            return TrialState.FAIL, None
        return TrialState.COMPLETE, values
    # Told a state explicitly: the server checks the values (InvalidArgument, a ValueError).
    return wanted, values


def _constraints(
    study: Study,
    trial: Trial | int,
    state: TrialState,
    given: Mapping[str, float] | Sequence[float] | None,
) -> dict[str, float]:
    """The constraints a tell sends: set on the trial, given, and computed by the sampler's
    ``constraints_func``."""
    out = trial.pending_constraints() if isinstance(trial, Trial) else {}
    if given is not None:
        named = given if isinstance(given, Mapping) else dict(enumerate(given))
        out.update({str(k): float(v) for k, v in named.items()})
    if study._constraints_func is not None and state in (TrialState.COMPLETE, TrialState.PRUNED):
        # As Optuna's samplers run constraints_func after a complete or pruned trial.
        frozen = trial._frozen() if isinstance(trial, Trial) else study.get_trial(trial)
        computed = study._constraints_func(frozen)
        out.update({str(i): float(v) for i, v in enumerate(computed)})
    return out

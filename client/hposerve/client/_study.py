"""The study handle: ask, tell, optimize, and read results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hposerve.v1 import study_service_pb2 as pb

from ._distributions import search_space_to_proto, struct_to_proto, value_to_proto
from ._enums import directions_from_proto, state_to_proto
from ._errors import FailedPrecondition
from ._heartbeat import DEFAULT_LEASE_SECONDS, Heartbeat
from ._names import parse_study, trial_name
from ._optimize import as_floats
from ._optimize import optimize as run_optimize
from ._transport import Transport
from ._trial import FrozenTrial, Trial


class Study:
    """A study on the server. Get one from ``Client.create_study`` or ``Client.get_study``.

    Thread-safe: several threads may ask and tell through one handle.

    Attributes:
        name: The short study name.
        resource_name: ``namespaces/{namespace}/studies/{name}``.
        directions: ``"minimize"`` or ``"maximize"``, one per objective.
    """

    def __init__(self, transport: Transport, heartbeat: Heartbeat, proto: pb.Study) -> None:
        self._transport = transport
        self._heartbeat = heartbeat
        self._proto = proto
        self._stop_requested = False
        self.resource_name: str = proto.name
        self.name: str = parse_study(proto.name).study
        self.directions: list[str] = directions_from_proto(proto.directions)

    def __repr__(self) -> str:
        return f"Study(name={self.resource_name!r}, directions={self.directions!r})"

    @property
    def study_name(self) -> str:
        """The short study name (Optuna's spelling)."""
        return self.name

    @property
    def direction(self) -> str:
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
    def proto(self) -> pb.Study:
        """The study as the server last described it (sampler, pruner, options, counts)."""
        return self._proto

    # Ask and tell.

    def ask(
        self, search_space: Mapping[str, Any] | None = None, *, request_id: str | None = None
    ) -> Trial:
        """Starts a trial.

        Args:
            search_space: ``{name: distribution}`` to sample every parameter now, in one round
                trip (fixed space); None for define-by-run (``trial.suggest_*``). Distributions
                are ours, Optuna's or proto ones.
            request_id: Idempotency key; a fresh one is made if None.

        Returns:
            The running trial. Its lease is renewed until it is told.
        """
        return self.ask_batch(search_space, 1, request_id=request_id)[0]

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
            parent=self.resource_name,
            search_space=search_space_to_proto(search_space or {}),
            count=count,
            request_id=request_id or "",
        )
        response = self._transport.call(
            "AskTrials", request, timeout=self._transport.config.ask_timeout
        )
        trials = [Trial(self, t) for t in response.trials]
        for trial in trials:
            self._heartbeat.register(trial, self.lease_seconds)
        return trials

    def tell(
        self,
        trial_or_number: Trial | int,
        values: float | Sequence[float] | None = None,
        *,
        state: Any = "complete",
    ) -> FrozenTrial:
        """Finishes a trial.

        Telling a finished trial again with the same outcome is not an error (so a retried tell
        needs no request id).

        Args:
            trial_or_number: The trial, or its number.
            values: The objective value, or one per objective; needed for ``"complete"``.
            state: ``"complete"``, ``"pruned"`` or ``"failed"`` (Optuna's ``TrialState``
                members work too). None, as in Optuna: complete if values are given, else
                failed.

        Returns:
            The finished trial as recorded.
        """
        name = (
            trial_or_number.name
            if isinstance(trial_or_number, Trial)
            else trial_name(self.resource_name, trial_or_number)
        )
        if state is None:  # Optuna's convention
            state = "complete" if values is not None else "failed"
        request = pb.TellTrialRequest(
            trial=name,
            state=state_to_proto(state),
            values=as_floats(values),
        )
        try:
            response = self._transport.call("TellTrial", request)
        except FailedPrecondition:
            # Finished or expired on the server: renewing it is pointless either way.
            self._finish_locally(trial_or_number, name)
            raise
        self._finish_locally(trial_or_number, name)
        return FrozenTrial.from_proto(response)

    def _finish_locally(self, trial_or_number: Trial | int, name: str) -> None:
        self._heartbeat.unregister(name)
        if isinstance(trial_or_number, Trial):
            trial_or_number._mark_finished()

    def optimize(
        self,
        objective: Callable[[Trial], Any],
        n_trials: int | None = None,
        *,
        timeout: float | None = None,
        catch: type[Exception] | Sequence[type[Exception]] = (),
        search_space: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callable[[Study, FrozenTrial], None]] = (),
    ) -> None:
        """Runs ``objective`` on trials one after another, as ``optuna.Study.optimize`` does.

        A returned value (or sequence, for several objectives) completes the trial; NaN or a
        value that is not a number fails it. ``TrialPruned`` (ours, Optuna's, or any class of
        that name) prunes it. An exception in ``catch`` fails it and the loop goes on; any
        other fails it and is re-raised.

        Args:
            objective: ``objective(trial) -> float | Sequence[float]``.
            n_trials: Stop after this many trials; None for no limit.
            timeout: Start no new trial after this many seconds; None for no limit.
            catch: Exception classes that fail a trial without stopping the loop.
            search_space: Fixed space to ask each trial with; None for define-by-run.
            callbacks: Each called as ``callback(study, frozen_trial)`` after every trial.
        """
        self._stop_requested = False
        run_optimize(
            self,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            catch=catch,
            search_space=search_space,
            callbacks=callbacks,
            stopped=lambda: self._stop_requested,
        )

    def stop(self) -> None:
        """Makes a running :meth:`optimize` return after the current trial."""
        self._stop_requested = True

    def enqueue_trial(
        self,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any] | None = None,
        *,
        skip_if_exists: bool = False,
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
            request.user_attrs.CopyFrom(struct_to_proto(user_attrs))
        return FrozenTrial.from_proto(self._transport.call("EnqueueTrial", request))

    # Results.

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials in number order."""
        return self.get_trials()

    def get_trials(
        self, states: Iterable[Any] | None = None, *, deepcopy: bool = True
    ) -> list[FrozenTrial]:
        """Returns the trials in number order, fetching them a page at a time.

        Args:
            states: Only trials in these states (``"complete"``, ... or Optuna's
                ``TrialState`` members); None for all.
            deepcopy: Ignored (results are always fresh copies); accepted for Optuna code.
        """
        del deepcopy
        request = pb.ListTrialsRequest(
            parent=self.resource_name, states=[state_to_proto(s) for s in states or ()]
        )
        return [
            FrozenTrial.from_proto(t)
            for t in self._transport.pages("ListTrials", request, "trials")
        ]

    def get_trial(self, number: int) -> FrozenTrial:
        """Returns one trial by number.

        Raises:
            NotFound: No such trial.
        """
        request = pb.GetTrialRequest(name=trial_name(self.resource_name, number))
        return FrozenTrial.from_proto(self._transport.call("GetTrial", request))

    @property
    def best_trial(self) -> FrozenTrial:
        """The best complete trial of a single-objective study."""
        request = pb.GetBestTrialRequest(parent=self.resource_name)
        return FrozenTrial.from_proto(self._transport.call("GetBestTrial", request))

    @property
    def best_value(self) -> float:
        """The objective value of :attr:`best_trial`."""
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of :attr:`best_trial`."""
        return self.best_trial.params

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The Pareto-optimal complete trials."""
        request = pb.GetParetoFrontRequest(parent=self.resource_name)
        response = self._transport.call("GetParetoFront", request)
        return [FrozenTrial.from_proto(t) for t in response.trials]

    def delete(self) -> None:
        """Deletes the study and all its trials."""
        self._transport.call("DeleteStudy", pb.DeleteStudyRequest(name=self.resource_name))

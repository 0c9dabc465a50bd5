"""The live trial a training loop uses (``FrozenTrial``, the record, is in ``_frozen_trial``)."""

from __future__ import annotations

import json
import math
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2

from ._distributions import (
    CategoricalDistribution,
    Distribution,
    FloatDistribution,
    IntDistribution,
    ParamValue,
    distribution_to_proto,
    to_json_value,
    typed_value,
    value_to_proto,
)
from ._enums import TrialState
from ._errors import HposerveError, InvalidArgument
from ._frozen_trial import (
    CONSTRAINTS_KEY,
    FrozenTrial,
    SuggestAliases,
    check_compatible,
    check_constraint,
    constraints_of,
    json_object,
    local_time,
    params_from_proto,
    user_attrs_from_proto,
)

if TYPE_CHECKING:
    from ._study import Study


__all__ = ["FrozenTrial", "Trial"]


def user_attrs_json(attrs: Mapping[str, Any]) -> str:
    """User attributes as the JSON text the server stores with their types."""
    return json.dumps({str(k): to_json_value(v) for k, v in attrs.items()})


class Trial(SuggestAliases):
    """A running trial: suggest parameters, report progress, then ``study.tell`` it.

    Works like ``optuna.Trial`` so that an Optuna objective runs unchanged. A trial is used
    by one thread at a time; the client's heartbeat thread renews its lease until it is told.
    Constraints set with :meth:`set_constraint` travel with the tell.

    Attributes:
        study: The study the trial belongs to.
        number: The trial's number within its study.
        name: Resource name, ``namespaces/{ns}/studies/{study}/trials/{number}``.
        params: Parameter values by name, growing as parameters are suggested.
        distributions: Parameter distributions by name.
        user_attrs: User attributes, as set on this handle (types kept).
        datetime_start: When the server started the trial (UTC).
    """

    def __init__(self, study: Study, proto: pb.Trial) -> None:
        self.study = study
        self.number: int = proto.number
        self.name: str = proto.name
        self.params, self.distributions = params_from_proto(proto.params)
        self.user_attrs: dict[str, Any] = user_attrs_from_proto(proto)
        self.datetime_start = local_time(proto, "start_time")
        self._system_attrs: dict[str, Any] = json_object(proto.system_attrs_json)
        self._constraints: dict[str, float] = {}  # set here, sent with the tell
        self._intermediate: dict[int, float] = {}
        self._prune_decision: bool | None = None
        # Reports sent without waiting for their answer (a study that never prunes): the
        # session they went on, and the first error their answers brought.
        self._deferred_on: Any = None
        self._deferred_error: HposerveError | None = None
        self._lock = threading.Lock()
        self._running = True

    def __repr__(self) -> str:
        return f"Trial(name={self.name!r}, params={self.params!r})"

    @property
    def running(self) -> bool:
        """False once told, or once a heartbeat learned that the server no longer runs it
        (its lease expired); calls on such a trial fail with FailedPrecondition."""
        return self._running

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """Suggests a real value in ``[low, high]``.

        Args:
            name: Parameter name. A name suggested before returns its value again.
            low: Lower bound, included.
            high: Upper bound, included.
            step: Grid step, or None for a continuous range.
            log: Sample on a log scale.

        Returns:
            The value the server's sampler chose.
        """
        value = self._suggest(name, FloatDistribution(low, high, log, step))
        return float(value)  # type: ignore[arg-type]

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """Suggests an integer in ``[low, high]``.

        Args:
            name: Parameter name. A name suggested before returns its value again.
            low: Lower bound, included.
            high: Upper bound, included.
            step: Spacing of the values.
            log: Sample on a log scale.

        Returns:
            The value the server's sampler chose.
        """
        value = self._suggest(name, IntDistribution(low, high, log, step))
        return int(value)  # type: ignore[arg-type]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """Suggests one of ``choices`` (None, bool, int, float or str).

        Args:
            name: Parameter name. A name suggested before returns its value again.
            choices: The candidates.

        Returns:
            The chosen element of ``choices`` itself (so numpy scalars stay numpy scalars).
        """
        choices = tuple(choices)
        value = self._suggest(name, CategoricalDistribution(choices))
        wanted = value_to_proto(value)
        for choice in choices:
            if value_to_proto(choice) == wanted:
                return choice
        return value

    def _suggest(self, name: str, distribution: Distribution) -> ParamValue:
        with self._lock:
            # Known already: sampled by a fixed-space ask, or suggested before; Optuna refuses
            # another kind of distribution (ValueError) and returns the value otherwise. A value
            # the server sent without a distribution (e.g. enqueued, not yet set) is still
            # suggested, so that the server records it in the trial.
            if name in self.distributions and name in self.params:
                check_compatible(self.distributions[name], distribution)
                return self.params[name]
        request = pb.SuggestParameterRequest(
            trial=self.name,
            parameter=types_pb2.ParameterSpec(
                name=name, distribution=distribution_to_proto(distribution)
            ),
        )
        transport = self.study._transport
        response = transport.call("SuggestParameter", request, timeout=transport.config.ask_timeout)
        value = typed_value(response.value, distribution)
        with self._lock:
            self.params[name] = value
            self.distributions[name] = distribution
        return value

    def report(self, value: float, step: int) -> bool:
        """Reports an intermediate objective value and returns the pruning decision.

        One round trip; the decision is kept for :meth:`should_prune`. On a single-objective
        study whose pruner is ``none`` the decision is known (never prune), so the report
        costs no round trip: it is held, and goes with the trial's tell (one message for
        both), or before this thread's next call that waits, or with the next heartbeat,
        whichever comes first. If the server refuses it, this trial's next call (a report,
        ``should_prune``, its tell) raises that error. Bad values and steps are refused at
        once either way.

        Args:
            value: The intermediate value (a float, or anything ``float()`` accepts).
            step: The step (e.g. epoch) it belongs to.

        Returns:
            True if the pruner says to stop this trial now.
        """
        request = pb.ReportIntermediateValueRequest(
            trial=self.name, step=int(step), value=float(value)
        )
        transport = self.study._transport
        if self.study._never_prunes:
            # The answer can only be "do not prune": the trial goes on at once, the answer is
            # read with the next call, and an error in it is raised by this trial's next call.
            self._raise_deferred()
            _check_report(request.step, request.value)
            self._deferred_on = transport.defer(
                "ReportIntermediateValue", request, self._on_deferred_error
            )
            self._intermediate.setdefault(request.step, request.value)
            self._prune_decision = False
            return False
        self._raise_deferred()
        response = transport.call("ReportIntermediateValue", request)
        self._intermediate.setdefault(int(step), float(value))  # the server keeps the first too
        self._prune_decision = response.should_prune
        return response.should_prune

    def _on_deferred_error(self, error: HposerveError) -> None:
        if self._deferred_error is None:
            self._deferred_error = error

    def _settle_deferred(self) -> None:
        """Makes sure the answers of reports sent earlier without waiting are in (a call on
        the same thread reads them first; from another thread they are read now).

        The session is kept, not forgotten once settled: on its own thread settling does
        nothing, and reports it holds must still be sent and read if the trial moves to
        another thread before that thread's next call (e.g. told elsewhere).
        """
        if self._deferred_on is not None:
            self.study._transport.settle(self._deferred_on)

    def _raise_deferred(self) -> None:
        """Raises the error of a report sent earlier without waiting, once its answer is in."""
        self._settle_deferred()
        error, self._deferred_error = self._deferred_error, None
        if error is not None:
            raise error

    def should_prune(self) -> bool:
        """Returns whether to stop this trial now.

        After a :meth:`report`, returns its decision without a round trip; before any report,
        asks the server.
        """
        self._raise_deferred()
        if self._prune_decision is not None:
            return self._prune_decision
        response = self.study._transport.call("ShouldPrune", pb.ShouldPruneRequest(trial=self.name))
        return response.should_prune

    def set_user_attr(self, key: str, value: Any) -> None:
        """Sets a user attribute (any JSON-like value, types kept) on the trial, on the server."""
        self.set_user_attrs({key: value})

    def set_user_attrs(self, attrs: dict[str, Any]) -> None:
        """Sets several user attributes in one round trip."""
        request = pb.SetTrialUserAttributesRequest(
            trial=self.name, user_attrs_json=user_attrs_json(attrs)
        )
        self.study._transport.call("SetTrialUserAttributes", request)
        self.user_attrs.update(attrs)

    def set_constraint(self, key: str, value: float) -> None:
        """Sets a constraint value, as ``optuna.Trial.set_constraint``: feasible when <= 0.

        Kept with the trial and sent with its tell (no round trip now); the server stores it
        where Optuna's samplers and ``best_trial`` read constraints. A name already set keeps
        its first value (with a warning, as in Optuna).

        Raises:
            TypeError: ``value`` is not a number.
            ValueError: ``value`` is NaN.
        """
        number = check_constraint(key, value)
        with self._lock:
            if key in self.constraints:
                warnings.warn(
                    "The constraint value is ignored because this constraint "
                    f"`{key=}` is already set.",
                    stacklevel=2,
                )
                return
            self._constraints[key] = number

    @property
    def constraints(self) -> dict[str, float]:
        """Constraint values by name: those the server has and those set here."""
        return {**constraints_of(self._system_attrs), **self._constraints}

    def pending_constraints(self) -> dict[str, float]:
        """The constraints set here, not yet sent (the tell sends them)."""
        return dict(self._constraints)

    @property
    def relative_params(self) -> dict[str, Any]:
        """Not available: Optuna's relative parameters live on the server's trial.

        Raises:
            NotImplementedError: Always.
        """
        raise NotImplementedError(
            "relative_params are sampled and kept by the server's sampler, which serves each "
            "suggest_* call; read trial.params for the values suggested so far"
        )

    @property
    def storage(self) -> Any:
        """Not available: the trial's storage is the server's.

        Raises:
            NotImplementedError: Always (code writing system attributes through
                ``trial.storage``, such as Optuna's ``report_cross_validation_scores``, cannot
                run on a remote trial).
        """
        raise NotImplementedError(
            "trial.storage is the server's storage, not reachable from the client; use "
            "trial.set_user_attr, trial.set_constraint and trial.report instead"
        )

    def _frozen(self) -> FrozenTrial:
        """A record of the trial as this handle knows it (for a constraints function)."""
        system_attrs = dict(self._system_attrs)
        for key, value in self._constraints.items():
            system_attrs[f"{CONSTRAINTS_KEY}:{key}"] = value
        return FrozenTrial(
            number=self.number,
            state=TrialState.RUNNING,
            values=None,
            params=dict(self.params),
            distributions=dict(self.distributions),
            intermediate_values=dict(self._intermediate),
            user_attrs=dict(self.user_attrs),
            datetime_start=self.datetime_start,
            datetime_complete=None,
            name=self.name,
            system_attrs=system_attrs,
        )

    def _mark_finished(self) -> None:
        self._running = False


def _check_report(step: int, value: float) -> None:
    """Refuses at once what the server would refuse in a report's answer (as it words it)."""
    if not 0 <= step <= 2**31 - 1:
        message = f"step must be in [0, 2**31 - 1], got {step}"
        raise InvalidArgument(message, field_violations=[("step", message)])
    if not math.isfinite(value):
        message = f"value must be a finite number, got {value}"
        raise InvalidArgument(message, field_violations=[("value", message)])

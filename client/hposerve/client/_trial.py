"""Trials: the live handle a training loop uses, and the read-only record of a result."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2

from ._distributions import (
    CategoricalDistribution,
    Distribution,
    FloatDistribution,
    IntDistribution,
    ParamValue,
    distribution_from_proto,
    distribution_to_proto,
    struct_to_proto,
    typed_value,
    value_to_proto,
)
from ._enums import state_name

if TYPE_CHECKING:
    from ._study import Study


def _params_from_proto(
    params: Sequence[pb.Parameter],
) -> tuple[dict[str, ParamValue], dict[str, Distribution]]:
    values: dict[str, ParamValue] = {}
    distributions: dict[str, Distribution] = {}
    for p in params:
        dist = distribution_from_proto(p.distribution) if p.HasField("distribution") else None
        if dist is not None:
            distributions[p.name] = dist
        values[p.name] = typed_value(p.value, dist)
    return values, distributions


def _struct_to_dict(proto: Any, field_name: str) -> dict[str, Any]:
    if not proto.HasField(field_name):
        return {}
    # Struct numbers are doubles: an int attribute comes back as a float.
    return json_format.MessageToDict(getattr(proto, field_name))


def _time(proto: Any, field_name: str) -> datetime.datetime | None:
    if not proto.HasField(field_name):
        return None
    return getattr(proto, field_name).ToDatetime(tzinfo=datetime.timezone.utc)


@dataclass(frozen=True)
class FrozenTrial:
    """A trial as the server recorded it, like ``optuna.trial.FrozenTrial``.

    Attributes:
        number: The trial's number within its study, from 0.
        state: ``"running"``, ``"complete"``, ``"pruned"``, ``"failed"`` or ``"waiting"``.
        values: One value per objective, or None when the trial has none.
        params: Parameter values by name.
        distributions: Parameter distributions by name.
        intermediate_values: Reported values by step.
        user_attrs: User attributes (JSON numbers: ints come back as floats).
        datetime_start: When the trial started (UTC), if it did.
        datetime_complete: When the trial finished (UTC), if it did.
        name: Resource name, ``namespaces/{ns}/studies/{study}/trials/{number}``.
        sample_seconds: Seconds the server's sampler spent on this trial.
    """

    number: int
    state: str
    values: list[float] | None
    params: dict[str, ParamValue]
    distributions: dict[str, Distribution]
    intermediate_values: dict[int, float]
    user_attrs: dict[str, Any]
    datetime_start: datetime.datetime | None
    datetime_complete: datetime.datetime | None
    name: str = ""
    sample_seconds: float = 0.0

    @property
    def value(self) -> float | None:
        """The single objective value, or None if the trial has none.

        Raises:
            RuntimeError: The study has several objectives; use ``values``.
        """
        if self.values is None:
            return None
        if len(self.values) != 1:
            raise RuntimeError(
                f"this trial has {len(self.values)} objective values; use `values`, not `value`"
            )
        return self.values[0]

    @property
    def last_step(self) -> int | None:
        """The last reported step, or None if nothing was reported."""
        return max(self.intermediate_values) if self.intermediate_values else None

    @property
    def duration(self) -> datetime.timedelta | None:
        """How long the trial ran, if it finished."""
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return self.datetime_complete - self.datetime_start

    @classmethod
    def from_proto(cls, proto: pb.Trial) -> FrozenTrial:
        """Builds a FrozenTrial from a proto ``Trial``."""
        params, distributions = _params_from_proto(proto.params)
        return cls(
            number=proto.number,
            state=state_name(proto.state),
            values=list(proto.values) or None,
            params=params,
            distributions=distributions,
            intermediate_values={iv.step: iv.value for iv in proto.intermediate_values},
            user_attrs=_struct_to_dict(proto, "user_attrs"),
            datetime_start=_time(proto, "start_time"),
            datetime_complete=_time(proto, "complete_time"),
            name=proto.name,
            sample_seconds=proto.sample_seconds,
        )


class Trial:
    """A running trial: suggest parameters, report progress, then ``study.tell`` it.

    Works like ``optuna.Trial`` so that an Optuna objective runs unchanged. A trial is used
    by one thread at a time; the client's heartbeat thread renews its lease until it is told.

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
        self.params, self.distributions = _params_from_proto(proto.params)
        self.user_attrs: dict[str, Any] = _struct_to_dict(proto, "user_attrs")
        self.datetime_start = _time(proto, "start_time")
        self._prune_decision: bool | None = None
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
            # Known already: sampled by a fixed-space ask, or suggested before. A value the
            # server sent without a distribution (e.g. enqueued, not yet set) is still
            # suggested, so that the server records it in the trial.
            if name in self.distributions and name in self.params:
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

        One round trip; the decision is kept for :meth:`should_prune`.

        Args:
            value: The intermediate value (a float, or anything ``float()`` accepts).
            step: The step (e.g. epoch) it belongs to.

        Returns:
            True if the pruner says to stop this trial now.
        """
        request = pb.ReportIntermediateValueRequest(
            trial=self.name, step=int(step), value=float(value)
        )
        response = self.study._transport.call("ReportIntermediateValue", request)
        self._prune_decision = response.should_prune
        return response.should_prune

    def should_prune(self) -> bool:
        """Returns whether to stop this trial now.

        After a :meth:`report`, returns its decision without a round trip; before any report,
        asks the server.
        """
        if self._prune_decision is not None:
            return self._prune_decision
        response = self.study._transport.call("ShouldPrune", pb.ShouldPruneRequest(trial=self.name))
        return response.should_prune

    def set_user_attr(self, key: str, value: Any) -> None:
        """Sets a user attribute (any JSON-like value) on the trial, on the server."""
        request = pb.SetTrialUserAttributesRequest(
            trial=self.name, user_attrs=struct_to_proto({key: value})
        )
        self.study._transport.call("SetTrialUserAttributes", request)
        self.user_attrs[key] = value

    def set_user_attrs(self, attrs: dict[str, Any]) -> None:
        """Sets several user attributes in one round trip."""
        request = pb.SetTrialUserAttributesRequest(
            trial=self.name, user_attrs=struct_to_proto(attrs)
        )
        self.study._transport.call("SetTrialUserAttributes", request)
        self.user_attrs.update(attrs)

    def _mark_finished(self) -> None:
        self._running = False

"""The record of a trial, as ``optuna.trial.FrozenTrial``; what it shares with the live trial."""

from __future__ import annotations

import datetime
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from hposerve.v1 import study_service_pb2 as pb

from ._distributions import (
    CategoricalDistribution,
    Distribution,
    FloatDistribution,
    IntDistribution,
    ParamValue,
    distribution_from_proto,
    typed_value,
)
from ._enums import TrialState, state_from_proto, state_to_enum

# Timestamps from 1970 to 2100 take the fast path of local_time (any platform converts them).
_FAST_SECONDS = 4_102_444_800

# Optuna's system attribute keys of constraints: a list (old format) and one key per name.
CONSTRAINTS_KEY = "constraints"


def params_from_proto(
    params: Sequence[pb.Parameter],
) -> tuple[dict[str, ParamValue], dict[str, Distribution]]:
    """Parameter values (typed by their distributions) and distributions of a proto trial."""
    values: dict[str, ParamValue] = {}
    distributions: dict[str, Distribution] = {}
    for p in params:
        name = p.name
        dist = None
        if p.HasField("distribution"):
            dist = distributions[name] = distribution_from_proto(p.distribution)
        values[name] = typed_value(p.value, dist)
    return values, distributions


def json_object(text: str) -> dict[str, Any]:
    """A JSON object sent as text; empty text is an empty object."""
    if not text or text == "{}":  # what most trials carry: no need for the parser
        return {}
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def user_attrs_from_proto(proto: Any) -> dict[str, Any]:
    """The user attributes of a proto trial: from JSON (types kept) when the server sent it."""
    if getattr(proto, "user_attrs_json", ""):
        return json_object(proto.user_attrs_json)
    if not proto.HasField("user_attrs"):
        return {}
    return json_format.MessageToDict(proto.user_attrs)  # an old server: ints come as floats


def local_time(proto: Any, field_name: str) -> datetime.datetime | None:
    """A timestamp as Optuna keeps its times: a naive datetime in local time."""
    if not proto.HasField(field_name):
        return None
    stamp = getattr(proto, field_name)
    if 0 <= stamp.seconds < _FAST_SECONDS and 0 <= stamp.nanos < 1_000_000_000:
        # What the general form below gives, for a third of its cost (a call on every answer).
        local = datetime.datetime.fromtimestamp(stamp.seconds).replace(fold=0)
        return local + datetime.timedelta(microseconds=stamp.nanos // 1000)
    utc = stamp.ToDatetime(tzinfo=datetime.timezone.utc)
    return utc.astimezone().replace(tzinfo=None)


def constraints_of(system_attrs: Mapping[str, Any]) -> dict[str, float]:
    """Constraint values by name, read from system attributes exactly as Optuna reads them."""
    found: dict[str, float] = {}
    for i, value in enumerate(system_attrs.get(CONSTRAINTS_KEY) or ()):
        found[str(i)] = value
    prefix = CONSTRAINTS_KEY + ":"
    for key, value in system_attrs.items():
        if key.startswith(prefix):
            found[key[len(prefix) :]] = value
    return found


def check_constraint(key: str, value: Any) -> float:
    """Validates a constraint value as ``optuna.Trial.set_constraint`` does."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"The `value` argument is of type '{type(value)}' but supposed to be a float."
        ) from None
    if math.isnan(number):
        raise ValueError(f"Attempted to set a constraint for {key!r}, but NaN is not allowed.")
    return number


def check_compatible(old: Distribution, new: Distribution) -> None:
    """Raises ValueError as Optuna's ``check_distribution_compatibility`` does."""
    if type(old) is not type(new):
        raise ValueError("Cannot set different distribution kind to the same parameter name.")
    if isinstance(old, (FloatDistribution, IntDistribution)):
        assert isinstance(new, (FloatDistribution, IntDistribution))
        if old.log != new.log:
            raise ValueError("Cannot set different log configuration to the same parameter name.")
    if isinstance(old, CategoricalDistribution) and old != new:
        raise ValueError("CategoricalDistribution does not support dynamic value space.")


class SuggestAliases:
    """Optuna's deprecated ``suggest_*`` spellings, in terms of ``suggest_float``."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        raise NotImplementedError

    def suggest_uniform(self, name: str, low: float, high: float) -> float:
        """``suggest_float(name, low, high)`` (deprecated in Optuna)."""
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> float:
        """``suggest_float(name, low, high, log=True)`` (deprecated in Optuna)."""
        return self.suggest_float(name, low, high, log=True)

    def suggest_discrete_uniform(self, name: str, low: float, high: float, q: float) -> float:
        """``suggest_float(name, low, high, step=q)`` (deprecated in Optuna)."""
        return self.suggest_float(name, low, high, step=q)


@dataclass(frozen=True)
class FrozenTrial(SuggestAliases):
    """A trial as the server recorded it, like ``optuna.trial.FrozenTrial``.

    Its ``suggest_*`` methods return the recorded values, so that an objective can be re-run
    on a finished trial (``objective(study.best_trial)``), as with Optuna's.

    Attributes:
        number: The trial's number within its study, from 0.
        state: A :class:`TrialState` (equal to Optuna's, and to ``"complete"``, ...).
        values: One value per objective, or None when the trial has none.
        params: Parameter values by name.
        distributions: Parameter distributions by name.
        intermediate_values: Reported values by step.
        user_attrs: User attributes, with their JSON types.
        datetime_start: When the trial started (naive, local time, as Optuna's), if it did.
        datetime_complete: When the trial finished (naive, local time), if it did.
        name: Resource name, ``namespaces/{ns}/studies/{study}/trials/{number}``.
        sample_seconds: Seconds the server's sampler spent on this trial.
        system_attrs: Optuna's system attributes (constraints, enqueued parameters...).
    """

    number: int
    state: TrialState
    values: list[float] | None
    params: dict[str, ParamValue]
    distributions: dict[str, Distribution]
    intermediate_values: dict[int, float]
    user_attrs: dict[str, Any]
    datetime_start: datetime.datetime | None
    datetime_complete: datetime.datetime | None
    name: str = ""
    sample_seconds: float = 0.0
    system_attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if type(self.state) is not TrialState:  # a name, or Optuna's member
            object.__setattr__(self, "state", state_to_enum(self.state))

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

    @property
    def constraints(self) -> dict[str, float]:
        """Constraint values by name; feasible when all are <= 0 (``Trial.set_constraint``)."""
        return constraints_of(self.system_attrs)

    # What Optuna's FrozenTrial offers to code written for a live trial: local, no server.

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """The recorded value of ``name``, checked against the distribution as Optuna does."""
        return float(self._recorded(name, FloatDistribution(low, high, log, step)))  # type: ignore[arg-type]

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        """The recorded value of ``name``."""
        return int(self._recorded(name, IntDistribution(low, high, log, step)))  # type: ignore[arg-type]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """The recorded value of ``name``."""
        return self._recorded(name, CategoricalDistribution(tuple(choices)))

    def _recorded(self, name: str, distribution: Distribution) -> ParamValue:
        if name not in self.params:
            raise ValueError(
                f"The value of the parameter '{name}' is not found. Please set it at the "
                "construction of the FrozenTrial object."
            )
        if name in self.distributions:
            check_compatible(self.distributions[name], distribution)
        return self.params[name]

    def report(self, value: float, step: int) -> None:
        """Does nothing, as Optuna's ``FrozenTrial.report``: the trial is finished."""

    def should_prune(self) -> bool:
        """False, as Optuna's ``FrozenTrial.should_prune``."""
        return False

    def set_user_attr(self, key: str, value: Any) -> None:
        """Sets a user attribute on this record only (as Optuna's FrozenTrial does)."""
        self.user_attrs[key] = value

    def set_constraint(self, key: str, value: float) -> None:
        """Sets a constraint on this record only; a name already set keeps its value."""
        number = check_constraint(key, value)
        if f"{CONSTRAINTS_KEY}:{key}" in self.system_attrs:
            warnings.warn(
                f"The constraint value is ignored because this constraint `{key=}` is already set.",
                stacklevel=2,
            )
            return
        self.system_attrs[f"{CONSTRAINTS_KEY}:{key}"] = number

    @classmethod
    def from_proto(cls, proto: pb.Trial) -> FrozenTrial:
        """Builds a FrozenTrial from a proto ``Trial``."""
        params, distributions = params_from_proto(proto.params)
        return cls(
            number=proto.number,
            state=state_from_proto(proto.state),
            values=list(proto.values) or None,
            params=params,
            distributions=distributions,
            intermediate_values={iv.step: iv.value for iv in proto.intermediate_values},
            user_attrs=user_attrs_from_proto(proto),
            datetime_start=local_time(proto, "start_time"),
            datetime_complete=local_time(proto, "complete_time"),
            name=proto.name,
            sample_seconds=proto.sample_seconds,
            system_attrs=json_object(proto.system_attrs_json),
        )

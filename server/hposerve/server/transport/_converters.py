"""Proto <-> domain values: enums, distributions, trials, studies, options, page tokens.

Resource names are parsed and formatted by the domain (``hposerve.server.domain._names``).

Every ``*_from_proto`` validates and raises ``InvalidArgument`` naming the field at fault.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import json
import math
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from hposerve.server.domain import StudyInfo, StudyOptions, TrialRecord
from hposerve.server.domain._config import (
    INTERNAL_ATTR_PREFIX,
    MAX_CHOICES,
    MAX_OBJECTIVES,
    MAX_PAGE_TOKEN,
    SAMPLE_SECONDS_ATTR,
)
from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.domain._specs import value_from_proto, value_to_proto
from hposerve.server.domain._study_attrs import StudyAttrs
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2

# Optuna stores parameter values as doubles: integers beyond 2**53 would not come back intact.
_MAX_EXACT_INT = 2**53

# -- enums -----------------------------------------------------------------------------------

_DIRECTIONS: dict[int, StudyDirection] = {
    types_pb2.MINIMIZE: StudyDirection.MINIMIZE,
    types_pb2.MAXIMIZE: StudyDirection.MAXIMIZE,
}
_STATES: dict[int, TrialState] = {
    types_pb2.RUNNING: TrialState.RUNNING,
    types_pb2.COMPLETE: TrialState.COMPLETE,
    types_pb2.PRUNED: TrialState.PRUNED,
    types_pb2.FAILED: TrialState.FAIL,
    types_pb2.WAITING: TrialState.WAITING,
}
_STATES_TO_PROTO: dict[TrialState, Any] = {v: k for k, v in _STATES.items()}
_DIRECTIONS_TO_PROTO: dict[StudyDirection, Any] = {v: k for k, v in _DIRECTIONS.items()}


def directions_from_proto(directions: Any) -> list[StudyDirection]:
    """A study's directions; empty means the domain's default (``directions_or_default``)."""
    if len(directions) > MAX_OBJECTIVES:
        raise InvalidArgument(
            f"{len(directions)} directions, more than the limit MAX_OBJECTIVES = {MAX_OBJECTIVES}",
            field="directions",
        )
    try:
        return [_DIRECTIONS[d] for d in directions]
    except KeyError:
        raise InvalidArgument(
            "each direction must be MINIMIZE or MAXIMIZE", field="directions"
        ) from None


def direction_from_proto(direction: int, field: str = "direction") -> StudyDirection | None:
    """One direction; unset (None) means the domain's default, as for a study's directions."""
    if direction == types_pb2.DIRECTION_UNSPECIFIED:
        return None
    try:
        return _DIRECTIONS[direction]
    except KeyError:
        raise InvalidArgument("direction must be MINIMIZE or MAXIMIZE", field=field) from None


def direction_to_proto(direction: StudyDirection) -> Any:
    return _DIRECTIONS_TO_PROTO[direction]


def state_from_proto(state: int, field: str = "state") -> TrialState:
    try:
        return _STATES[state]
    except KeyError:
        raise InvalidArgument(
            f"unknown trial state {state}; use RUNNING, COMPLETE, PRUNED, FAILED or WAITING",
            field=field,
        ) from None


# -- distributions and values ----------------------------------------------------------------


def distribution_from_proto(d: types_pb2.Distribution, field: str) -> BaseDistribution:
    """Builds an Optuna distribution, refusing what Optuna would refuse (and NaN, inf)."""
    kind = d.WhichOneof("kind")
    try:
        if kind == "float":
            f = d.float
            step = f.step if f.HasField("step") else None
            if not all(map(math.isfinite, (f.low, f.high, f.high - f.low, step or 0.0))):
                raise ValueError(
                    "low, high, step and high - low must be finite numbers, got "
                    f"low={f.low}, high={f.high}, step={step}"
                )
            return FloatDistribution(f.low, f.high, log=f.log, step=step)
        if kind == "int":
            i = d.int
            if max(abs(i.low), abs(i.high)) > _MAX_EXACT_INT:
                raise ValueError(f"int bounds must lie within ±2**53, got [{i.low}, {i.high}]")
            return IntDistribution(
                i.low, i.high, log=i.log, step=i.step if i.HasField("step") else 1
            )
        if kind == "categorical":
            if len(d.categorical.choices) > MAX_CHOICES:
                raise ValueError(
                    f"{len(d.categorical.choices)} choices, more than the limit MAX_CHOICES = "
                    f"{MAX_CHOICES}"
                )
            choices = tuple(
                value_from_proto(c, field=f"{field}.choices") for c in d.categorical.choices
            )
            return CategoricalDistribution(choices)
    except (ValueError, ArithmeticError) as e:
        raise InvalidArgument(f"invalid distribution for {field}: {e}", field=field) from None
    raise InvalidArgument(f"{field} has no distribution (float, int or categorical)", field=field)


def distribution_to_proto(d: BaseDistribution) -> types_pb2.Distribution:
    """The proto of ``d``: one object per distinct distribution, shared (it is copied into
    any message it is put in; do not change it). Building one costs as much as the rest of a
    trial's proto, and a study's trials share a few distributions."""
    return _distribution_proto(d)


@functools.lru_cache(maxsize=4096)
def _distribution_proto(d: BaseDistribution) -> types_pb2.Distribution:
    if isinstance(d, FloatDistribution):
        return types_pb2.Distribution(
            float=types_pb2.FloatDistribution(low=d.low, high=d.high, log=d.log, step=d.step)
        )
    if isinstance(d, IntDistribution):
        return types_pb2.Distribution(
            int=types_pb2.IntDistribution(low=d.low, high=d.high, log=d.log, step=d.step)
        )
    if isinstance(d, CategoricalDistribution):
        choices = [value_to_proto(c) for c in d.choices]
        return types_pb2.Distribution(
            categorical=types_pb2.CategoricalDistribution(choices=choices)
        )
    raise TypeError(f"unsupported distribution {d!r}")


def parameter_from_proto(spec: types_pb2.ParameterSpec, field: str) -> tuple[str, BaseDistribution]:
    if not spec.name:
        raise InvalidArgument(f"{field}.name must not be empty", field=f"{field}.name")
    return spec.name, distribution_from_proto(spec.distribution, f"{field}.distribution")


def search_space_from_proto(specs: Any, field: str = "search_space") -> dict[str, BaseDistribution]:
    space: dict[str, BaseDistribution] = {}
    for i, spec in enumerate(specs):
        name, distribution = parameter_from_proto(spec, f"{field}[{i}]")
        if name in space:
            raise InvalidArgument(f"parameter {name!r} appears twice", field=f"{field}[{i}].name")
        space[name] = distribution
    return space


def param_value_to_proto(value: Any, distribution: BaseDistribution) -> types_pb2.Value:
    if isinstance(distribution, FloatDistribution):
        return types_pb2.Value(double_value=float(value))
    if isinstance(distribution, IntDistribution):
        return types_pb2.Value(int_value=int(value))
    return value_to_proto(value)


def params_from_proto(params: Any, field: str = "params") -> dict[str, Any]:
    return {name: value_from_proto(v, field=f"{field}[{name}]") for name, v in params.items()}


# -- attributes, times, pages ----------------------------------------------------------------


def attrs_from_proto(struct: struct_pb2.Struct, field: str = "user_attrs") -> dict[str, Any]:
    try:
        return json_format.MessageToDict(struct)
    except ValueError as e:  # NaN and infinities have no JSON form
        raise InvalidArgument(f"{field} must hold JSON values: {e}", field=field) from None


def attrs_to_proto(attrs: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    try:
        s.update(attrs)
    except (TypeError, ValueError):
        # Attributes set by plain Optuna may hold values a Struct cannot; show them as JSON text.
        s.update({k: json.dumps(v, default=str) for k, v in attrs.items()})
    return s


def attrs_from_json(text: str, field: str) -> dict[str, Any]:
    """A JSON object of attributes (types kept: an int stays an int)."""
    try:
        attrs = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"{field} is not JSON: {e}", field=field) from None
    except RecursionError:
        raise InvalidArgument(f"{field} is nested too deeply", field=field) from None
    if not isinstance(attrs, dict):
        raise InvalidArgument(f"{field} must be a JSON object", field=field)
    return attrs


def user_attrs_from(request: Any, field: str = "user_attrs") -> dict[str, Any]:
    """A request's user attributes: its ``user_attrs_json`` when set, else its Struct."""
    if request.user_attrs_json:
        return attrs_from_json(request.user_attrs_json, f"{field}_json")
    return attrs_from_proto(request.user_attrs, field)


def attrs_to_json(attrs: dict[str, Any]) -> str:
    # Attributes set by plain Optuna may hold values JSON cannot: shown as their text.
    return json.dumps(attrs, default=str)


def visible_system_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Optuna's system attributes of a trial, without hposerve's own bookkeeping."""
    return {k: v for k, v in attrs.items() if not k.startswith(INTERNAL_ATTR_PREFIX)}


def study_attrs_to_proto(attrs: StudyAttrs) -> pb.StudyAttributes:
    return pb.StudyAttributes(
        user_attrs_json=attrs_to_json(attrs.user_attrs), metric_names=attrs.metric_names or ()
    )


def _local_time(ts: timestamp_pb2.Timestamp) -> datetime.datetime:
    # Optuna's datetimes are naive local times.
    return ts.ToDatetime(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)


def added_trial_from_proto(t: pb.Trial, field: str) -> FrozenTrial:
    """A trial to add (``AddTrials``) as Optuna's FrozenTrial; Optuna validates it later."""
    distributions: dict[str, BaseDistribution] = {}
    params: dict[str, Any] = {}
    for i, p in enumerate(t.params):
        name, distribution = parameter_from_proto(
            types_pb2.ParameterSpec(name=p.name, distribution=p.distribution),
            f"{field}.params[{i}]",
        )
        distributions[name] = distribution
        params[name] = value_from_proto(p.value, field=f"{field}.params[{i}].value")
    state = state_from_proto(t.state, f"{field}.state")
    if any(math.isnan(v) for v in [*t.values, *(iv.value for iv in t.intermediate_values)]):
        raise InvalidArgument(f"{field} has a NaN value", field=field)
    system_attrs = {}
    if t.system_attrs_json:
        system_attrs = attrs_from_json(t.system_attrs_json, f"{field}.system_attrs_json")
    try:
        trial = create_trial(
            state=state,
            values=list(t.values) or None,
            params=params,
            distributions=distributions,
            user_attrs=user_attrs_from(t, f"{field}.user_attrs"),
            system_attrs=visible_system_attrs(system_attrs),
            intermediate_values={iv.step: iv.value for iv in t.intermediate_values},
        )
    except ValueError as e:
        raise InvalidArgument(f"{field}: {e}", field=field) from None
    if t.HasField("start_time"):
        trial.datetime_start = _local_time(t.start_time)
    if t.HasField("complete_time") and state.is_finished():
        trial.datetime_complete = _local_time(t.complete_time)
    return trial


def timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _datetime_ts(dt: Any) -> timestamp_pb2.Timestamp | None:
    if dt is None:
        return None
    # datetime.timestamp() (naive: local time, as Optuna's) in C; Timestamp.FromDatetime costs
    # five times as much. The seconds are exact: a float holds them to well under a microsecond.
    return timestamp_pb2.Timestamp(seconds=math.floor(dt.timestamp()), nanos=dt.microsecond * 1000)


# A page token is the base64 of one flat text: "s" and a name, or "i" and a number. Nothing
# nested, so that no token can make the decoder recurse; bounded in size before it is decoded.
_TOKEN_KINDS = {str: "s", int: "i"}


def encode_page_token(after: str | int) -> str:
    text = _TOKEN_KINDS[type(after)] + str(after)
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_page_token(token: str, default: Any) -> Any:
    """The position a page token stands for (of the type of ``default``), or ``default``.

    Raises:
        InvalidArgument: a token this server did not issue (or for another list).
    """
    if not token:
        return default
    refused = InvalidArgument("page_token is not one this server issued", field="page_token")
    if len(token) > MAX_PAGE_TOKEN:
        raise refused
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (binascii.Error, ValueError):  # UnicodeError is a ValueError
        raise refused from None
    kind, value = text[:1], text[1:]
    if kind != _TOKEN_KINDS[type(default)]:
        raise refused
    if kind == "s":
        return value
    digits = value.removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 19):
        raise refused
    return int(value)


def page(items: list[Any], limit: int, key: Any) -> tuple[list[Any], str]:
    """Splits ``limit + 1`` fetched items into this page and the token of the next one."""
    if len(items) <= limit:
        return items, ""
    return items[:limit], encode_page_token(key(items[limit - 1]))


def page_size(requested: int, *, default: int, maximum: int) -> int:
    if requested < 0:
        raise InvalidArgument(f"page_size must be >= 0, got {requested}", field="page_size")
    return min(requested or default, maximum)


# -- resources -------------------------------------------------------------------------------


def options_from_proto(o: pb.StudyOptions) -> StudyOptions:
    """Options of a study or of a comparison's members; unset fields are the defaults."""
    defaults = StudyOptions()
    return StudyOptions(
        lease_seconds=o.lease_seconds if o.HasField("lease_seconds") else defaults.lease_seconds,
        retry_expired_trials=o.retry_expired_trials,
        max_retries=o.max_retries if o.HasField("max_retries") else defaults.max_retries,
    )


def options_to_proto(options: StudyOptions) -> pb.StudyOptions:
    return pb.StudyOptions(
        lease_seconds=options.lease_seconds,
        retry_expired_trials=options.retry_expired_trials,
        max_retries=options.max_retries,
    )


def study_to_proto(info: StudyInfo) -> pb.Study:
    config = info.config
    return pb.Study(
        name=str(info.ref),
        directions=[direction_to_proto(d) for d in config.directions],
        sampler=config.sampler,
        pruner=config.pruner,
        options=options_to_proto(config.options),
        create_time=timestamp(config.create_time or None),
        trial_count=info.trial_count,
        complete_trial_count=info.complete_trial_count,
    )


def trial_to_proto(record: TrialRecord) -> pb.Trial:
    t = record.trial
    return pb.Trial(
        name=str(record.ref),
        number=t.number,
        state=_STATES_TO_PROTO[t.state],
        values=t.values or (),
        params=[
            pb.Parameter(
                name=name,
                value=param_value_to_proto(value, t.distributions[name]),
                distribution=distribution_to_proto(t.distributions[name]),
            )
            for name, value in t.params.items()
        ],
        intermediate_values=[
            pb.IntermediateValue(step=step, value=value)
            for step, value in sorted(t.intermediate_values.items())
        ],
        user_attrs=attrs_to_proto(t.user_attrs),
        start_time=_datetime_ts(t.datetime_start),
        complete_time=_datetime_ts(t.datetime_complete),
        lease_expire_time=timestamp(record.lease_expires),
        sample_seconds=t.system_attrs.get(SAMPLE_SECONDS_ATTR, 0.0),
        user_attrs_json=attrs_to_json(t.user_attrs),
        system_attrs_json=attrs_to_json(visible_system_attrs(t.system_attrs)),
    )

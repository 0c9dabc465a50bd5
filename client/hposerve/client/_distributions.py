"""Parameter distributions and values, and their proto forms.

Optuna's distribution objects are accepted too, recognized by class name and attributes so
that the client never imports Optuna.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from google.protobuf import struct_pb2

from hposerve.v1 import types_pb2

from ._errors import InvalidArgument

ParamValue: TypeAlias = None | bool | int | float | str


@dataclass(frozen=True)
class FloatDistribution:
    """Real numbers in ``[low, high]``, on a log scale if ``log``, on a grid of ``step`` if set."""

    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class IntDistribution:
    """Integers in ``[low, high]`` with ``step``, on a log scale if ``log``."""

    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class CategoricalDistribution:
    """One of ``choices`` (None, bool, int, float or str)."""

    choices: tuple[ParamValue, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))


Distribution: TypeAlias = FloatDistribution | IntDistribution | CategoricalDistribution


def _plain(value: Any) -> Any:
    """Unwraps numpy (or torch) scalars into Python ones, by duck typing."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):  # an array of more than one element
            return value
    return value


# The proto field of each exact built-in type: the common case, found with one lookup.
_VALUE_FIELDS = {str: "string_value", float: "double_value", int: "int_value", bool: "bool_value"}


def value_to_proto(value: Any) -> types_pb2.Value:
    """Converts a parameter value (None, bool, int, float, str or a numpy scalar) to proto."""
    return types_pb2.Value(**_value_fields(value))


def _value_fields(value: Any) -> dict[str, Any]:
    """The fields of ``value``'s proto ``Value`` (so that it can be built where it goes)."""
    field = _VALUE_FIELDS.get(type(value))
    if field is not None:
        return {field: value}
    value = _plain(value)
    if value is None:
        return {"null_value": struct_pb2.NULL_VALUE}
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": value}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    raise InvalidArgument(
        f"a parameter value must be None, bool, int, float or str, got {type(value).__name__}"
        f" {value!r}"
    )


def value_from_proto(value: types_pb2.Value) -> ParamValue:
    """Converts a proto value to Python; an unset value is None."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    return getattr(value, kind)


def distribution_to_proto(distribution: Any) -> types_pb2.Distribution:
    """Converts a distribution to proto.

    Accepts our distributions, a proto ``Distribution``, and Optuna's ``FloatDistribution``,
    ``IntDistribution``, ``CategoricalDistribution`` and the deprecated ``UniformDistribution``,
    ``LogUniformDistribution``, ``DiscreteUniformDistribution``, ``IntUniformDistribution`` and
    ``IntLogUniformDistribution``.

    Raises:
        InvalidArgument: The object is not a distribution.
    """
    if isinstance(distribution, types_pb2.Distribution):
        return distribution
    return types_pb2.Distribution(**_distribution_fields(distribution))


def _distribution_arg(distribution: Any) -> Any:
    """What a ``distribution`` field is initialized with: the proto, or its fields."""
    if isinstance(distribution, types_pb2.Distribution):
        return distribution
    return _distribution_fields(distribution)


def _distribution_fields(distribution: Any) -> dict[str, Any]:
    """The fields of ``distribution``'s proto (see :func:`distribution_to_proto`), nested as
    dicts: protobuf builds a message from them in one call, far cheaper than field by field."""
    kind = type(distribution).__name__
    d = distribution
    if kind == "FloatDistribution":
        step = None if d.step is None else float(_plain(d.step))
        return _float(d.low, d.high, bool(d.log), step)
    if kind == "UniformDistribution":
        return _float(d.low, d.high, False, None)
    if kind == "LogUniformDistribution":
        return _float(d.low, d.high, True, None)
    if kind == "DiscreteUniformDistribution":
        return _float(d.low, d.high, False, float(_plain(d.q)))
    if kind == "IntDistribution":
        return _int(d.low, d.high, bool(d.log), d.step)
    if kind == "IntUniformDistribution":
        return _int(d.low, d.high, False, d.step)
    if kind == "IntLogUniformDistribution":
        return _int(d.low, d.high, True, d.step)
    if kind == "CategoricalDistribution":
        return {"categorical": {"choices": [_value_fields(c) for c in d.choices]}}
    raise InvalidArgument(
        f"not a distribution: {distribution!r}; use FloatDistribution, IntDistribution or"
        " CategoricalDistribution (ours or Optuna's)"
    )


def _float(low: Any, high: Any, log: bool, step: float | None) -> dict[str, Any]:
    fields = {"low": float(_plain(low)), "high": float(_plain(high)), "log": log}
    if step is not None:
        fields["step"] = step
    return {"float": fields}


def _int(low: Any, high: Any, log: bool, step: Any) -> dict[str, Any]:
    fields = {"low": _as_int(low), "high": _as_int(high), "log": log}
    if step is not None:
        fields["step"] = _as_int(step)
    return {"int": fields}


def _as_int(value: Any) -> int:
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"an integer distribution needs integer bounds, got {value!r}")
    return value


# Converted distributions by their serialized proto: a study's trials carry the same few
# distributions again and again, and ours are immutable, so one instance serves them all.
_FROM_PROTO: dict[bytes, Distribution] = {}
_FROM_PROTO_MAX = 4096


def distribution_from_proto(proto: types_pb2.Distribution) -> Distribution:
    """Converts a proto distribution to ours."""
    key = proto.SerializeToString()
    found = _FROM_PROTO.get(key)
    if found is None:
        found = _convert_distribution(proto)
        if len(_FROM_PROTO) >= _FROM_PROTO_MAX:
            _FROM_PROTO.clear()
        _FROM_PROTO[key] = found
    return found


def _convert_distribution(proto: types_pb2.Distribution) -> Distribution:
    kind = proto.WhichOneof("kind")
    if kind == "float":
        f = proto.float
        return FloatDistribution(f.low, f.high, f.log, f.step if f.HasField("step") else None)
    if kind == "int":
        i = proto.int
        return IntDistribution(i.low, i.high, i.log, i.step if i.HasField("step") else 1)
    if kind == "categorical":
        choices = proto.categorical.choices
        return CategoricalDistribution(tuple(value_from_proto(c) for c in choices))
    raise InvalidArgument("the server sent a parameter without a distribution")


def typed_value(value: types_pb2.Value, distribution: Distribution | None) -> ParamValue:
    """Converts a proto value to Python with the type its distribution implies."""
    plain = value_from_proto(value)
    if isinstance(distribution, IntDistribution) and isinstance(plain, float):
        return int(plain)
    if isinstance(distribution, FloatDistribution) and isinstance(plain, int):
        return float(plain)
    return plain


def search_space_to_proto(search_space: Mapping[str, Any]) -> list[types_pb2.ParameterSpec]:
    """Converts ``{name: distribution}`` to proto, keeping the order (the order of sampling)."""
    return [
        types_pb2.ParameterSpec(name=name, distribution=_distribution_arg(d))
        for name, d in search_space.items()
    ]


def add_search_space(specs: Any, search_space: Mapping[str, Any]) -> None:
    """Appends ``search_space`` (as :func:`search_space_to_proto`) to a repeated ParameterSpec
    field of a request, built in place (a space built apart is copied in)."""
    for name, d in search_space.items():
        specs.add(name=name, distribution=_distribution_arg(d))


def to_json_value(value: Any) -> Any:
    """Makes a user attribute fit a ``google.protobuf.Struct`` (numpy scalars, tuples)."""
    value = _plain(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [to_json_value(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return to_json_value(tolist())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InvalidArgument(
        f"a user attribute must be JSON-like (None, bool, number, str, list, dict), got"
        f" {type(value).__name__}"
    )


def struct_to_proto(attrs: Mapping[str, Any]) -> struct_pb2.Struct:
    """Converts a dict of user attributes to a ``Struct``."""
    struct = struct_pb2.Struct()
    struct.update({str(k): to_json_value(v) for k, v in attrs.items()})
    return struct

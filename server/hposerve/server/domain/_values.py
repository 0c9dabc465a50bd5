"""Parameter and grid values: the ``Value`` proto <-> the Python values Optuna stores."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from google.protobuf import struct_pb2

from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.v1 import types_pb2

__all__ = ["GridValue", "value_from_proto", "value_to_proto"]

GridValue = float | int | str | bool | None

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def value_from_proto(v: types_pb2.Value, *, field: str | None = None) -> GridValue:
    """Converts a ``Value`` to the Python value it carries.

    Args:
        v: The value.
        field: The name of the field holding ``v``, for the error.

    Returns:
        A float, int, str, bool or None.

    Raises:
        InvalidArgument: ``v`` has no kind set (or one this server does not know).
    """
    kind = v.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(
            f"{field or 'the value'} is unset; set one of double, int, string, bool or null",
            field=field,
        )
    if kind == "null_value":
        return None
    if kind == "double_value" and not math.isfinite(v.double_value):
        raise InvalidArgument(
            f"{field or 'the value'} must be a finite number, got {v.double_value}", field=field
        )
    return getattr(v, kind)


def value_to_proto(x: Any, *, field: str | None = None) -> types_pb2.Value:
    """Converts a Python (or NumPy scalar) value to a ``Value``.

    Args:
        x: A float, int, str, bool, None, or NumPy floating, integer or bool scalar.
        field: The name of the field ``x`` came from, for the error.

    Returns:
        The value as a ``Value`` message.

    Raises:
        InvalidArgument: ``x`` has another type, or is an integer outside int64.
    """
    # bool before int: bool is a subclass of int.
    if isinstance(x, (bool, np.bool_)):
        return types_pb2.Value(bool_value=bool(x))
    if isinstance(x, (int, np.integer)):
        if not _INT64_MIN <= int(x) <= _INT64_MAX:
            raise InvalidArgument(
                f"{field or 'the value'}: the integer {x} does not fit in 64 bits", field=field
            )
        return types_pb2.Value(int_value=int(x))
    if isinstance(x, (float, np.floating)):
        return types_pb2.Value(double_value=float(x))
    if isinstance(x, str):
        return types_pb2.Value(string_value=str(x))
    if x is None:
        return types_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    raise InvalidArgument(
        f"{field or 'the value'} has unsupported type {type(x).__name__}; "
        "expected float, int, str, bool or None",
        field=field,
    )

"""Hypothesis strategies for any protobuf request, built field by field from its descriptor.

Strings lean to resource names (real ones the fuzz server holds, and malformed ones), numbers
to extremes (NaN, ±inf, −0.0, the ends of each integer type), enums to values out of range,
and nested messages to depth (Struct and Value nest until protobuf's own limit).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

F = FieldDescriptor

_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [low, high, 0, 1, -1, 2, 1000, 2**31 - 1, 2**31, 2**53 + 1, -(2**53) - 1]
    return st.one_of(
        st.integers(-3, 3).filter(lambda v: low <= v <= high),
        st.sampled_from([e for e in edges if low <= e <= high]),
        st.integers(low, high),
    )


DOUBLES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1.0, 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10),
)

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "abc\n",
        "a" * 10_000,
        "\x00",
        "é",
        "\u202e",
        "\U0001f600",
        "..",
        "/",
        "{}",
        "[" * 5000,
        "null",
        "NaN",
        "-1",
        "99999999999999999999999",
    ]
)


def names(real: list[str]) -> st.SearchStrategy[str]:
    """Resource names: the server's real ones, broken variants of them, and any text."""
    real_names = st.sampled_from(real)
    broken = st.tuples(real_names, ODD_TEXT).map(lambda t: t[0] + t[1])
    return st.one_of(real_names, real_names, broken, ODD_TEXT, st.text(max_size=40))


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=20))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def _deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


STRUCT_VALUES = st.one_of(json_values(), st.integers(1, 45).map(_deep_list))


def _fill_struct(target: Message, value: Any, is_struct: bool) -> None:
    if is_struct:
        target.update(value if isinstance(value, dict) else {"v": value})  # type: ignore[attr-defined]
    else:
        holder = struct_pb2.Struct()
        holder.update({"v": value})
        target.CopyFrom(holder.fields["v"])


class Builder:
    """Builds strategies of messages from descriptors; strings named like resources get names."""

    def __init__(self, real_names: list[str], max_depth: int = 4) -> None:
        self._names = names(real_names)
        self._real = {
            kind: st.sampled_from([n for n in real_names if _kind(n) in kinds] or real_names)
            for kind, kinds in _FIELD_KINDS.items()
        }
        self._max_depth = max_depth
        self._mild = False  # set per message: a mild one is mostly valid, to reach the domain

    def message(self, cls: type[Message]) -> st.SearchStrategy[Message]:
        return self._message(cls.DESCRIPTOR, cls, 0)

    def _message(self, d: Descriptor, cls: Any, depth: int) -> st.SearchStrategy[Message]:
        @st.composite
        def build(draw: st.DrawFn) -> Message:
            msg = cls()
            self._mild = draw(st.booleans())
            self._fill(draw, msg, d, depth)
            return msg

        return build()

    def _fill(self, draw: st.DrawFn, msg: Message, d: Descriptor, depth: int) -> None:
        if d.full_name in ("google.protobuf.Struct", "google.protobuf.Value"):
            _fill_struct(msg, draw(STRUCT_VALUES), d.full_name.endswith("Struct"))
            return
        chosen = {o.name: draw(st.sampled_from([None, *o.fields])) for o in d.oneofs}
        for field in d.fields:
            oneof = field.containing_oneof
            if oneof is not None and chosen.get(oneof.name) is not field:
                continue
            always = self._mild and _is_name(field.name) and field.name != "request_id"
            if oneof is None and not always and not draw(st.booleans()):
                continue
            # A value this field's type cannot hold (e.g. 1e308 in a float) is left out.
            with contextlib.suppress(ValueError, TypeError, OverflowError):
                self._set(draw, msg, field, depth)

    def _set(self, draw: st.DrawFn, msg: Message, field: FieldDescriptor, depth: int) -> None:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields
            target = getattr(msg, field.name)
            for _ in range(draw(st.integers(0, 3))):
                key = draw(self._scalar(key_field))
                if value_field.message_type is None:
                    target[key] = draw(self._scalar(value_field))
                elif depth < self._max_depth:
                    self._fill(draw, target[key], value_field.message_type, depth + 1)
            return
        if field.is_repeated:
            many = st.sampled_from([0, 1, 2, 50]) if depth == 0 and not self._mild else st.just(1)
            count = draw(st.one_of(st.integers(0, 3), many))
            target = getattr(msg, field.name)
            for _ in range(count):
                if field.message_type is None:
                    target.append(draw(self._scalar(field)))
                elif depth < self._max_depth:
                    self._fill(draw, target.add(), field.message_type, depth + 1)
            return
        if field.message_type is not None:
            if depth < self._max_depth:
                sub = getattr(msg, field.name)
                sub.SetInParent()
                self._fill(draw, sub, field.message_type, depth + 1)
            return
        setattr(msg, field.name, draw(self._scalar(field)))

    def _scalar(self, field: FieldDescriptor) -> st.SearchStrategy[Any]:
        return self._mild_scalar(field) if self._mild else self._wild_scalar(field)

    def _mild_scalar(self, field: FieldDescriptor) -> st.SearchStrategy[Any]:
        t = field.type
        if t == F.TYPE_STRING:
            if _is_name(field.name):
                if field.name == "parent" and field.containing_type.name in _NAMESPACE_PARENTS:
                    return self._real["namespace"]
                return self._real.get(field.name, self._real["name"])
            return st.text("abcxyz_-.", max_size=8)
        if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            return st.one_of(st.floats(-10, 10), st.sampled_from([0.0, 0.5, 1.0, 1e-3]))
        if t == F.TYPE_ENUM:
            return st.sampled_from([v.number for v in field.enum_type.values])
        if t in _INT_RANGES:
            return st.integers(max(_INT_RANGES[t][0], 0), 5)
        return self._wild_scalar(field)

    def _wild_scalar(self, field: FieldDescriptor) -> st.SearchStrategy[Any]:
        t = field.type
        if t == F.TYPE_STRING:
            return (
                self._names if _is_name(field.name) else st.one_of(ODD_TEXT, st.text(max_size=30))
            )
        if t == F.TYPE_BYTES:
            return st.binary(max_size=64)
        if t == F.TYPE_BOOL:
            return st.booleans()
        if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            return DOUBLES
        if t == F.TYPE_ENUM:
            top = max(v.number for v in field.enum_type.values)
            return st.integers(-2, top + 3)
        low, high = _INT_RANGES[t]
        return ints(low, high)


def _is_name(field: str) -> bool:
    return field in ("name", "parent", "trial", "trials", "comparison", "study") or field.endswith(
        ("_id", "_study")
    )


# In mild requests, each name field gets the names of its kind.
_NAMESPACE_PARENTS = {
    "CreateStudyRequest",
    "ListStudiesRequest",
    "CreateComparisonRequest",
    "ListComparisonsRequest",
}
_FIELD_KINDS = {
    "namespace": {"namespace"},
    "trial": {"trial"},
    "trials": {"trial"},
    "parent": {"namespace", "study"},
    "name": {"study", "trial", "comparison"},
    "comparison": {"comparison"},
    "study_id": {"id"},
    "comparison_id": {"id"},
    "source_study": {"id"},
    "request_id": {"id"},
}


def _kind(name: str) -> str:
    if "/trials/" in name:
        return "trial"
    if "/comparisons/" in name:
        return "comparison"
    if "/studies/" in name:
        return "study"
    return "namespace" if name.startswith("namespaces/") else "id"

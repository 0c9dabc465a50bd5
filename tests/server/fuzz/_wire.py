"""Raw protobuf wire bytes the Python protobuf library refuses to build: corrupt, with invalid
UTF-8 in a string field, and nested past protobuf's decoding depth."""

from __future__ import annotations

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def deep_value(depth: int) -> bytes:
    """A google.protobuf.Value of lists of lists ... ``depth`` deep."""
    value = struct_pb2.Value(number_value=1).SerializeToString()
    for _ in range(depth):
        values = struct_pb2.ListValue.DESCRIPTOR.fields_by_name["values"].number
        listed = length_delimited(values, value)
        value = length_delimited(
            struct_pb2.Value.DESCRIPTOR.fields_by_name["list_value"].number, listed
        )
    return value


def string_field(descriptor: Descriptor) -> int | None:
    """The number of a top-level string field of a message, if it has one."""
    for field in descriptor.fields:
        if field.type == field.TYPE_STRING and not field.is_repeated:
            return field.number
    return None


def invalid_utf8(descriptor: Descriptor) -> bytes | None:
    number = string_field(descriptor)
    return None if number is None else length_delimited(number, b"\xff\xfe\xc0")


def too_deep(descriptor: Descriptor, depth: int = 200) -> bytes | None:
    """A request whose first Struct or Value field (searched two levels down) nests too deeply."""
    for field in descriptor.fields:
        if field.message_type is None:
            continue
        if field.message_type.full_name == "google.protobuf.Value":
            return length_delimited(field.number, deep_value(depth))
        if field.message_type.full_name == "google.protobuf.Struct":
            entry = length_delimited(1, b"k") + length_delimited(2, deep_value(depth))
            return length_delimited(field.number, length_delimited(1, entry))
    for field in descriptor.fields:
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            inner = too_deep(field.message_type, depth)
            if inner is not None:
                return length_delimited(field.number, inner)
    return None


CORRUPT = [
    b"\xff\xff\xff\xff",  # a tag with field number 0 / a truncated varint
    b"\x0a\x10abc",  # a length past the end
    b"\x0b",  # a start-group tag never ended
    b"\x80" * 11,  # a varint longer than 10 bytes
]


def deep_groups(depth: int = 200, number: int = 15_000) -> bytes:
    """Unknown groups (of a field no message has) nested ``depth`` deep: any message."""
    return varint(number << 3 | 3) * depth + varint(number << 3 | 4) * depth

"""Bounds check of declared lengths before kio parses a request body.

kio's native reader reserves memory for an array's declared element count before it
reads a single element; a 30-byte request declaring 2^35 elements makes the allocator
abort the whole process (the CVE-2022-34917 class of unauthenticated OOM). This module
walks the body with the same schema metadata kio uses, and refuses any array, string
or byte field whose declared size cannot fit in the bytes that remain (every array
element takes at least one byte). It allocates nothing and costs a few microseconds
for the small requests that dominate traffic.
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)


class DeclaredSizeError(ValueError):
    pass


_FIXED = {
    "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2, "uint32": 4,
    "uint64": 8, "float64": 8, "bool": 1, "uuid": 16, "error_code": 2, "timedelta_i32": 4,
    "timedelta_i64": 8, "datetime_i64": 8,
}
_SIGNED_VAR = {"varint", "varlong"}
_VAR_LENGTH = {"string", "bytes", "records"}


def _uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise DeclaredSizeError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise DeclaredSizeError("varint too long")


def _int(buf: bytes | memoryview, pos: int, size: int) -> tuple[int, int]:
    if pos + size > len(buf):
        raise DeclaredSizeError("truncated integer")
    return int.from_bytes(buf[pos : pos + size], "big", signed=True), pos + size


@functools.cache
def _plan(entity_type: Any) -> tuple[list[tuple[Any, ...]], dict[int, tuple[Any, ...]], bool]:
    flexible = bool(getattr(entity_type, "__flexible__", False))
    regular: list[tuple[Any, ...]] = []
    tagged: dict[int, tuple[Any, ...]] = {}
    for f in fields(entity_type):
        kind = classify_field(f)
        if isinstance(kind, EntityField | EntityTupleField):
            step: tuple[Any, ...] = ("entity", kind.type_, kind.is_array, is_optional(f))
        else:
            step = ("primitive", get_schema_field_type(f), isinstance(kind, PrimitiveTupleField))
        tag = get_field_tag(f)
        if tag is None:
            regular.append(step)
        else:
            tagged[tag] = step
    return regular, tagged, flexible


def check_entity(entity_type: Any, buf: bytes | memoryview, pos: int, end: int) -> int:
    """Walk one entity at `pos`; return where it ends. Raises DeclaredSizeError."""
    regular, tagged, flexible = _plan(entity_type)
    for step in regular:
        pos = _check_step(step, flexible, buf, pos, end)
    if flexible:
        count, pos = _uvarint(buf, pos)
        if count > end - pos:
            raise DeclaredSizeError(f"{count} tagged fields in {end - pos} bytes")
        for _ in range(count):
            tag, pos = _uvarint(buf, pos)
            size, pos = _uvarint(buf, pos)
            if size > end - pos:
                raise DeclaredSizeError(f"tagged field of {size} bytes in {end - pos}")
            tagged_step = tagged.get(tag)
            if tagged_step is not None:
                _check_step(tagged_step, True, buf, pos, pos + size)
            pos += size
    return pos


def _check_step(step: tuple[Any, ...], flexible: bool, buf: bytes | memoryview, pos: int, end: int) -> int:
    if step[0] == "entity":
        _, entity_type, is_array, optional = step
        if is_array:
            count, pos = _array_count(flexible, buf, pos, end)
            for _ in range(count):
                pos = check_entity(entity_type, buf, pos, end)
            return pos
        if optional:
            marker, pos = _int(buf, pos, 1)
            if marker < 0:
                return pos
        return check_entity(entity_type, buf, pos, end)
    _, kafka_type, is_array = step
    if is_array:
        count, pos = _array_count(flexible, buf, pos, end)
        for _ in range(count):
            pos = _check_primitive(kafka_type, flexible, buf, pos, end)
        return pos
    return _check_primitive(kafka_type, flexible, buf, pos, end)


def _array_count(flexible: bool, buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    if flexible:
        raw, pos = _uvarint(buf, pos)
        count = raw - 1
    else:
        count, pos = _int(buf, pos, 4)
    if count > end - pos:
        raise DeclaredSizeError(f"array of {count} elements in {end - pos} bytes")
    return max(count, 0), pos


def _check_primitive(kafka_type: str, flexible: bool, buf: bytes | memoryview, pos: int, end: int) -> int:
    size = _FIXED.get(kafka_type)
    if size is not None:
        pos += size
    elif kafka_type in _SIGNED_VAR:
        _, pos = _uvarint(buf, pos)
    elif kafka_type in _VAR_LENGTH:
        if flexible:
            raw, pos = _uvarint(buf, pos)
            length = raw - 1
        else:
            length, pos = _int(buf, pos, 2 if kafka_type == "string" else 4)
        if length > end - pos:
            raise DeclaredSizeError(f"{kafka_type} of {length} bytes in {end - pos}")
        pos += max(length, 0)
    else:
        raise DeclaredSizeError(f"unknown field type {kafka_type}")
    if pos > end:
        raise DeclaredSizeError("field extends past the request")
    return pos

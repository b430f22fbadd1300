"""Build kio entities of any API version from plain, version-agnostic values.

kio has one frozen dataclass per API version, and fields come and go between versions.
Handlers describe a response once, as keyword arguments with nested lists of dicts, and
`build` fits that to the exact version the client asked for: fields the version lacks
are dropped, fields the caller left out get Kafka's zero value, and ints become the
timedelta, datetime and ErrorCode types kio's writers expect.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from typing import Any, TypeVar
from uuid import UUID

from kio.schema.errors import ErrorCode
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    classify_field,
    get_schema_field_type,
    is_optional,
)
from kio.static.constants import uuid_zero

E = TypeVar("E")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@functools.cache
def _field_plan(entity_type: Any) -> tuple[tuple[str, Any, Field[Any]], ...]:
    plan = []
    for f in fields(entity_type):
        kind = classify_field(f)
        plan.append((f.name, kind, f))
    return tuple(plan)


def _zero(kind: Any, f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if kind.is_array:
        return ()
    if is_optional(f):
        return None
    if isinstance(kind, EntityField):
        return build(kind.type_, {})
    kafka_type = get_schema_field_type(f)
    return _ZEROS.get(kafka_type, 0)


_ZEROS: dict[str, Any] = {
    "string": "",
    "bytes": b"",
    "records": b"",
    "bool": False,
    "uuid": uuid_zero,
    "error_code": ErrorCode.none,
    "timedelta_i32": datetime.timedelta(0),
    "timedelta_i64": datetime.timedelta(0),
    "datetime_i64": _EPOCH,
    "float64": 0.0,
}


def _convert(kind: Any, f: Field[Any], value: Any) -> Any:
    """A caller's value in the type kio's field wants (entities from dicts, ints to the
    error-code enum, milliseconds to timedeltas/datetimes, nulls where the schema has none)."""
    if isinstance(kind, EntityTupleField):
        if value is None and is_optional(f):  # a nullable array, e.g. aborted_transactions
            return None
        return tuple(v if isinstance(v, kind.type_) else build(kind.type_, v) for v in value)
    if isinstance(kind, EntityField):
        if value is None or isinstance(value, kind.type_):
            return value
        return build(kind.type_, value)
    if kind.is_array:
        if value is None and is_optional(f):  # a nullable primitive array, e.g. config keys
            return None
        return tuple(value)
    return _convert_primitive(get_schema_field_type(f), f, value)


def _convert_primitive(kafka_type: str, f: Field[Any], value: Any) -> Any:
    if kafka_type == "error_code" and not isinstance(value, ErrorCode):
        return ErrorCode(int(value))
    if kafka_type in ("timedelta_i32", "timedelta_i64") and isinstance(value, int):
        return datetime.timedelta(milliseconds=value)
    if kafka_type == "datetime_i64" and isinstance(value, int):
        if value < 0 and is_optional(f):
            return None
        return _EPOCH + datetime.timedelta(milliseconds=value)
    if kafka_type == "uuid" and value is None and not is_optional(f):
        return uuid_zero
    return value


def build(entity_type: type[E], values: Mapping[str, Any] | None = None, **kwargs: Any) -> E:
    """Construct `entity_type` from a mapping and/or keywords, tolerant of version drift."""
    source: dict[str, Any] = dict(values or {})
    source.update(kwargs)
    args = {}
    plan = _field_plan(entity_type)  # type: ignore[arg-type]  # classes are hashable
    for name, kind, f in plan:
        if name in source:
            args[name] = _convert(kind, f, source[name])
        else:
            args[name] = _zero(kind, f)
    return entity_type(**args)


def null_required_array(entity: Any) -> str | None:
    """The name of a non-nullable array that arrived as null, if any.

    kio reads an array length of -1 as None even where the schema forbids null; Kafka
    refuses such a request ("non-nullable field ... was serialized as null").
    """
    entity_type: Any = type(entity)
    for name, kind, f in _field_plan(entity_type):
        value = getattr(entity, name)
        if value is None:
            if kind.is_array and not is_optional(f):
                return name
        elif isinstance(kind, EntityTupleField):
            for item in value:
                found = null_required_array(item)
                if found is not None:
                    return found
        elif isinstance(kind, EntityField):
            found = null_required_array(value)
            if found is not None:
                return found
    return None


def millis(value: datetime.timedelta | datetime.datetime | int | None) -> int:
    """The inverse of `build`'s conversions, for reading request fields."""
    if value is None:
        return -1
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def uuid_or_none(value: UUID | None) -> UUID | None:
    return None if value is None or value == uuid_zero else value

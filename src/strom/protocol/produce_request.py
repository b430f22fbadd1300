"""Produce requests read without copying their records.

A produce request is almost all record bytes. kio's reader copies each partition's
records into a new bytes object, and the log then needs a mutable buffer to patch base
offsets and leader epochs (and, for some topics, timestamps) in place: a second copy.
This reader builds the same kio entities, except that each partition's ``records`` is a
slice of the frame itself: when the frame is a writable buffer (the connection's, see
`framing.FrameDecoder`), the bytes read from the socket are the bytes the log patches
and writes.

Everything but the records is read with kio's own primitives, so names, ids, nulls and
errors are kio's, and like kio an unknown tagged field is refused. Every array length is
checked against the bytes left before its elements are read, as `guard` does for kio.
`tests/unit/protocol/test_produce_request.py` checks that this reader and kio's agree on
real clients' requests and on mutations of them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from kio.serial import readers

Buffer = bytes | bytearray | memoryview
_FLEXIBLE_FROM = 9  # compact strings, arrays and bytes, tagged fields
_TOPIC_ID_FROM = 13  # topics named by id (KIP-516)


class ProduceDecodeError(ValueError):
    """The request does not parse; the caller closes the connection."""


@functools.cache
def _schema(version: int) -> ModuleType:
    return importlib.import_module(f"kio.schema.produce.v{version}.request")


class _Cursor:
    """A position in one frame: ``view`` for the record slices, ``frozen`` (the same
    bytes, read-only) for kio's readers, which refuse writable buffers."""

    __slots__ = ("flexible", "frozen", "pos", "view")

    def __init__(self, frame: Buffer, pos: int, flexible: bool) -> None:
        self.view = frame if isinstance(frame, memoryview) else memoryview(frame)
        self.frozen = self.view.toreadonly()
        self.pos = pos
        self.flexible = flexible

    def read(self, reader: Callable[[Any, int], tuple[Any, int]]) -> Any:
        value, size = reader(self.frozen, self.pos)
        self.pos += size
        return value

    def array_length(self, name: str) -> int:
        """A non-nullable array's length, refused when it cannot fit in what is left."""
        if self.flexible:
            length = self.read(readers.read_compact_array_length)
        else:
            length = self.read(readers.read_legacy_array_length)
            length = None if length == -1 else length
        if length is None:
            raise ProduceDecodeError(f"non-nullable field {name} was serialized as null")
        if length < 0 or length > len(self.view) - self.pos:
            raise ProduceDecodeError(f"array of {length} elements in "
                                     f"{len(self.view) - self.pos} bytes")
        return int(length)

    def records(self) -> memoryview | None:
        """Nullable records: a slice of the frame, not a copy."""
        if self.flexible:
            length = self.read(readers.read_unsigned_varint) - 1
        else:
            length = self.read(readers.read_int32)
        if length == -1:
            return None
        if length < 0 or length > len(self.view) - self.pos:
            raise ProduceDecodeError(f"records of {length} bytes in "
                                     f"{len(self.view) - self.pos} bytes")
        start = self.pos
        self.pos += length
        return self.view[start:self.pos]

    def no_tagged_fields(self) -> None:
        if self.flexible and self.read(readers.read_unsigned_varint) != 0:
            raise ProduceDecodeError("unknown tagged field")  # kio refuses them too


def read_produce(frame: Buffer, pos: int, version: int) -> Any:
    """The ProduceRequest entity of ``version`` whose body starts at ``pos``.

    Raises ``ProduceDecodeError`` or kio's own errors (``SerialError``, ``ValueError``)
    when the body does not parse."""
    schema = _schema(version)
    flexible = version >= _FLEXIBLE_FROM
    cursor = _Cursor(frame, pos, flexible)
    transactional_id = cursor.read(readers.read_compact_string_nullable if flexible
                                   else readers.read_nullable_legacy_string)
    acks = cursor.read(readers.read_int16)
    timeout = cursor.read(readers.read_timedelta_i32)
    topics = tuple(_topic(cursor, schema, version) for _ in range(cursor.array_length("topic_data")))
    cursor.no_tagged_fields()
    return schema.ProduceRequest(transactional_id=transactional_id, acks=acks, timeout=timeout,
                                 topic_data=topics)


def _topic(cursor: _Cursor, schema: ModuleType, version: int) -> Any:
    if version >= _TOPIC_ID_FROM:
        ident = {"topic_id": cursor.read(readers.read_uuid)}
    else:
        ident = {"name": cursor.read(readers.read_compact_string if cursor.flexible
                                     else readers.read_legacy_string)}
    partitions = tuple(_partition(cursor, schema)
                       for _ in range(cursor.array_length("partition_data")))
    cursor.no_tagged_fields()
    return schema.TopicProduceData(**ident, partition_data=partitions)


def _partition(cursor: _Cursor, schema: ModuleType) -> Any:
    index = cursor.read(readers.read_int32)
    records = cursor.records()
    cursor.no_tagged_fields()
    return schema.PartitionProduceData(index=index, records=records)


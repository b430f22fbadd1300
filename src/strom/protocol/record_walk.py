"""Walk every record of a RecordBatch v2 body without building objects.

Kafka's LogValidator parses each record of each produced batch; a batch whose CRC is
right can still lie about its records (count, lengths, offset deltas, varints), and a
broker that stores it serves poison to every consumer and to its own replay at start.
The walk checks the record framing as Kafka's DefaultRecord reader does and returns only
what the policy checks need: the smallest and largest timestamp delta (timestamp bounds
hold for every record iff they hold for both) and the index of the first record without
a key (compacted topics refuse those).

The walk is native (`_recordwalk.c`, a few ns per record) when the extension is built,
and this module's Python loop (about 1 µs per record) otherwise; tests check that the two
agree on every input.
"""

from __future__ import annotations

from typing import NamedTuple

try:
    from strom.protocol import _recordwalk  # type: ignore[attr-defined]

    NATIVE = True
except ImportError:  # pragma: no cover - the extension is built by `pip install -e .`
    _recordwalk = None
    NATIVE = False

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class RecordsSummary(NamedTuple):
    min_timestamp_delta: int
    max_timestamp_delta: int
    first_null_key: int  # index of the first record without a key, -1 if all have keys


class RecordWalkError(ValueError):
    """The records do not parse; ``index`` is the record where the walk stopped."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def walk(body: bytes | bytearray | memoryview, count: int) -> RecordsSummary:
    """Check `count` records filling `body` exactly; raise RecordWalkError otherwise."""
    result = _recordwalk.walk(body, count) if NATIVE else _walk_python(body, count)
    if len(result) == 2:
        message, index = result
        raise RecordWalkError(str(message), int(index))
    return RecordsSummary(*result)


class _Cursor:
    """Python twin of the C cursor; `fail` carries the same messages."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def varint(self, max_bytes: int) -> int:
        raw = shift = 0
        buf, pos, end = self.buf, self.pos, self.end
        for _ in range(max_bytes):
            if pos >= end:
                raise _Fail("record field extends past the record")
            byte = buf[pos]
            pos += 1
            raw |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                value = (raw >> 1) ^ -(raw & 1)
                if max_bytes == 5 and not _INT32_MIN <= value <= _INT32_MAX:
                    raise _Fail("varint out of the int32 range")
                return value
            shift += 7
        raise _Fail("varint is too long")

    def skip_bytes(self, nullable: bool) -> bool:
        """Skip a length-prefixed field; True when it was null."""
        length = self.varint(5)
        if length < 0:
            if length == -1 and nullable:
                return True
            raise _Fail("invalid negative field length")
        if length > self.end - self.pos:
            raise _Fail("record field extends past the record")
        self.pos += length
        return False


class _Fail(Exception):
    pass


def _walk_record(body: _Cursor, index: int) -> tuple[int, bool]:
    length = body.varint(5)
    if length <= 0 or length > body.end - body.pos:
        raise _Fail("invalid record length" if length <= 0 else "record extends past the batch")
    rec = _Cursor(body.buf, body.pos + 1, body.pos + length)  # + 1: attributes, unused
    body.pos += length
    ts_delta = rec.varint(10)
    if rec.varint(5) != index:
        raise _Fail("record offset delta is not the record's position in the batch")
    null_key = rec.skip_bytes(True)
    rec.skip_bytes(True)
    header_count = rec.varint(5)
    if header_count < 0:
        raise _Fail("invalid negative header count")
    for _ in range(header_count):
        rec.skip_bytes(False)
        rec.skip_bytes(True)
    if rec.pos != rec.end:
        raise _Fail("record length does not match its fields")
    return ts_delta, null_key


def _walk_python(body: bytes | bytearray | memoryview, count: int) -> tuple[int, ...] | tuple[str, int]:
    cursor = _Cursor(body, 0, len(body))
    min_delta, max_delta, first_null_key = 2**63 - 1, -(2**63), -1
    for index in range(count):
        if cursor.pos >= cursor.end:
            return ("the batch holds fewer records than its count", index)
        try:
            ts_delta, null_key = _walk_record(cursor, index)
        except _Fail as exc:
            return (str(exc), index)
        min_delta = min(min_delta, ts_delta)
        max_delta = max(max_delta, ts_delta)
        if null_key and first_null_key < 0:
            first_null_key = index
    if cursor.pos != cursor.end:
        return ("bytes remain after the batch's last record", count)
    return (min_delta, max_delta, first_null_key)

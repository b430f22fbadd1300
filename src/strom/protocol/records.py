"""RecordBatch v2: the unit Kafka writes on the wire and on disk.

The broker treats a batch as opaque bytes and looks only at its 61-byte header: that is
what keeps produce and fetch free of per-record Python work. Records are decoded only
where something must look inside (tests, the CLI, compaction).

Wire layout (all integers big-endian; "varint" is zig-zag, as in protobuf)::

    offset  size  field
    0       8     base_offset            patched by the broker on append
    8       4     batch_length           bytes after this field
    12      4     partition_leader_epoch patched by the broker on append
    16      1     magic                  2; 0 and 1 are the legacy MessageSet formats
    17      4     crc                    CRC-32C of bytes 21..end (attributes onwards)
    21      2     attributes             bits 0-2 codec, 3 LogAppendTime, 4 transactional,
                                         5 control batch, 6 delete horizon set
    23      4     last_offset_delta
    27      8     base_timestamp
    35      8     max_timestamp          patched (with base) for LogAppendTime topics
    43      8     producer_id
    51      2     producer_epoch
    53      4     base_sequence
    57      4     records_count
    61      ...   records, compressed as a whole when the codec bits say so

    record: length varint, attributes int8, timestamp_delta varlong,
            offset_delta varint, key_length varint, key, value_length varint, value,
            header_count varint, headers (key_length varint, key, value_length varint,
            value); a length of -1 means null.

The CRC does not cover base_offset or partition_leader_epoch, so the broker may patch
those without recomputing it; patching timestamps does require a new CRC.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import crc32c
from kio.schema.errors import ErrorCode

from strom.protocol import compression

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset + batch_length: bytes not counted in batch_length
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAX_TIMESTAMP_OFFSET = 35
CURRENT_MAGIC = 2
NO_PRODUCER_ID = -1
NO_SEQUENCE = -1
NO_TIMESTAMP = -1

_HEADER = struct.Struct(">qiibIhiqqqhii")
# The first 43 header bytes: base_offset .. max_timestamp. Storage scans past an index entry
# unpack just this (a full BatchHeader is several times dearer and scans run on every fetch).
HEADER_PREFIX = struct.Struct(">qiibIhiqq")
RECORDS_COUNT_OFFSET = 57
_INT32 = struct.Struct(">i")
_OFFSET = struct.Struct(">q")
_EPOCH = struct.Struct(">i")
_TIMESTAMPS = struct.Struct(">qq")
_CRC = struct.Struct(">I")
_PREFIX = struct.Struct(">qi")


class Attr:
    """Bits of the 16-bit attributes field."""

    CODEC_MASK = 0x07
    LOG_APPEND_TIME = 0x08
    TRANSACTIONAL = 0x10
    CONTROL = 0x20
    DELETE_HORIZON = 0x40


class Codec(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class InvalidBatch(ValueError):
    """The bytes are not a well-formed v2 batch. ``reason`` is the Kafka error code."""

    def __init__(self, message: str, reason: ErrorCode = ErrorCode.corrupt_message) -> None:
        super().__init__(message)
        self.reason = reason


class BatchHeader(NamedTuple):
    """The fixed header of one batch; ``size`` is the whole batch on the wire.

    A NamedTuple rather than a frozen dataclass: it is built for every batch on produce,
    replication and recovery, and a tuple is several times cheaper to construct."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def codec(self) -> int:
        return self.attributes & Attr.CODEC_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & Attr.TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & Attr.CONTROL)

    @property
    def uses_log_append_time(self) -> bool:
        return bool(self.attributes & Attr.LOG_APPEND_TIME)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the header at ``pos``; raises InvalidBatch if it cannot be a v2 header."""
    if len(buf) - pos < HEADER_SIZE:
        if len(buf) - pos > MAGIC_OFFSET and buf[pos + MAGIC_OFFSET] in (0, 1):
            raise InvalidBatch("legacy message format (magic 0/1)",
                               ErrorCode.unsupported_for_message_format)
        raise InvalidBatch("truncated batch header")
    header = BatchHeader(*_HEADER.unpack_from(buf, pos))
    if header.magic != CURRENT_MAGIC:
        if header.magic in (0, 1):
            raise InvalidBatch(
                f"legacy message format magic {header.magic}",
                ErrorCode.unsupported_for_message_format,
            )
        raise InvalidBatch(f"unknown magic {header.magic}")
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise InvalidBatch(f"batch length {header.batch_length} is below the header size")
    return header


def count_records(data: bytes | bytearray | memoryview) -> int:
    """Records in a run of whole batches, from their headers alone (a torn tail counts 0)."""
    count = pos = 0
    end = len(data)
    unpack = _INT32.unpack_from
    while pos + HEADER_SIZE <= end:
        size = LOG_OVERHEAD + unpack(data, pos + 8)[0]
        if pos + size > end:
            break
        count += unpack(data, pos + RECORDS_COUNT_OFFSET)[0]
        pos += size
    return count


def crc_of(buf: bytes | bytearray | memoryview, pos: int, size: int) -> int:
    return int(crc32c.crc32c(memoryview(buf)[pos + ATTRIBUTES_OFFSET : pos + size]))


def validate_batches(buf: bytes | bytearray | memoryview) -> list[BatchHeader]:
    """Check every batch in a produce payload: framing, magic, CRC, counts.

    Returns the headers in order. The payload must hold whole batches and nothing else.
    """
    headers: list[BatchHeader] = []
    pos, end = 0, len(buf)
    if end == 0:
        raise InvalidBatch("empty record set")
    while pos < end:
        header = read_header(buf, pos)
        if pos + header.size > end:
            raise InvalidBatch("batch extends past the end of the record set")
        if crc_of(buf, pos, header.size) != header.crc:
            raise InvalidBatch("CRC-32C mismatch")
        if header.records_count < 0 or header.last_offset_delta < 0:
            raise InvalidBatch("negative record count or offset delta", ErrorCode.invalid_record)
        if header.codec > Codec.ZSTD:
            raise InvalidBatch(f"unknown compression codec {header.codec}")
        if header.codec == Codec.NONE and header.records_count > header.batch_length:
            raise InvalidBatch("record count exceeds batch size", ErrorCode.invalid_record)
        headers.append(header)
        pos += header.size
    return headers


def scan_batches(
    buf: bytes | bytearray | memoryview, pos: int = 0, verify_crc: bool = False
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each whole batch, stopping at the first bad one.

    Used by log recovery and fetch slicing, where a torn tail is expected and is not an
    error: the caller learns where valid data ends from the last position yielded.
    """
    end = len(buf)
    while end - pos >= HEADER_SIZE:
        try:
            header = read_header(buf, pos)
        except InvalidBatch:
            return
        if pos + header.size > end:
            return
        if verify_crc and crc_of(buf, pos, header.size) != header.crc:
            return
        yield pos, header
        pos += header.size


def patch_base_offset(buf: bytearray | memoryview, pos: int, base_offset: int) -> None:
    _OFFSET.pack_into(buf, pos, base_offset)


def patch_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    _EPOCH.pack_into(buf, pos + 12, epoch)


def patch_max_timestamp(buf: bytearray | memoryview, pos: int, size: int, timestamp_ms: int) -> None:
    """Set a batch's max timestamp and re-sign it (the validator corrects lying headers)."""
    struct.pack_into(">q", buf, pos + MAX_TIMESTAMP_OFFSET, timestamp_ms)
    _CRC.pack_into(buf, pos + CRC_OFFSET, crc_of(buf, pos, size))


def patch_log_append_time(
    buf: bytearray | memoryview, pos: int, size: int, timestamp_ms: int
) -> None:
    """Stamp broker time on a batch and re-sign it, as topics with LogAppendTime ask."""
    attributes = struct.unpack_from(">h", buf, pos + ATTRIBUTES_OFFSET)[0]
    struct.pack_into(">h", buf, pos + ATTRIBUTES_OFFSET, attributes | Attr.LOG_APPEND_TIME)
    _TIMESTAMPS.pack_into(buf, pos + 27, timestamp_ms, timestamp_ms)
    _CRC.pack_into(buf, pos + CRC_OFFSET, crc_of(buf, pos, size))


# --- record level: only for code that must look inside a batch -------------------------


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    raw = 0
    while True:
        if pos >= len(buf):
            raise InvalidBatch("truncated varint")
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise InvalidBatch("varint too long")


def _read_nullable_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = _read_varint(buf, pos)
    if length < 0:
        return None, pos
    if pos + length > len(buf):
        raise InvalidBatch("field extends past the record")
    return bytes(buf[pos : pos + length]), pos + length


def decode_records(
    batch: bytes | bytearray | memoryview, max_decompressed: int = 64 * 1024 * 1024
) -> list[Record]:
    """Decode every record of one batch, decompressing it if needed.

    The cap matches the broker's default `strom.decompression.max.bytes`: produce
    refuses batches that expand beyond it, so a stored batch that does is damage."""
    raw = bytes(batch)
    header = read_header(raw)
    body = raw[HEADER_SIZE : header.size]
    if header.codec != Codec.NONE:
        body = compression.decompress(header.codec, body, max_decompressed)
    records: list[Record] = []
    pos = 0
    for _ in range(header.records_count):
        length, pos = _read_varint(body, pos)
        end = pos + length
        if length < 0 or end > len(body):
            raise InvalidBatch("record extends past the batch")
        pos += 1  # record attributes, unused
        ts_delta, pos = _read_varint(body, pos)
        offset_delta, pos = _read_varint(body, pos)
        key, pos = _read_nullable_bytes(body, pos)
        value, pos = _read_nullable_bytes(body, pos)
        count, pos = _read_varint(body, pos)
        headers = []
        for _ in range(count):
            hkey, pos = _read_nullable_bytes(body, pos)
            hvalue, pos = _read_nullable_bytes(body, pos)
            headers.append(((hkey or b"").decode("utf-8", "replace"), hvalue))
        if pos != end:
            raise InvalidBatch("record length does not match its fields")
        timestamp = header.max_timestamp if header.uses_log_append_time else (
            header.base_timestamp + ts_delta
        )
        records.append(
            Record(header.base_offset + offset_delta, timestamp, key, value, tuple(headers))
        )
    return records


def _write_varint(out: bytearray, value: int) -> None:
    raw = (value << 1) ^ (value >> 63)
    while raw & ~0x7F:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)


def _write_nullable_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _write_varint(out, -1)
    else:
        _write_varint(out, len(value))
        out += value


def encode_batch(
    records: list[tuple[bytes | None, bytes | None]],
    *,
    base_offset: int = 0,
    timestamp_ms: int = 0,
    codec: Codec = Codec.NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = NO_SEQUENCE,
    attributes: int = 0,
    headers: tuple[tuple[str, bytes | None], ...] = (),
) -> bytes:
    """Build a batch of (key, value) records; for tests, tools and internal topics."""
    body = bytearray()
    for delta, (key, value) in enumerate(records):
        rec = bytearray([0])
        _write_varint(rec, 0)
        _write_varint(rec, delta)
        _write_nullable_bytes(rec, key)
        _write_nullable_bytes(rec, value)
        _write_varint(rec, len(headers))
        for hkey, hvalue in headers:
            _write_nullable_bytes(rec, hkey.encode())
            _write_nullable_bytes(rec, hvalue)
        _write_varint(body, len(rec))
        body += rec
    payload = bytes(body) if codec == Codec.NONE else compression.compress(codec, bytes(body))
    attrs = attributes | int(codec)
    last_delta = max(len(records) - 1, 0)
    tail = struct.pack(
        ">hiqqqhii",
        attrs,
        last_delta,
        timestamp_ms,
        timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    ) + payload
    crc = crc32c.crc32c(tail)
    batch_length = 4 + 1 + 4 + len(tail)
    return _PREFIX.pack(base_offset, batch_length) + struct.pack(">ibI", 0, 2, crc) + tail


# Public names for code that rewrites records (the log cleaner): one varint codec.
read_varint = _read_varint
write_varint = _write_varint

"""Rewriting one stored batch for the log cleaner: which records it holds, and the bytes of
the batch that keeps only some of them.

The cleaner decides per record (is it the latest for its key, is it a tombstone past its
delete horizon); this module only parses and rebuilds, so the rules read on their own in
``cleaner.py``. A rebuilt batch keeps what consumers and replicas rely on: its base offset
(so the retained records keep their offsets), partition leader epoch, producer id, epoch
and base sequence, transactional/control flags and codec; record bytes are copied
verbatim unless the batch gains a delete horizon (KIP-534), which moves its base
timestamp and so every record's timestamp delta.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

import crc32c

from strom.protocol import compression
from strom.protocol.records import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    Attr,
    BatchHeader,
    Codec,
    InvalidBatch,
    read_varint,
    write_varint,
)
from strom.storage import markers

_TAIL = struct.Struct(">hiqqqhii")  # attributes .. records_count: what the CRC covers first
_PREFIX = struct.Struct(">qiibI")  # base offset, batch length, leader epoch, magic, crc


class RecordSlice(NamedTuple):
    """One record of a (decompressed) batch body, located but not copied."""

    start: int  # where its length varint begins
    attributes_at: int  # just past the length varint: the record's attributes byte
    end: int
    fields: int  # where its key length begins: everything from here on is copied as is
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    is_tombstone: bool


def batch_body(raw: bytes | memoryview, header: BatchHeader, max_decompressed: int) -> bytes:
    """The records of a batch, decompressed."""
    body = bytes(raw[HEADER_SIZE : header.size])
    if header.codec != Codec.NONE:
        try:
            body = compression.decompress(header.codec, body, max_decompressed)
        except compression.DecompressionError as exc:
            raise InvalidBatch(str(exc)) from exc
    return body


def slice_records(body: bytes, count: int) -> list[RecordSlice]:
    """Locate every record; raises ``InvalidBatch`` if the body does not hold ``count``."""
    slices: list[RecordSlice] = []
    pos = 0
    for _ in range(count):
        length, pos0 = read_varint(body, pos)
        end = pos0 + length
        if length < 0 or end > len(body):
            raise InvalidBatch("record extends past the batch")
        ts_delta, p = read_varint(body, pos0 + 1)
        offset_delta, fields = read_varint(body, p)
        key_length, p = read_varint(body, fields)
        key = None if key_length < 0 else body[p : p + key_length]
        p += max(key_length, 0)
        value_length, _ = read_varint(body, p)
        slices.append(RecordSlice(pos, pos0, end, fields, offset_delta, ts_delta, key, value_length < 0))
        pos = end
    if pos != len(body):
        raise InvalidBatch("bytes left over after the last record")
    return slices


def control_type(body: bytes, slices: Sequence[RecordSlice]) -> int | None:
    """ABORT (0) or COMMIT (1) for a control batch's marker record; None if unreadable."""
    return markers.marker_type(slices[0].key) if slices else None


def rebuild(
    header: BatchHeader,
    body: bytes,
    kept: Sequence[RecordSlice],
    *,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """A batch holding only ``kept`` (in order, at least one), other fields preserved.

    ``delete_horizon_ms`` stamps the batch with a delete horizon (attribute bit 6, stored
    in the base timestamp as KIP-534 defines it); records are then re-encoded with
    timestamp deltas relative to it, so every record keeps its timestamp.
    """
    if delete_horizon_ms is None:
        records = b"".join(body[r.start : r.end] for r in kept)
        base_ts, attributes = header.base_timestamp, header.attributes
    else:
        records = _rebased(header.base_timestamp, delete_horizon_ms, body, kept)
        base_ts, attributes = delete_horizon_ms, header.attributes | Attr.DELETE_HORIZON
    if header.codec != Codec.NONE:
        records = compression.compress(header.codec, records)
    timestamps = [header.base_timestamp + r.timestamp_delta for r in kept]
    max_ts = header.max_timestamp if header.uses_log_append_time else max(timestamps)
    return _assemble(header, attributes, kept[-1].offset_delta, base_ts, max_ts, len(kept),
                     records)


def empty_batch(header: BatchHeader) -> bytes:
    """A batch with no records spanning the original offsets: Kafka keeps one where the
    last batch of a live producer was emptied, so its sequence survives compaction."""
    attributes = header.attributes & ~Attr.CODEC_MASK
    return _assemble(header, attributes, header.last_offset_delta, header.base_timestamp,
                     header.max_timestamp, 0, b"")


def _rebased(old_base: int, new_base: int, body: bytes, kept: Sequence[RecordSlice]) -> bytes:
    out = bytearray()
    for r in kept:
        record = bytearray(body[r.attributes_at : r.attributes_at + 1])
        write_varint(record, old_base + r.timestamp_delta - new_base)
        write_varint(record, r.offset_delta)
        record += body[r.fields : r.end]
        write_varint(out, len(record))
        out += record
    return bytes(out)


def _assemble(
    header: BatchHeader, attributes: int, last_delta: int, base_ts: int, max_ts: int,
    count: int, records: bytes,
) -> bytes:
    tail = _TAIL.pack(attributes, last_delta, base_ts, max_ts, header.producer_id,
                      header.producer_epoch, header.base_sequence, count) + records
    crc = crc32c.crc32c(tail)
    length = HEADER_SIZE - LOG_OVERHEAD + len(records)
    return _PREFIX.pack(header.base_offset, length, header.partition_leader_epoch, 2, crc) + tail

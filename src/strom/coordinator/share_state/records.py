"""The records of `__share_group_state` in Kafka 4.4's encoding (KIP-932).

Kafka's share coordinator keeps each share-partition's durable state as two record
types, keyed alike (group, topic id, partition):

    0  ShareSnapshot  the whole state: snapshot epoch, state epoch, leader epoch, start
                      offset, create and write timestamps, the state batches
    1  ShareUpdate    what one write changed: snapshot epoch, leader epoch, start offset
                      (-1: unchanged), the state batches it rewrote

A key is the int16 record type, then the key message (version 0, not flexible): group
(int16-length string), topic id (16 bytes), partition (int32). A value is the int16
version 0, then the value message (flexible: compact array of batches, each batch and
the value ending in tagged fields; DeliveryCompleteCount is tag 0, default -1). A
tombstone (no value) for the snapshot key deletes the share-partition's state.

Kafka reads these bytes with its ShareCoordinatorRecordSerde (DumpLogSegments'
share-group-state decoder), so the layouts are Kafka's to the byte.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

SNAPSHOT = 0
UPDATE = 1
NO_COUNT = -1  # DeliveryCompleteCount's default: not sent

_VALUE_HEAD = struct.Struct(">h")
_SNAPSHOT_HEAD = struct.Struct(">iiiq")  # snapshot epoch, state epoch, leader epoch, start
_UPDATE_HEAD = struct.Struct(">iiq")  # snapshot epoch, leader epoch, start offset
_TIMES = struct.Struct(">qq")
_BATCH = struct.Struct(">qqbh")


class ShareRecordError(ValueError):
    """Bytes that are not a share coordinator record Strom can read."""


@dataclass(frozen=True, slots=True)
class StateBatch:
    """Offsets with one delivery state and count (0 Available, 2 Acked, 4 Archived)."""

    first_offset: int
    last_offset: int
    delivery_state: int
    delivery_count: int


ShareKey = tuple[str, uuid.UUID, int]  # group, topic id, partition


@dataclass(frozen=True, slots=True)
class ShareSnapshot:
    snapshot_epoch: int
    state_epoch: int
    leader_epoch: int
    start_offset: int
    create_timestamp: int
    write_timestamp: int
    batches: tuple[StateBatch, ...]
    delivery_complete_count: int = NO_COUNT


@dataclass(frozen=True, slots=True)
class ShareUpdate:
    snapshot_epoch: int
    leader_epoch: int
    start_offset: int  # -1: the start offset is not changed by this update
    batches: tuple[StateBatch, ...]
    delivery_complete_count: int = NO_COUNT


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """One record of `__share_group_state`: a snapshot, an update, or (value None) a
    tombstone."""

    kind: int
    key: ShareKey
    value: ShareSnapshot | ShareUpdate | None

    def entry(self) -> tuple[bytes, bytes | None]:
        """(key, value) bytes as Kafka writes them."""
        return encode_key(self.kind, self.key), None if self.value is None \
            else encode_value(self.value)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def encode_key(kind: int, key: ShareKey) -> bytes:
    group = key[0].encode()
    return (struct.pack(">hh", kind, len(group)) + group + key[1].bytes
            + struct.pack(">i", key[2]))


def _tags(delivery_complete_count: int) -> bytes:
    """The value's tagged fields: DeliveryCompleteCount (tag 0) unless it is -1."""
    if delivery_complete_count == NO_COUNT:
        return b"\x00"
    return b"\x01\x00\x04" + struct.pack(">i", delivery_complete_count)


def _batches(batches: tuple[StateBatch, ...]) -> bytes:
    out = bytearray(_uvarint(len(batches) + 1))
    for b in batches:
        out += _BATCH.pack(b.first_offset, b.last_offset, b.delivery_state, b.delivery_count)
        out += b"\x00"
    return bytes(out)


def encode_value(value: ShareSnapshot | ShareUpdate) -> bytes:
    if isinstance(value, ShareSnapshot):
        head = (_SNAPSHOT_HEAD.pack(value.snapshot_epoch, value.state_epoch,
                                    value.leader_epoch, value.start_offset)
                + _TIMES.pack(value.create_timestamp, value.write_timestamp))
    else:
        head = _UPDATE_HEAD.pack(value.snapshot_epoch, value.leader_epoch, value.start_offset)
    return (_VALUE_HEAD.pack(0) + head + _batches(value.batches)
            + _tags(value.delivery_complete_count))


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, layout: struct.Struct) -> tuple[int, ...]:
        if self.pos + layout.size > len(self.data):
            raise ShareRecordError("truncated share record")
        values = layout.unpack_from(self.data, self.pos)
        self.pos += layout.size
        return values

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 28:
                raise ShareRecordError("bad varint in a share record")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def tags(self) -> dict[int, bytes]:
        found = {}
        for _ in range(self.uvarint()):
            tag, size = self.uvarint(), self.uvarint()
            found[tag] = self.data[self.pos:self.pos + size]
            self.pos += size
        return found

    def batches(self) -> tuple[StateBatch, ...]:
        out = []
        for _ in range(self.uvarint() - 1):
            first, last, state, count = self.take(_BATCH)
            self.tags()
            out.append(StateBatch(first, last, state, count))
        return tuple(out)

    def count(self) -> int:
        tagged = self.tags().get(0)
        return NO_COUNT if tagged is None or len(tagged) != 4 else \
            int(struct.unpack(">i", tagged)[0])


def decode(key: bytes, value: bytes | None) -> ShareRecord:
    """A record read from `__share_group_state`; ShareRecordError if it is not one."""
    if len(key) < 4:
        raise ShareRecordError("short share record key")
    kind, size = struct.unpack_from(">hh", key, 0)
    if kind not in (SNAPSHOT, UPDATE) or len(key) != 4 + size + 20:
        raise ShareRecordError(f"not a share coordinator key (type {kind})")
    group = key[4:4 + size].decode()
    topic_id = uuid.UUID(bytes=key[4 + size:20 + size])
    (partition,) = struct.unpack_from(">i", key, 20 + size)
    share_key = (group, topic_id, partition)
    if value is None:
        return ShareRecord(kind, share_key, None)
    reader = _Reader(value, _VALUE_HEAD.size)
    decoded: ShareSnapshot | ShareUpdate
    if kind == SNAPSHOT:
        snapshot_epoch, state_epoch, leader_epoch, start = reader.take(_SNAPSHOT_HEAD)
        created, written = reader.take(_TIMES)
        batches = reader.batches()
        decoded = ShareSnapshot(snapshot_epoch, state_epoch, leader_epoch, start, created,
                                written, batches, reader.count())
    else:
        snapshot_epoch, leader_epoch, start = reader.take(_UPDATE_HEAD)
        batches = reader.batches()
        decoded = ShareUpdate(snapshot_epoch, leader_epoch, start, batches, reader.count())
    return ShareRecord(kind, share_key, decoded)

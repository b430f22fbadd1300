"""Durable share-partition state in Kafka's ShareSnapshot format (KIP-932).

Kafka's share coordinator keeps each share-partition's state in `__share_group_state` as
ShareSnapshot (type 0) and ShareUpdate (type 1) records keyed by group, topic id and
partition. Strom writes the same ShareSnapshot key and value bytes, but to one small
file per share-partition under `<first log dir>/__share_group_state/`, replaced
atomically (write, then rename) after every acknowledgement or release. A restarted
broker reads it back, so nothing acknowledged is delivered again; acquired records are
stored AVAILABLE (their locks do not survive), as Kafka does.

ShareSnapshotKey v0 (not flexible): int16 type 0, group (int16-length string), topic id
(16 bytes), partition int32. ShareSnapshotValue v0 (flexible): int16 version 0, snapshot
epoch, state epoch, leader epoch (int32), start offset (int64), create and write
timestamps (int64), compact array of state batches (first and last offset int64,
delivery state int8, delivery count int16, no tags), no tags. The file holds the key and
the value, each with an int32 length.
"""

from __future__ import annotations

import hashlib
import os
import struct
import uuid
from collections.abc import Callable
from pathlib import Path

from strom.broker.share.manager import ShareKey
from strom.broker.share.partition import StateBatch

SNAPSHOT_TYPE = 0
DIRECTORY = "__share_group_state"


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def encode_key(group_id: str, topic_id: uuid.UUID, partition: int) -> bytes:
    group = group_id.encode()
    return (struct.pack(">hh", SNAPSHOT_TYPE, len(group)) + group + topic_id.bytes
            + struct.pack(">i", partition))


def encode_value(state_epoch: int, start_offset: int, batches: list[StateBatch],
                 now_ms: int, leader_epoch: int = 0) -> bytes:
    out = bytearray(struct.pack(">hiiiqqq", 0, 0, state_epoch, leader_epoch, start_offset,
                                now_ms, now_ms))
    out += _uvarint(len(batches) + 1)
    for b in batches:
        out += struct.pack(">qqbh", b.first_offset, b.last_offset, b.delivery_state,
                           b.delivery_count)
        out += b"\x00"  # the batch's tagged fields
    out += b"\x00"  # the value's tagged fields
    return bytes(out)


def decode_value(data: bytes) -> tuple[int, int, list[StateBatch]]:
    """(state epoch, start offset, batches) of a ShareSnapshotValue v0."""
    _, _, state_epoch, _, start, _, _ = struct.unpack_from(">hiiiqqq", data, 0)
    count, pos = _read_uvarint(data, struct.calcsize(">hiiiqqq"))
    batches = []
    for _ in range(count - 1):
        first, last, state, deliveries = struct.unpack_from(">qqbh", data, pos)
        pos += struct.calcsize(">qqbh")
        tags, pos = _read_uvarint(data, pos)
        for _ in range(tags):  # skip tagged fields we do not know
            _, pos = _read_uvarint(data, pos)
            size, pos = _read_uvarint(data, pos)
            pos += size
        batches.append(StateBatch(first, last, state, deliveries))
    return state_epoch, start, batches


class FileShareStateStore:
    """`ShareStateStore` on local files (see the module docstring)."""

    def __init__(self, root: Path, topic_id: Callable[[str], uuid.UUID | None],
                 clock: Callable[[], int]) -> None:
        self.root = root / DIRECTORY
        self.topic_id = topic_id
        self.clock = clock

    def _path(self, key: ShareKey, topic_id: uuid.UUID) -> Path:
        group = hashlib.sha256(key[0].encode()).hexdigest()[:32]
        return self.root / f"{group}-{topic_id.hex}-{key[2]}"

    def read(self, key: ShareKey) -> tuple[int, int, list[StateBatch]] | None:
        topic_id = self.topic_id(key[1])
        if topic_id is None:
            return None
        try:
            data = self._path(key, topic_id).read_bytes()
        except FileNotFoundError:
            return None
        (key_size,) = struct.unpack_from(">i", data, 0)
        (value_size,) = struct.unpack_from(">i", data, 4 + key_size)
        start = 8 + key_size
        return decode_value(data[start:start + value_size])

    def write(self, key: ShareKey, state_epoch: int, start_offset: int,
              batches: list[StateBatch]) -> None:
        topic_id = self.topic_id(key[1])
        if topic_id is None:
            return
        record_key = encode_key(key[0], topic_id, key[2])
        value = encode_value(state_epoch, start_offset, batches, self.clock())
        path = self._path(key, topic_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(struct.pack(">i", len(record_key)) + record_key
                        + struct.pack(">i", len(value)) + value)
        os.replace(tmp, path)

    def delete(self, key: ShareKey) -> None:
        topic_id = self.topic_id(key[1])
        if topic_id is not None:
            self._path(key, topic_id).unlink(missing_ok=True)

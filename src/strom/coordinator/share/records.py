"""Share group records of `__consumer_offsets`, in Kafka 4.4's own encoding (KIP-932).

The key's leading int16 is the record type (Kafka's apiKey of the record):

    10  ShareGroupMemberMetadata            key: group, member  value: rack id (nullable),
                                            client id, client host, subscribed topic names
    11  ShareGroupMetadata                  key: group          value: epoch int32,
                                                                metadata hash int64
    12  ShareGroupTargetAssignmentMetadata  key: group          value: assignment epoch
                                                                (tag 0: assignment time)
    13  ShareGroupTargetAssignmentMember    key: group, member  value: partitions by topic id
    14  ShareGroupCurrentMemberAssignment   key: group, member  value: member epoch,
                                            previous epoch, state int8, assigned partitions
    15  ShareGroupStatePartitionMetadata    key: group          (which share-partitions
                                            are initialized; read and skipped, never written)

Keys are not flexible (int16-length strings); values are version 0, flexible (compact
strings and arrays, tagged fields after each struct), as the consumer group records of
`strom.coordinator.group.records_848`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from strom.coordinator.group.codec import CodecError, _Reader
from strom.coordinator.group.records_848 import (
    FlexWriter,
    decode_group_key,
    encode_group_key,
    key_type,
    read_assignment,
)

MEMBER_METADATA = 10
GROUP_METADATA = 11
TARGET_METADATA = 12
TARGET_MEMBER = 13
CURRENT_ASSIGNMENT = 14
STATE_PARTITION_METADATA = 15
TYPES = frozenset({MEMBER_METADATA, GROUP_METADATA, TARGET_METADATA, TARGET_MEMBER,
                   CURRENT_ASSIGNMENT, STATE_PARTITION_METADATA})
_MEMBER_KEYED = frozenset({MEMBER_METADATA, TARGET_MEMBER, CURRENT_ASSIGNMENT})
STABLE = 0  # Kafka's MemberState.STABLE: a share member has nothing to revoke

Assignment = Mapping[uuid.UUID, frozenset[int]]


@dataclass(frozen=True, slots=True)
class GroupMetadataValue:
    epoch: int
    metadata_hash: int = 0


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TargetMetadataValue:
    assignment_epoch: int


@dataclass(frozen=True, slots=True)
class TargetMemberValue:
    partitions: Assignment


@dataclass(frozen=True, slots=True)
class CurrentAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    assigned: Assignment
    state: int = STABLE


@dataclass(frozen=True, slots=True)
class StatePartitionMetadataValue:
    """Read only: Strom keeps share-partition initialization on the leaders."""


Value = (GroupMetadataValue | MemberMetadataValue | TargetMetadataValue | TargetMemberValue
         | CurrentAssignmentValue | StatePartitionMetadataValue)


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """One share group record: type, group, member (member-keyed types), value (None:
    a tombstone)."""

    type: int
    group: str
    member: str | None
    value: Value | None


# --- writing ---------------------------------------------------------------------------

def encode_key(record: ShareRecord) -> bytes:
    return encode_group_key(record.type, record.group, record.member, _MEMBER_KEYED)


def encode_value(value: Value) -> bytes:
    """Version 0 of the value's type."""
    w = FlexWriter()
    w.i16(0)
    if isinstance(value, GroupMetadataValue):
        w.i32(value.epoch)
        w.i64(value.metadata_hash)
    elif isinstance(value, MemberMetadataValue):
        w.cstring(value.rack_id)
        w.cstring(value.client_id)
        w.cstring(value.client_host)
        w.uvarint(len(value.subscribed_topics) + 1)
        for topic in value.subscribed_topics:
            w.cstring(topic)
    elif isinstance(value, TargetMetadataValue):
        w.i32(value.assignment_epoch)
    elif isinstance(value, TargetMemberValue):
        w.assignment(value.partitions)
    elif isinstance(value, CurrentAssignmentValue):
        w.i32(value.member_epoch)
        w.i32(value.previous_member_epoch)
        w.parts.append(bytes([value.state & 0xFF]))
        w.assignment(value.assigned)
    else:
        raise ValueError(f"Strom does not write {type(value).__name__}")
    w.uvarint(0)
    return w.done()


def serialize(record: ShareRecord) -> tuple[bytes, bytes | None]:
    return encode_key(record), None if record.value is None else encode_value(record.value)


# --- reading ---------------------------------------------------------------------------

def record_type(key: bytes) -> int | None:
    """The record type of a key if it is a share group record, else None."""
    return key_type(key, TYPES)


def decode(key: bytes, value: bytes | None) -> ShareRecord:
    """A share group record from its key and value bytes; raises `CodecError` only."""
    kind, group, member = decode_group_key(key, TYPES, _MEMBER_KEYED, "share group")
    return ShareRecord(kind, group, member, None if value is None else _decode_value(kind, value))


def _decode_value(kind: int, data: bytes) -> Value:
    r = _Reader(data, flexible=True)
    version = r.i16()
    if version != 0:
        raise CodecError(f"unknown version {version} of share group record type {kind}")
    if kind == STATE_PARTITION_METADATA:
        return StatePartitionMetadataValue()  # nothing Strom needs; the rest is skipped
    value: Value
    if kind == GROUP_METADATA:
        value = GroupMetadataValue(r.i32(), r.i64())
    elif kind == MEMBER_METADATA:
        value = MemberMetadataValue(r.string(), r.required_string(), r.required_string(),
                                    tuple(r.required_string() for _ in range(r.array_length())))
    elif kind == TARGET_METADATA:
        value = TargetMetadataValue(r.i32())
    elif kind == TARGET_MEMBER:
        value = TargetMemberValue(read_assignment(r))
    else:
        epoch, previous = r.i32(), r.i32()
        state = r._take(1)[0]
        value = CurrentAssignmentValue(epoch, previous, read_assignment(r), state)
    r.tagged_fields()
    return value

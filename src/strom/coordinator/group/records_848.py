"""KIP-848 consumer group records of `__consumer_offsets`, in Kafka's own encoding.

Kafka 4.x stores a consumer group (the new rebalance protocol) as several record types
next to the classic ones; the key's leading int16 is the record type (Kafka's apiKey):

    3  ConsumerGroupMetadata             key: group        value: epoch, tag 0 metadata hash
    4  ConsumerGroupPartitionMetadata    key: group        (deprecated by KIP-1101; read,
                                                            never written)
    5  ConsumerGroupMemberMetadata       key: group, member value: instance id, rack id,
                                         client id, client host, subscribed topic names,
                                         subscribed regex, rebalance timeout, server assignor
    6  ConsumerGroupTargetAssignmentMetadata  key: group   value: assignment epoch
    7  ConsumerGroupTargetAssignmentMember    key: group, member  value: partitions by topic id
    8  ConsumerGroupCurrentMemberAssignment   key: group, member  value: member epoch,
                                         previous epoch, state int8, assigned partitions,
                                         partitions pending revocation
   16  ConsumerGroupRegularExpression    key: group, regex  value: the topics it matched,
                                         metadata version, resolution time (ms)

Keys are non-flexible (int16-length strings); values are version 0, flexible (KIP-482
compact strings and arrays, tagged fields after each struct), so Kafka's tools read what
Strom writes and Strom reads what Kafka 4.4 writes (tagged fields it does not know are
skipped). Topics are named by id in assignments, as Kafka does, so a deleted and
recreated topic is a different topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from strom.coordinator.group.codec import CodecError, _Reader, _Writer

GROUP_METADATA = 3
PARTITION_METADATA = 4
MEMBER_METADATA = 5
TARGET_METADATA = 6
TARGET_MEMBER = 7
CURRENT_ASSIGNMENT = 8
REGEX = 16
TYPES = frozenset({GROUP_METADATA, PARTITION_METADATA, MEMBER_METADATA, TARGET_METADATA,
                   TARGET_MEMBER, CURRENT_ASSIGNMENT, REGEX})
# Keys with a second string after the group: the member id, or the regex for REGEX.
_MEMBER_KEYED = frozenset({MEMBER_METADATA, TARGET_MEMBER, CURRENT_ASSIGNMENT, REGEX})

Assignment = Mapping[uuid.UUID, frozenset[int]]


@dataclass(frozen=True, slots=True)
class GroupMetadataValue:
    epoch: int
    metadata_hash: int = 0


@dataclass(frozen=True, slots=True)
class PartitionMetadataValue:
    epoch: int


@dataclass(frozen=True, slots=True)
class ClassicMetadata:
    """A classic-protocol member of a consumer group (a mixed group): its session timeout
    and the protocols it offered in its JoinGroup (tagged field 0 of MemberMetadata)."""

    session_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topics: tuple[str, ...]
    subscribed_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None
    classic: ClassicMetadata | None = None


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
    state: int
    assigned: Assignment
    pending_revocation: Assignment = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegexValue:
    """A subscription regex resolved against the topics: what it matched, at which
    metadata version and when (Kafka re-resolves regexes from time to time)."""

    topics: tuple[str, ...]
    version: int = 0
    timestamp: int = 0


Value = (GroupMetadataValue | PartitionMetadataValue | MemberMetadataValue | TargetMetadataValue
         | TargetMemberValue | CurrentAssignmentValue | RegexValue)


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    """One KIP-848 record: its type, group, member (member-keyed types) and value
    (None: a tombstone)."""

    type: int
    group: str
    member: str | None  # the member id; the regex itself for REGEX
    value: Value | None


# --- writing ---------------------------------------------------------------------------

class FlexWriter(_Writer):
    """The flexible-version writer of coordinator record values (compact strings and
    arrays, tagged fields); the share group records use it too."""

    def uvarint(self, v: int) -> None:
        out = bytearray()
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        self.parts.append(bytes(out))

    def cstring(self, v: str | None) -> None:
        if v is None:
            self.uvarint(0)
            return
        data = v.encode()
        self.uvarint(len(data) + 1)
        self.parts.append(data)

    def no_tags(self) -> None:
        self.uvarint(0)

    def assignment(self, value: Assignment) -> None:
        self.uvarint(len(value) + 1)
        for topic_id in sorted(value):
            self.parts.append(topic_id.bytes)
            parts = sorted(value[topic_id])
            self.uvarint(len(parts) + 1)
            for p in parts:
                self.i32(p)
            self.no_tags()


def encode_group_key(kind: int, group: str, member: str | None, member_keyed: frozenset[int]
                     ) -> bytes:
    """The key of a group record (KIP-848's and KIP-932's): type, group id, and the member
    id for the types keyed by member."""
    w = _Writer()
    w.i16(kind)
    w.string(group)
    if kind in member_keyed:
        w.string(member or "")
    return w.done()


def encode_key(record: ConsumerRecord) -> bytes:
    return encode_group_key(record.type, record.group, record.member, _MEMBER_KEYED)


def encode_value(value: Value) -> bytes:
    """Version 0 of the value's type."""
    w = FlexWriter()
    w.i16(0)
    if isinstance(value, GroupMetadataValue):
        w.i32(value.epoch)
    elif isinstance(value, MemberMetadataValue):
        _write_member(w, value)
        if value.classic is not None:
            _write_classic(w, value.classic)
            return w.done()
    elif isinstance(value, TargetMetadataValue):
        w.i32(value.assignment_epoch)
    elif isinstance(value, TargetMemberValue):
        w.assignment(value.partitions)
    elif isinstance(value, CurrentAssignmentValue):
        w.i32(value.member_epoch)
        w.i32(value.previous_member_epoch)
        w.parts.append(bytes([value.state & 0xFF]))
        w.assignment(value.assigned)
        w.assignment(value.pending_revocation)
    elif isinstance(value, RegexValue):
        w.uvarint(len(value.topics) + 1)
        for topic in value.topics:
            w.cstring(topic)
        w.i64(value.version)
        w.i64(value.timestamp)
    else:
        raise ValueError(f"Strom does not write {type(value).__name__}")
    w.no_tags()
    return w.done()


def _write_member(w: FlexWriter, value: MemberMetadataValue) -> None:
    w.cstring(value.instance_id)
    w.cstring(value.rack_id)
    w.cstring(value.client_id)
    w.cstring(value.client_host)
    w.uvarint(len(value.subscribed_topics) + 1)
    for topic in value.subscribed_topics:
        w.cstring(topic)
    w.cstring(value.subscribed_regex)
    w.i32(value.rebalance_timeout_ms)
    w.cstring(value.server_assignor)


def _write_classic(w: FlexWriter, classic: ClassicMetadata) -> None:
    """The value's tag section with tag 0: the classic member's metadata, a nullable
    struct (a leading int8 1: present)."""
    inner = FlexWriter()
    inner.parts.append(b"\x01")
    inner.i32(classic.session_timeout_ms)
    inner.uvarint(len(classic.protocols) + 1)
    for name, metadata in classic.protocols:
        inner.cstring(name)
        inner.uvarint(len(metadata) + 1)
        inner.parts.append(metadata)
        inner.no_tags()
    inner.no_tags()
    data = inner.done()
    w.uvarint(1)
    w.uvarint(0)
    w.uvarint(len(data))
    w.parts.append(data)


def serialize(record: ConsumerRecord) -> tuple[bytes, bytes | None]:
    return encode_key(record), None if record.value is None else encode_value(record.value)


# --- reading ---------------------------------------------------------------------------

def key_type(key: bytes, types: frozenset[int]) -> int | None:
    """The record type of a key if it is one of `types`, else None."""
    if len(key) < 2:
        return None
    kind = int.from_bytes(key[:2], "big", signed=True)
    return kind if kind in types else None


def decode_group_key(key: bytes, types: frozenset[int], member_keyed: frozenset[int],
                     family: str) -> tuple[int, str, str | None]:
    """(type, group id, member id or None) of a group record's key; `CodecError` for a
    type outside `types`."""
    r = _Reader(key)
    kind = r.i16()
    if kind not in types:
        raise CodecError(f"not a {family} record type: {kind}")
    group = r.required_string()
    return kind, group, r.required_string() if kind in member_keyed else None


def record_type(key: bytes) -> int | None:
    """The record type of a key if it is one of this module's, else None."""
    return key_type(key, TYPES)


def decode(key: bytes, value: bytes | None) -> ConsumerRecord:
    """A KIP-848 record from its key and value bytes; raises `CodecError` only."""
    kind, group, member = decode_group_key(key, TYPES, _MEMBER_KEYED, "consumer group")
    return ConsumerRecord(kind, group, member, None if value is None else _decode_value(kind, value))


def _decode_value(kind: int, data: bytes) -> Value:
    r = _Reader(data, flexible=True)
    version = r.i16()
    if version != 0:
        raise CodecError(f"unknown version {version} of consumer group record type {kind}")
    if kind == GROUP_METADATA:
        epoch = r.i32()
        return GroupMetadataValue(epoch, _tagged_i64(r, tag=0))
    if kind == PARTITION_METADATA:
        return PartitionMetadataValue(r.i32())  # the topics that follow are not needed
    if kind == MEMBER_METADATA:
        member = _read_member(r)
        classic = _member_tags(r)
        return member if classic is None else MemberMetadataValue(
            member.instance_id, member.rack_id, member.client_id, member.client_host,
            member.subscribed_topics, member.subscribed_regex, member.rebalance_timeout_ms,
            member.server_assignor, classic)
    value: Value
    if kind == TARGET_METADATA:
        value = TargetMetadataValue(r.i32())
    elif kind == TARGET_MEMBER:
        value = TargetMemberValue(read_assignment(r))
    elif kind == REGEX:
        value = RegexValue(_read_strings(r), r.i64(), r.i64())
    else:
        value = CurrentAssignmentValue(r.i32(), r.i32(), r._take(1)[0], read_assignment(r),
                                       read_assignment(r))
    r.tagged_fields()
    return value


def _tagged_i64(r: _Reader, tag: int) -> int:
    """The int64 tagged field ``tag`` of the struct's tag section (0 if absent)."""
    found = 0
    for _ in range(r.uvarint()):
        this, size = r.uvarint(), r.uvarint()
        chunk = r._take(size)
        if this == tag and size == 8:
            found = int.from_bytes(chunk, "big", signed=True)
    return found


def _member_tags(r: _Reader) -> ClassicMetadata | None:
    """The tag section of a member's value: tag 0 is its classic metadata, others are
    skipped."""
    found = None
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        chunk = r._take(size)
        if tag == 0 and chunk[:1] == b"\x01":  # a nullable struct: int8 1 when present
            inner = _Reader(chunk[1:], flexible=True)
            session = inner.i32()
            protocols = []
            for _ in range(inner.array_length()):
                name = inner.required_string()
                protocols.append((name, inner.bytes_()))
                inner.tagged_fields()
            inner.tagged_fields()
            found = ClassicMetadata(session, tuple(protocols))
    return found


def _read_strings(r: _Reader) -> tuple[str, ...]:
    return tuple(r.required_string() for _ in range(r.array_length()))


def _read_member(r: _Reader) -> MemberMetadataValue:
    return MemberMetadataValue(
        instance_id=r.string(), rack_id=r.string(), client_id=r.string() or "",
        client_host=r.string() or "", subscribed_topics=_read_strings(r),
        subscribed_regex=r.string(), rebalance_timeout_ms=r.i32(),
        server_assignor=r.string())


def read_assignment(r: _Reader) -> dict[uuid.UUID, frozenset[int]]:
    out: dict[uuid.UUID, frozenset[int]] = {}
    for _ in range(r.array_length()):
        topic_id = uuid.UUID(bytes=r._take(16))
        out[topic_id] = frozenset(r.i32() for _ in range(r.array_length()))
        r.tagged_fields()  # AssignmentEpochs (KIP-1251, tag 0) is not used here
    return out

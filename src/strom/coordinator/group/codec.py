"""Keys and values of `__consumer_offsets` records, in Kafka's own encoding.

Kafka tools (and anyone reading the topic with Kafka's formatters) expect these exact
layouts, so they are kept byte-compatible. All integers big-endian; strings are int16
length + UTF-8; nullable strings use length -1; bytes are int32 length + data.

Keys (the version selects the record type):
    0 or 1  OffsetCommitKey      group, topic, partition int32
    2       GroupMetadataKey     group
    3-8     KIP-848 consumer group records: see `records_848`, which the loader asks first

Values:
    OffsetCommitValue v3         offset int64, leader_epoch int32, metadata string,
                                 commit_timestamp int64
    GroupMetadataValue v3        protocol_type string, generation int32,
                                 protocol nullable string, leader nullable string,
                                 current_state_timestamp int64, members array(int32) of
                                 [member_id, group_instance_id (nullable), client_id,
                                  client_host, rebalance_timeout int32,
                                  session_timeout int32, subscription bytes,
                                  assignment bytes]

A record with a null value is a tombstone: the offset or the group is gone.

Value version 4 of both values is Kafka's first "flexible" version (KIP-482: compact
strings, bytes and arrays with unsigned-varint lengths, and a tagged-field section after
each struct). Kafka does not write it yet, but it is a valid version, so it is read.

Decoders read bytes that may come from anywhere (an older broker's log, a damaged disk,
a client that wrote to the topic): they raise `CodecError` and nothing else, so a loader
can skip what it cannot read. A key version this codec does not know raises the subclass
`UnknownRecordType`, which the loader ignores with a warning as Kafka's
CoordinatorLoaderImpl does (newer record types, or a left-over from an aborted upgrade).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
GROUP_VALUE_VERSION = 3

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class CodecError(ValueError):
    """The bytes are not a `__consumer_offsets` key or value this codec can read."""


class UnknownRecordType(CodecError):
    """A key version (Kafka's record type) this codec does not know."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unknown __consumer_offsets record type (key version {version})")
        self.version = version


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int
    members: tuple[MemberValue, ...]


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def i16(self, v: int) -> None:
        self.parts.append(_I16.pack(v))

    def i32(self, v: int) -> None:
        self.parts.append(_I32.pack(v))

    def i64(self, v: int) -> None:
        self.parts.append(_I64.pack(v))

    def string(self, v: str | None) -> None:
        if v is None:
            self.i16(-1)
            return
        data = v.encode()
        self.i16(len(data))
        self.parts.append(data)

    def bytes_(self, v: bytes) -> None:
        self.i32(len(v))
        self.parts.append(v)

    def done(self) -> bytes:
        return b"".join(self.parts)


class _Reader:
    """Reads Kafka's primitive types; ``flexible`` switches to the KIP-482 compact forms."""

    def __init__(self, data: bytes, flexible: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.flexible = flexible

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CodecError("truncated __consumer_offsets record")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def i16(self) -> int:
        return int(_I16.unpack(self._take(2))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self._take(4))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self._take(8))[0])

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            byte = self._take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise CodecError("unsigned varint longer than 5 bytes")

    def _length(self, fixed: Callable[[], int]) -> int:
        """A length prefix; -1 means null. Compact lengths are stored plus one."""
        return self.uvarint() - 1 if self.flexible else fixed()

    def string(self) -> str | None:
        n = self._length(self.i16)
        if n < 0:
            return None
        try:
            return self._take(n).decode()
        except UnicodeDecodeError as exc:
            raise CodecError(f"invalid UTF-8 in string: {exc}") from exc

    def required_string(self) -> str:
        value = self.string()
        if value is None:
            raise CodecError("null where a string is required")
        return value

    def bytes_(self) -> bytes:
        n = self._length(self.i32)
        return b"" if n < 0 else self._take(n)

    def array_length(self) -> int:
        """Element count of an array; each element takes at least one byte."""
        n = self._length(self.i32)
        if n < 0 or n > len(self.data) - self.pos:
            raise CodecError(f"bad array length {n}")
        return n

    def tagged_fields(self) -> None:
        """Skip a flexible struct's tagged fields: none of them is known here."""
        if not self.flexible:
            return
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self._take(self.uvarint())


def encode_offset_key(key: OffsetKey) -> bytes:
    w = _Writer()
    w.i16(OFFSET_KEY_VERSION)
    w.string(key.group)
    w.string(key.topic)
    w.i32(key.partition)
    return w.done()


def encode_group_key(key: GroupKey) -> bytes:
    w = _Writer()
    w.i16(GROUP_KEY_VERSION)
    w.string(key.group)
    return w.done()


def decode_key(data: bytes) -> OffsetKey | GroupKey:
    r = _Reader(data)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.required_string(), r.required_string(), r.i32())
    if version == GROUP_KEY_VERSION:
        return GroupKey(r.required_string())
    raise UnknownRecordType(version)


def encode_offset_value(value: OffsetValue) -> bytes:
    w = _Writer()
    w.i16(OFFSET_VALUE_VERSION)
    w.i64(value.offset)
    w.i32(value.leader_epoch)
    w.string(value.metadata)
    w.i64(value.commit_timestamp)
    return w.done()


def decode_offset_value(data: bytes) -> OffsetValue:
    r = _Reader(data)
    version = r.i16()
    if not 0 <= version <= 4:
        raise CodecError(f"unknown offset value version {version}")
    r.flexible = version >= 4
    offset = r.i64()
    leader_epoch = r.i32() if version >= 3 else -1
    metadata = r.string() or ""
    commit_timestamp = r.i64()
    if version == 1:
        r.i64()  # expire timestamp: Kafka 2.1+ ignores it, so does Strom
    r.tagged_fields()
    return OffsetValue(offset, leader_epoch, metadata, commit_timestamp)


def encode_group_value(value: GroupValue) -> bytes:
    w = _Writer()
    w.i16(GROUP_VALUE_VERSION)
    w.string(value.protocol_type)
    w.i32(value.generation)
    w.string(value.protocol)
    w.string(value.leader)
    w.i64(value.current_state_timestamp)
    w.i32(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        w.string(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        w.i32(m.rebalance_timeout)
        w.i32(m.session_timeout)
        w.bytes_(m.subscription)
        w.bytes_(m.assignment)
    return w.done()


def decode_group_value(data: bytes) -> GroupValue:
    r = _Reader(data)
    version = r.i16()
    if not 0 <= version <= 4:
        raise CodecError(f"unknown group value version {version}")
    r.flexible = version >= 4
    protocol_type = r.string() or ""
    generation = r.i32()
    protocol = r.string()
    leader = r.string()
    state_ts = r.i64() if version >= 2 else -1
    members = tuple(_decode_member(r, version) for _ in range(r.array_length()))
    r.tagged_fields()
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, members)


def _decode_member(r: _Reader, version: int) -> MemberValue:
    member_id = r.required_string()
    instance = r.string() if version >= 3 else None
    client_id = r.string() or ""
    client_host = r.string() or ""
    rebalance = r.i32() if version >= 1 else -1
    session = r.i32()
    member = MemberValue(member_id, instance, client_id, client_host, rebalance, session,
                         r.bytes_(), r.bytes_())
    r.tagged_fields()
    return member

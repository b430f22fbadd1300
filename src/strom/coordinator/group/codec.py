"""Keys and values of `__consumer_offsets` records, in Kafka's own encoding.

Kafka tools (and anyone reading the topic with Kafka's formatters) expect these exact
layouts, so they are kept byte-compatible. All integers big-endian; strings are int16
length + UTF-8; nullable strings use length -1; bytes are int32 length + data.

Keys (the version selects the record type):
    0 or 1  OffsetCommitKey      group, topic, partition int32
    2       GroupMetadataKey     group

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
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
GROUP_VALUE_VERSION = 3

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class CodecError(ValueError):
    pass


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
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

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

    def string(self) -> str | None:
        n = self.i16()
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
        n = self.i32()
        return b"" if n < 0 else self._take(n)


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
    raise CodecError(f"unknown __consumer_offsets key version {version}")


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
    if version in (0, 1):  # offset, metadata, commit ts (and v1's expire ts)
        value = OffsetValue(r.i64(), -1, r.string() or "", r.i64())
        return value
    if version == 2:
        return OffsetValue(r.i64(), -1, r.string() or "", r.i64())
    if version in (3, 4):
        return OffsetValue(r.i64(), r.i32(), r.string() or "", r.i64())
    raise CodecError(f"unknown offset value version {version}")


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
    protocol_type = r.string() or ""
    generation = r.i32()
    protocol = r.string()
    leader = r.string()
    state_ts = r.i64() if version >= 2 else -1
    count = r.i32()
    if count < 0 or count > len(data):
        raise CodecError("bad member count")
    members = []
    for _ in range(count):
        member_id = r.required_string()
        instance = r.string() if version >= 3 else None
        client_id = r.string() or ""
        client_host = r.string() or ""
        rebalance = r.i32() if version >= 1 else -1
        session = r.i32()
        members.append(MemberValue(member_id, instance, client_id, client_host, rebalance,
                                   session, r.bytes_(), r.bytes_()))
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, tuple(members))

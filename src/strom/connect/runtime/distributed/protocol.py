"""The Connect group protocol's member metadata and assignments, in Kafka's byte formats.

Workers of one Connect cluster join a group (protocol type `connect`) and offer the
protocols `sessioned` (v2), `compatible` (v1) and `default` (v0, eager). Each member's
metadata is its REST URL and the config-topic offset it has read; with v1/v2 also its
current allocation (so the leader can compute incremental cooperative assignments). The
leader answers each member with an assignment: error, leader id and URL, config offset,
the connectors and tasks assigned (a connector is the task id -1 in its connector's list),
and from v1 on the revoked ones and a scheduled delay.

Layouts (big-endian; string = int16 length + UTF-8; array = int32 count; nullable bytes =
int32 length or -1), following Kafka's ConnectProtocol and IncrementalCooperativeConnectProtocol:

    metadata v0:    version:int16 url:string config_offset:int64
    metadata v1/v2: version:int16 url:string config_offset:int64 allocation:nullable bytes
                    (allocation = an assignment in the same version, or null)
    assignment v0:  version:int16 error:int16 leader:string leader_url:string config_offset:int64
                    assignment:[connector:string tasks:[int32]]
    assignment v1+: ... as v0, then revoked:[connector:string tasks:[int32]] delay:int32

`tests/connect/test_connect_interop.py` checks both directions against Kafka's Java code.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

CONNECTOR_TASK = -1
NO_ERROR = 0
CONFIG_MISMATCH = 1
PROTOCOL_TYPE = "connect"


class Compatibility(Enum):
    """`connect.protocol` values and the group protocol each offers, newest first."""

    EAGER = ("default", 0)
    COMPATIBLE = ("compatible", 1)
    SESSIONED = ("sessioned", 2)

    @property
    def protocol(self) -> str:
        return self.value[0]

    @property
    def version(self) -> int:
        return self.value[1]

    def offered(self) -> list[Compatibility]:
        """The protocols a worker configured with this offers in JoinGroup, in preference order."""
        return [c for c in (Compatibility.SESSIONED, Compatibility.COMPATIBLE, Compatibility.EAGER)
                if c.version <= self.version]


class ProtocolError(ValueError):
    """Bytes that are not valid Connect protocol metadata or assignment."""


@dataclass(frozen=True)
class Assignment:
    """What the leader gives a member; `tasks` as (connector, task number)."""

    version: int
    error: int
    leader: str
    leader_url: str
    config_offset: int
    connectors: tuple[str, ...] = ()
    tasks: tuple[tuple[str, int], ...] = ()
    revoked_connectors: tuple[str, ...] = ()
    revoked_tasks: tuple[tuple[str, int], ...] = ()
    delay: int = 0


@dataclass(frozen=True)
class WorkerState:
    """A member's JoinGroup metadata."""

    version: int
    url: str
    config_offset: int
    allocation: Assignment | None = field(default=None)


# --- writing --------------------------------------------------------------------------------


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">h", len(raw)) + raw


def _by_connector(connectors: Iterable[str], tasks: Iterable[tuple[str, int]]) -> bytes:
    grouped: dict[str, list[int]] = {}
    for name in connectors:
        grouped.setdefault(name, []).append(CONNECTOR_TASK)
    for name, number in tasks:
        grouped.setdefault(name, []).append(number)
    parts = [struct.pack(">i", len(grouped))]
    for name, numbers in grouped.items():
        parts.append(_string(name) + struct.pack(f">i{len(numbers)}i", len(numbers), *numbers))
    return b"".join(parts)


def encode_assignment(assignment: Assignment) -> bytes:
    body = (struct.pack(">hh", assignment.version, assignment.error) + _string(assignment.leader)
            + _string(assignment.leader_url) + struct.pack(">q", assignment.config_offset)
            + _by_connector(assignment.connectors, assignment.tasks))
    if assignment.version >= 1:
        body += _by_connector(assignment.revoked_connectors, assignment.revoked_tasks)
        body += struct.pack(">i", assignment.delay)
    return body


def encode_metadata(state: WorkerState) -> bytes:
    body = struct.pack(">h", state.version) + _string(state.url) + struct.pack(">q", state.config_offset)
    if state.version >= 1:
        if state.allocation is None:
            body += struct.pack(">i", -1)
        else:
            allocation = encode_assignment(state.allocation)
            body += struct.pack(">i", len(allocation)) + allocation
    return body


# --- reading --------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = memoryview(data), 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProtocolError("truncated Connect protocol data")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def string(self) -> str:
        (length,) = self.take(">h")
        if length < 0 or self.pos + length > len(self.data):
            raise ProtocolError("bad string length")
        text = bytes(self.data[self.pos:self.pos + length]).decode("utf-8")
        self.pos += length
        return text

    def nullable_bytes(self) -> bytes | None:
        (length,) = self.take(">i")
        if length < 0:
            return None
        if self.pos + length > len(self.data):
            raise ProtocolError("bad bytes length")
        raw = bytes(self.data[self.pos:self.pos + length])
        self.pos += length
        return raw

    def by_connector(self) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
        connectors: list[str] = []
        tasks: list[tuple[str, int]] = []
        (count,) = self.take(">i")
        for _ in range(count):
            name = self.string()
            (n,) = self.take(">i")
            for number in self.take(f">{n}i") if n > 0 else ():
                if number == CONNECTOR_TASK:
                    connectors.append(name)
                else:
                    tasks.append((name, number))
        return tuple(connectors), tuple(tasks)


def decode_assignment(data: bytes) -> Assignment:
    reader = _Reader(data)
    version, error = reader.take(">hh")
    leader, leader_url = reader.string(), reader.string()
    (offset,) = reader.take(">q")
    connectors, tasks = reader.by_connector()
    if version < 1:
        return Assignment(version, error, leader, leader_url, offset, connectors, tasks)
    revoked_connectors, revoked_tasks = reader.by_connector()
    (delay,) = reader.take(">i")
    return Assignment(version, error, leader, leader_url, offset, connectors, tasks,
                      revoked_connectors, revoked_tasks, delay)


def decode_metadata(data: bytes) -> WorkerState:
    reader = _Reader(data)
    (version,) = reader.take(">h")
    if version < 0:
        raise ProtocolError(f"unknown Connect protocol version {version}")
    url = reader.string()
    (offset,) = reader.take(">q")
    if version < 1:
        return WorkerState(version, url, offset)
    raw = reader.nullable_bytes() if reader.pos < len(reader.data) else None
    return WorkerState(version, url, offset, None if raw is None else decode_assignment(raw))

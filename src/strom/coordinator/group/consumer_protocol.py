"""The classic consumer's embedded protocol (ConsumerProtocolSubscription/Assignment), as
far as a mixed group needs it (KIP-848: classic members inside a consumer group).

A classic consumer's JoinGroup carries, per assignor it offers, a subscription: version
int16, topics (array of int16 strings), user data (int32-length bytes, -1 null); v1 adds
the partitions it owns (topic, int32 partitions), v2 its generation, v3 its rack. Its
SyncGroup answer is an assignment: version int16, partitions by topic, user data. The
coordinator reads subscriptions to learn a classic member's topics and what it still
owns, reads a classic group's assignments when it upgrades the group, and writes each
classic member's assignment in version 1, as Kafka 4.4 answers.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

ASSIGNMENT_VERSION = 1  # what Kafka 4.4 writes for a classic member of a consumer group


@dataclass(frozen=True)
class Subscription:
    topics: tuple[str, ...]
    owned: dict[str, frozenset[int]] | None = field(default=None)  # None: v0, not said
    rack: str | None = None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        if self.pos + n > len(self.data):
            raise struct.error("truncated string")
        value = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return value

    def skip_bytes(self) -> None:
        n = self.take(">i")
        self.pos += max(n, 0)

    def partitions(self) -> dict[str, frozenset[int]]:
        out: dict[str, frozenset[int]] = {}
        for _ in range(max(self.take(">i"), 0)):
            topic = self.string() or ""
            out[topic] = frozenset(self.take(">i") for _ in range(max(self.take(">i"), 0)))
        return out

    def done(self) -> bool:
        return self.pos >= len(self.data)


def read_subscription(metadata: bytes) -> Subscription | None:
    """A subscription of any version (None: not one)."""
    try:
        r = _Reader(metadata)
        version = r.take(">h")
        topics = tuple(r.string() or "" for _ in range(max(r.take(">i"), 0)))
        r.skip_bytes()
        if version < 1 or r.done():
            return Subscription(topics)
        owned = r.partitions()
        if version >= 2 and not r.done():
            r.take(">i")
        rack = r.string() if version >= 3 and not r.done() else None
        return Subscription(topics, owned, rack)
    except (struct.error, UnicodeDecodeError):
        return None


def read_assignment(data: bytes) -> dict[str, frozenset[int]] | None:
    """The partitions of an assignment (None: not one; empty bytes: nothing assigned)."""
    if not data:
        return {}
    try:
        r = _Reader(data)
        r.take(">h")
        return r.partitions()
    except (struct.error, UnicodeDecodeError):
        return None


def encode_assignment(partitions: Mapping[str, frozenset[int]]) -> bytes:
    """An assignment in version 1 with no user data."""
    out = [struct.pack(">hi", ASSIGNMENT_VERSION, len(partitions))]
    for topic in sorted(partitions):
        name = topic.encode()
        parts = sorted(partitions[topic])
        out.append(struct.pack(">h", len(name)) + name + struct.pack(">i", len(parts)))
        out.append(b"".join(struct.pack(">i", p) for p in parts))
    out.append(struct.pack(">i", -1))
    return b"".join(out)

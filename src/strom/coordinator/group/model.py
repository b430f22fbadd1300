"""Group and member state of the classic rebalance protocol.

States (as Kafka names them, and as DescribeGroups/ListGroups report them)::

    Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
      ▲                    ▲       │                                    │
      │                    │       └──no members left──▶ Empty          │ leader's SyncGroup
      │                    └──join, leave, expiry, new protocols────── Stable ◀┘
      └──last member leaves or expires──────────────────────────────────┘
    Dead: deleted (DeleteGroups, or offsets expired on an empty group).

A generation is one completed rebalance; every member of a generation was told its
number and must present it on SyncGroup, Heartbeat and OffsetCommit.

The model is plain data: no futures, no timers, no clock. A member that waits for a
JoinGroup or SyncGroup answer holds the *token* of that request; the runtime turns
tokens into futures (see `strom.coordinator.runtime`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from kio.schema.errors import ErrorCode


class GroupState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass
class JoinResult:
    error: ErrorCode = ErrorCode.none
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    member_id: str = ""
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass
class SyncResult:
    error: ErrorCode = ErrorCode.none
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    join_waiter: int | None = None  # token of the JoinGroup request owed an answer
    sync_waiter: int | None = None  # token of the SyncGroup request owed an answer
    is_new: bool = False

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata_for(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    @property
    def awaiting_join(self) -> bool:
        return self.join_waiter is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_waiter is not None


@dataclass
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


@dataclass
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending_members: set[str] = field(default_factory=set)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    offsets: dict[tuple[str, int], CommittedOffset] = field(default_factory=dict)
    state_timestamp: int = -1
    initial_delay_deadline: float | None = None  # monotonic seconds (the timer's clock)

    def is_(self, *states: GroupState) -> bool:
        return self.state in states

    def transition(self, state: GroupState, now_ms: int) -> None:
        self.state = state
        self.state_timestamp = now_ms

    # --- membership changes (live operations and replay both go through these) --------

    def add(self, member: Member) -> None:
        self.members[member.member_id] = member
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> Member | None:
        """Drop a member; a departed leader is succeeded by the oldest remaining member."""
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        instance = member.group_instance_id
        if instance is not None and self.static_members.get(instance) == member_id:
            del self.static_members[instance]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def replace_static(self, old: Member, new: Member) -> None:
        """A static member's new incarnation takes the old one's place, leadership
        included (the instance id is the same; the member id is new)."""
        self.members.pop(old.member_id, None)
        self.members[new.member_id] = new
        if new.group_instance_id is not None:
            self.static_members[new.group_instance_id] = new.member_id
        if self.leader_id == old.member_id:
            self.leader_id = new.member_id

    def is_vacant(self) -> bool:
        """Nothing about this group was ever written: no generation, no offsets."""
        return (self.is_(GroupState.EMPTY) and not self.members and self.generation_id == 0
                and self.protocol_type is None and not self.offsets)

    def supports(self, protocol_type: str, names: list[str]) -> bool:
        """A joiner must share the protocol type and at least one protocol with everyone."""
        if self.is_(GroupState.EMPTY) and not self.members:
            return bool(protocol_type) and bool(names)
        if self.protocol_type is not None and protocol_type != self.protocol_type:
            return False
        candidates = set(names)
        for member in self.members.values():
            candidates &= set(member.protocol_names())
        return bool(candidates)

    def select_protocol(self) -> str:
        """Each member votes for its most preferred protocol that all members support."""
        common = None
        for member in self.members.values():
            names = set(member.protocol_names())
            common = names if common is None else common & names
        assert common, "select_protocol needs a common protocol"
        votes: Counter[str] = Counter()
        for member in self.members.values():
            votes[next(n for n in member.protocol_names() if n in common)] += 1
        return max(sorted(votes), key=lambda name: votes[name])

    def all_joined(self) -> bool:
        return all(m.awaiting_join for m in self.members.values()) and not self.pending_members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def subscribed_topics(self) -> set[str] | None:
        """Topics the consumer members subscribe to, or None if they cannot be known."""
        if self.protocol_type != "consumer" or not self.protocol_name:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = parse_subscription(member.metadata_for(self.protocol_name))
            if parsed is None:
                return None
            topics |= parsed
        return topics


def parse_subscription(metadata: bytes) -> set[str] | None:
    """Topics of a ConsumerProtocolSubscription (version int16, topics array of strings)."""
    import struct

    try:
        pos = 2
        (count,) = struct.unpack_from(">i", metadata, pos)
        pos += 4
        topics = set()
        for _ in range(max(count, 0)):
            (length,) = struct.unpack_from(">h", metadata, pos)
            pos += 2
            topics.add(metadata[pos : pos + length].decode())
            pos += length
        return topics
    except (struct.error, UnicodeDecodeError):
        return None

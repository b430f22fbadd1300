"""`StreamsMembership`: a stream thread's membership in the group `application.id`.

librdkafka (confluent-kafka) runs only its own assignors, which know nothing of tasks,
standbys or lags, so a stream thread speaks the group protocol itself (Connect's
`GroupMember`: JoinGroup, SyncGroup, Heartbeat, LeaveGroup over the Kafka protocol) as a
member of protocol type `consumer` with the protocol `stream`, Kafka Streams' name. The
leader runs `assignor.assign`. Its consumer only fetches: partitions come and go with
`incremental_assign`/`incremental_unassign`, never a subscription.

Bytes: the subscription and the assignment are the consumer protocol's (version 0: topics
or topic-partitions, then userdata), so `DescribeGroups` (`strom group describe`,
`kafka-consumer-groups.sh`, interactive queries) shows each member's partitions. The
userdata is Strom's own JSON, not Java's SubscriptionInfo/AssignmentInfo bytes (a group
mixing Strom and Java instances is not supported):

- subscription: `{"version": 1, "process_id", "endpoint", "active": [task ids],
  "standby": [...], "offset_sums": {task id: changelog offset sum, -2 for a running
  active}}` (what Java's SubscriptionInfo v7+ carries);
- assignment: `{"version": 1, "active": [...], "standby": [...], "probe_at_ms": ms}`.

Offsets are committed with this membership's generation and member id (OffsetCommit
v8, or under exactly-once TxnOffsetCommit through the producer, handed
`group_metadata()`), so a member fenced out of the group cannot commit: Kafka's
generation check turns a zombie's commit into ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID.
A heartbeat thread keeps the session; when the coordinator says a rebalance began it
raises `rejoin_needed` for the stream thread to act on between batches.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from strom.client.group_member import COORDINATOR_MOVED, GroupMember, JoinResult
from strom.client.security import ClientSecurity
from strom.protocol.api_keys import ApiKey
from strom.streams.errors import StreamsError
from strom.streams.runtime.assignor import MemberAssignment, MemberInfo

log = logging.getLogger(__name__)

PROTOCOL = "stream"
OFFSET_COMMIT_V = 8
COMMIT_ATTEMPTS = 50  # coordinator moves or connection drops: ~10 s of retries
#: commit errors that mean "this member's tasks may have moved" (Kafka's TaskMigratedException)
MIGRATED = {ErrorCode.illegal_generation, ErrorCode.unknown_member_id,
            ErrorCode.fenced_instance_id}


class TaskMigrated(StreamsError):
    """The group moved on without this member: its tasks may run elsewhere now."""


@dataclass
class Joined:
    generation: int
    member_id: str
    assignment: MemberAssignment
    partitions: list[tuple[str, int]]


# --- the consumer protocol's bytes ------------------------------------------------------

def encode_subscription(topics: Sequence[str], info: MemberInfo) -> bytes:
    userdata = json.dumps({"version": 1, "process_id": info.process_id,
                           "endpoint": info.endpoint, "active": sorted(info.active),
                           "standby": sorted(info.standby),
                           "offset_sums": info.offset_sums}).encode()
    out = [struct.pack(">hi", 0, len(topics))]
    out.extend(_string(t) for t in topics)
    out.append(struct.pack(">i", len(userdata)) + userdata)
    return b"".join(out)


def decode_subscription(member_id: str, data: bytes) -> MemberInfo:
    pos = 2
    (count,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(count):
        (size,) = struct.unpack_from(">h", data, pos)
        pos += 2 + size
    doc = json.loads(_bytes_at(data, pos) or b"{}")
    return MemberInfo(member_id, doc.get("process_id", member_id), doc.get("endpoint"),
                      set(doc.get("active", ())), set(doc.get("standby", ())),
                      {k: int(v) for k, v in doc.get("offset_sums", {}).items()})


def encode_assignment(partitions: Sequence[tuple[str, int]], assignment: MemberAssignment
                      ) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        by_topic.setdefault(topic, []).append(partition)
    out = [struct.pack(">hi", 0, len(by_topic))]
    for topic, numbers in by_topic.items():
        out.append(_string(topic) + struct.pack(f">i{len(numbers)}i", len(numbers), *numbers))
    userdata = json.dumps({"version": 1, "active": assignment.active,
                           "standby": assignment.standby,
                           "probe_at_ms": assignment.probe_at_ms}).encode()
    out.append(struct.pack(">i", len(userdata)) + userdata)
    return b"".join(out)


def decode_assignment(data: bytes) -> tuple[list[tuple[str, int]], MemberAssignment]:
    if not data:  # no assignment (the group has just formed, or an empty leader plan)
        return [], MemberAssignment()
    pos = 2
    (count,) = struct.unpack_from(">i", data, pos)
    pos += 4
    partitions: list[tuple[str, int]] = []
    for _ in range(count):
        (size,) = struct.unpack_from(">h", data, pos)
        topic = data[pos + 2:pos + 2 + size].decode()
        pos += 2 + size
        (n,) = struct.unpack_from(">i", data, pos)
        partitions.extend((topic, p) for p in struct.unpack_from(f">{n}i", data, pos + 4))
        pos += 4 + 4 * n
    doc = json.loads(_bytes_at(data, pos) or b"{}")
    return partitions, MemberAssignment(list(doc.get("active", ())), list(doc.get("standby", ())),
                                        int(doc.get("probe_at_ms", 0)))


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _bytes_at(data: bytes, pos: int) -> bytes:
    if pos + 4 > len(data):
        return b""
    (size,) = struct.unpack_from(">i", data, pos)
    return b"" if size < 0 else data[pos + 4:pos + 4 + size]


# --- membership -------------------------------------------------------------------------

Leader = Callable[[list[MemberInfo]], dict[str, tuple[list[tuple[str, int]], MemberAssignment]]]


class StreamsMembership:
    def __init__(self, bootstrap_servers: str, group_id: str, client_id: str,
                 session_timeout_ms: int, heartbeat_interval_ms: int,
                 rebalance_timeout_ms: int, request_timeout_s: float,
                 security: ClientSecurity | None = None) -> None:
        self.group_id = group_id
        self.member = GroupMember(bootstrap_servers, group_id, protocol_type="consumer",
                                  session_timeout_ms=session_timeout_ms,
                                  rebalance_timeout_ms=rebalance_timeout_ms,
                                  client_id=client_id, request_timeout_s=request_timeout_s,
                                  security=security)
        self.rejoin_needed = threading.Event()
        self._interval = heartbeat_interval_ms / 1000
        self._closed = threading.Event()
        self._heartbeats: threading.Thread | None = None

    @property
    def generation(self) -> int:
        return self.member.generation

    @property
    def member_id(self) -> str:
        return self.member.member_id

    def join(self, topics: Sequence[str], info: MemberInfo, leader: Leader) -> Joined:
        """Join (or rejoin) and return this member's assignment."""
        self.rejoin_needed.clear()
        subscription = encode_subscription(topics, info)

        def assign(protocol: str, members: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
            plans = leader([decode_subscription(mid, data) for mid, data in members])
            return {mid: encode_assignment(parts, a) for mid, (parts, a) in plans.items()}

        result: JoinResult = self.member.join([(PROTOCOL, subscription)], assign)
        partitions, assignment = decode_assignment(result.assignment)
        if self._heartbeats is None:
            self._heartbeats = threading.Thread(target=self._heartbeat_loop, daemon=True,
                                                name=f"{self.member.client_id}-heartbeat")
            self._heartbeats.start()
        return Joined(result.generation, result.member_id, assignment, partitions)

    def _heartbeat_loop(self) -> None:
        while not self._closed.wait(self._interval):
            if self.rejoin_needed.is_set() or self.member.generation < 0:
                continue
            try:
                stable = self.member.heartbeat()
            except Exception as exc:  # noqa: BLE001 - a heartbeat must not kill the thread
                log.warning("heartbeat of %s: %s", self.group_id, exc)
                stable = False
            if not stable:
                log.info("group %s is rebalancing: this member rejoins", self.group_id)
                self.rejoin_needed.set()

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit with this generation; TaskMigrated if the group moved on without us.
        While the group completes a rebalance nothing is committed (a later commit
        carries the same offsets, or further ones)."""
        topics: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            topics.setdefault(topic, []).append({"partition_index": partition,
                                                 "committed_offset": offset,
                                                 "committed_leader_epoch": -1,
                                                 "committed_metadata": ""})
        errors = self._commit_once(topics)
        for _ in range(COMMIT_ATTEMPTS):
            if not errors & COORDINATOR_MOVED:
                break
            self.member._lost_coordinator()
            time.sleep(0.2)
            errors = self._commit_once(topics)
        if errors & MIGRATED:
            self.rejoin_needed.set()
            raise TaskMigrated(f"offset commit refused: {sorted(e.name for e in errors)}")
        if ErrorCode.rebalance_in_progress in errors:  # the next commit carries them
            self.rejoin_needed.set()
            log.info("offsets not committed during a rebalance; they will be after it")
            return
        if errors:
            raise StreamsError(f"offset commit failed: {sorted(e.name for e in errors)}")

    def _commit_once(self, topics: dict[str, list[dict[str, Any]]]) -> set[ErrorCode]:
        try:
            answer = self.member._call(
                ApiKey.OFFSET_COMMIT, OFFSET_COMMIT_V, group_id=self.group_id,
                generation_id_or_member_epoch=self.member.generation,
                member_id=self.member.member_id, group_instance_id=None,
                topics=[{"name": t, "partitions": ps} for t, ps in topics.items()])
        except (OSError, ConnectionError):
            return {ErrorCode.coordinator_not_available}
        return {p.error_code for t in answer.topics for p in t.partitions} - {ErrorCode.none}

    def group_metadata(self) -> bytes:
        """librdkafka's serialized ConsumerGroupMetadata ("CGMDv2:", generation in the host
        order, group id, member id, no group instance id) for TxnOffsetCommit."""
        return (b"CGMDv2:" + struct.pack("=i", self.member.generation)
                + self.group_id.encode() + b"\x00" + self.member.member_id.encode() + b"\x00\x01")

    def close(self, leave: bool = True) -> None:
        self._closed.set()
        if leave:
            self.member.leave()
        self.member.close()
        if self._heartbeats is not None:
            self._heartbeats.join(5)

"""A share group (KIP-932) as `strom group describe` shows it, over the Kafka protocol.

librdkafka's AdminClient cannot describe share groups, so this asks the group's
coordinator directly: FindCoordinator (key type GROUP), ShareGroupDescribe (77) for the
members and their assignments, and DescribeShareGroupOffsets v1 (90) for each
share-partition's start offset and lag. A share group's lag is Kafka's (KIP-1226):
the records from the start offset to the high watermark not yet acknowledged or
archived, i.e. those still to deliver or in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strom.client.protocol_admin import ProtocolAdmin, client_error

FIND_COORDINATOR = 10
SHARE_GROUP_DESCRIBE = 77
DESCRIBE_SHARE_GROUP_OFFSETS = 90
GROUP_KEY = 0


@dataclass(frozen=True)
class ShareMemberView:
    member_id: str
    client_id: str
    host: str
    member_epoch: int
    assignment: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SharePartitionView:
    topic: str
    partition: int
    start_offset: int | None  # None: the share-partition was never initialized
    lag: int | None


@dataclass(frozen=True)
class ShareGroupView:
    group_id: str
    state: str
    group_epoch: int
    assignor: str
    coordinator: tuple[int, str, int]
    members: list[ShareMemberView] = field(default_factory=list)
    partitions: list[SharePartitionView] = field(default_factory=list)

    @property
    def total_lag(self) -> int:
        return sum(p.lag or 0 for p in self.partitions)


def _coordinator(admin: ProtocolAdmin, group_id: str) -> tuple[int, str, int]:
    body = admin.request(FIND_COORDINATOR, 4, {"key_type": GROUP_KEY,
                                                "coordinator_keys": [group_id]})
    answer = body.coordinators[0]
    if int(answer.error_code):
        raise client_error(int(answer.error_code), answer.error_message, f"group {group_id!r}")
    return int(answer.node_id), answer.host, int(answer.port)


def _members(group: object) -> list[ShareMemberView]:
    return [ShareMemberView(
        m.member_id, m.client_id, m.client_host, int(m.member_epoch),
        tuple(sorted((tp.topic_name, int(p)) for tp in m.assignment.topic_partitions
                     for p in tp.partitions)))
        for m in group.members]  # type: ignore[attr-defined]


def _partitions(body: object, group_id: str) -> list[SharePartitionView]:
    group = body.groups[0]  # type: ignore[attr-defined]
    if int(group.error_code):
        raise client_error(int(group.error_code), group.error_message, f"group {group_id!r}")
    rows = []
    for topic in group.topics:
        for p in topic.partitions:
            start = int(p.start_offset)
            rows.append(SharePartitionView(topic.topic_name, int(p.partition_index),
                                           start if start >= 0 else None,
                                           int(p.lag) if int(p.lag) >= 0 else None))
    return sorted(rows, key=lambda r: (r.topic, r.partition))


def describe_share_group(admin: ProtocolAdmin, group_id: str) -> ShareGroupView:
    """Members, assignments, start offsets and lag of one share group."""
    node_id, host, port = _coordinator(admin, group_id)
    with ProtocolAdmin(f"{host}:{port}", timeout=admin.timeout, client_id=admin.client_id,
                       security=admin.security) as one:
        described = one.request(SHARE_GROUP_DESCRIBE, 1, {
            "group_ids": [group_id], "include_authorized_operations": False}).groups[0]
        if int(described.error_code):
            raise client_error(int(described.error_code), described.error_message,
                               f"group {group_id!r}")
        offsets = one.request(DESCRIBE_SHARE_GROUP_OFFSETS, 1, {
            "groups": [{"group_id": group_id, "topics": None}]})
    return ShareGroupView(group_id, described.group_state, int(described.group_epoch),
                          described.assignor_name, (node_id, host, port),
                          _members(described), _partitions(offsets, group_id))

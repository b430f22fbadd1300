"""The records of `__consumer_offsets` as the group shard writes and replays them.

A record is a decoded key and value (None: a tombstone). Operations build them from the
model, `serialize` turns them into the bytes `codec` defines, and the loader decodes
the log back into the same types, so `GroupCoordinatorShard.replay` sees identical
objects whether a record was just written or read at load.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.coordinator.group import codec, records_848
from strom.coordinator.group.model import CommittedOffset, Group
from strom.coordinator.share import records as share_records

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class OffsetRecord:
    """A committed offset (OffsetCommitKey/Value), or its removal."""

    key: codec.OffsetKey
    value: codec.OffsetValue | None
    producer_id: int = -1  # >= 0: written by TxnOffsetCommit, pending until the marker


@dataclass(frozen=True, slots=True)
class TxnMarker:
    """A transaction marker the partition leader wrote into this partition: never
    serialized by the shard, only folded (at load and when `LocalMarkerWriter` reports it)."""

    producer_id: int
    committed: bool


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A classic group's metadata as of its last generation (GroupMetadataKey/Value),
    or the group's removal."""

    key: codec.GroupKey
    value: codec.GroupValue | None


Record = (OffsetRecord | GroupRecord | TxnMarker | records_848.ConsumerRecord
          | share_records.ShareRecord)


def serialize(record: Record) -> tuple[bytes, bytes | None]:
    """Key and value bytes in Kafka's own encoding."""
    if isinstance(record, records_848.ConsumerRecord):
        return records_848.serialize(record)
    if isinstance(record, share_records.ShareRecord):
        return share_records.serialize(record)
    if isinstance(record, OffsetRecord):
        value = None if record.value is None else codec.encode_offset_value(record.value)
        return codec.encode_offset_key(record.key), value
    assert isinstance(record, GroupRecord), "markers are written by the partition leader"
    value = None if record.value is None else codec.encode_group_value(record.value)
    return codec.encode_group_key(record.key), value


def offset_commit(group_id: str, tp: TopicPartition, offset: CommittedOffset,
                  producer_id: int = -1) -> OffsetRecord:
    return OffsetRecord(codec.OffsetKey(group_id, tp[0], tp[1]),
                        codec.OffsetValue(offset.offset, offset.leader_epoch, offset.metadata,
                                          offset.commit_timestamp), producer_id)


def offset_tombstone(group_id: str, tp: TopicPartition) -> OffsetRecord:
    return OffsetRecord(codec.OffsetKey(group_id, tp[0], tp[1]), None)


def group_tombstone(group_id: str) -> GroupRecord:
    return GroupRecord(codec.GroupKey(group_id), None)


def group_metadata(group: Group) -> GroupRecord:
    """The group as it stands: generation, protocol, leader and each member with the
    selected protocol's metadata and its assignment (as Kafka writes it)."""
    protocol = group.protocol_name or ""
    value = codec.GroupValue(
        protocol_type=group.protocol_type or "",
        generation=group.generation_id,
        protocol=group.protocol_name,
        leader=group.leader_id,
        current_state_timestamp=group.state_timestamp,
        members=tuple(
            codec.MemberValue(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                              m.rebalance_timeout_ms, m.session_timeout_ms,
                              m.metadata_for(protocol), m.assignment)
            for m in group.members.values()
        ),
    )
    return GroupRecord(codec.GroupKey(group.group_id), value)

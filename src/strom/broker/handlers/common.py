"""Small helpers shared by handlers: leader-epoch checks, lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from kio.schema.errors import ErrorCode

from strom.protocol.schema import uuid_or_none

if TYPE_CHECKING:
    from strom.broker.context import RequestContext
    from strom.broker.replication.partition import Partition
    from strom.cluster.image import TopicInfo

NONE = ErrorCode.none
UNKNOWN_TOPIC = ErrorCode.unknown_topic_or_partition


def check_leader_epoch(requested: int, current: int) -> ErrorCode:
    """KIP-320: a client ahead of us knows of a newer leader; one behind is fenced."""
    if requested == -1 or requested == current:
        return NONE
    if requested > current:
        return ErrorCode.unknown_leader_epoch
    return ErrorCode.fenced_leader_epoch


def missing_partition_error(ctx: RequestContext, topic: str, index: int) -> ErrorCode:
    """No partition here: KAFKA_STORAGE_ERROR when it is assigned here but its log could
    not be opened (offline, as Kafka answers for a partition on an offline log dir)."""
    if ctx.partitions.offline_reason(topic, index) is not None:
        return ErrorCode.kafka_storage_error
    return UNKNOWN_TOPIC


def leader_partition(ctx: RequestContext, topic: str, index: int, current_leader_epoch: int
                     ) -> tuple[Partition | None, ErrorCode]:
    """The partition if this broker leads it at the epoch the client knows, else the error."""
    partition = ctx.partitions.get(topic, index)
    if partition is None:
        return None, missing_partition_error(ctx, topic, index)
    if not partition.is_leader:
        return None, ErrorCode.not_leader_or_follower
    code = check_leader_epoch(current_leader_epoch, partition.leader_epoch)
    return (partition, NONE) if code == NONE else (None, code)


def resolve_topic(
    ctx: RequestContext, name: str | None, topic_id: UUID | None
) -> tuple[TopicInfo | None, ErrorCode]:
    """Find a topic by name, or by id for versions that address topics by id (KIP-516)."""
    image = ctx.metadata.image()
    tid = uuid_or_none(topic_id)
    if tid is not None:
        topic = image.topic_by_id(tid)
        return topic, NONE if topic else ErrorCode.unknown_topic_id
    topic = image.topics.get(name or "")
    return topic, NONE if topic else UNKNOWN_TOPIC

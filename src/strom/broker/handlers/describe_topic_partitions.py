"""DescribeTopicPartitions (75): topics and their partitions, paginated (KIP-966).

Kafka 3.8+ clients (`Admin.describeTopics`, hence `kafka-topics.sh --describe`) use it
instead of Metadata when the broker advertises it, so a topic with many partitions is
described in pages rather than in one huge answer. Kafka's rules, kept here:

- no topics in the request means every topic; otherwise the named ones (duplicates once);
  either way only names at or after the cursor's topic, in name order;
- a cursor naming a topic missing from a non-empty list, or a negative partition index,
  refuses the whole request (INVALID_REQUEST for every topic asked for);
- at most min(`max.request.partition.size.limit`, response_partition_limit) partitions
  are answered, and at least one (a limit of 0 or below counts as 1, as Kafka 4.4 does);
  when the limit stops inside a topic, `next_cursor` names the first partition left
  out; when it is reached at a topic boundary and topics remain, it names the next
  topic at partition 0;
- unknown topics named in the request are answered with UNKNOWN_TOPIC_OR_PARTITION
  (INVALID_TOPIC_EXCEPTION for an illegal name) and cost nothing from the limit; with
  no topic list nothing unknown can appear;
- eligible leader replicas and the last known ELR are empty lists: Strom has no ELR yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.handlers.metadata import partition_rows
from strom.broker.network import dispatch
from strom.broker.topic_admin import INTERNAL_TOPICS
from strom.cluster.image import MetadataImage, TopicInfo
from strom.cluster.store import MetadataError, validate_topic_name
from strom.protocol.api_keys import ApiKey

ZERO_UUID = uuid.UUID(int=0)
LIMIT_CONFIG = "max.request.partition.size.limit"


@dataclass(frozen=True, slots=True)
class Page:
    """What one answer holds: topic entries and where the next page starts."""

    topics: list[dict[str, Any]]
    next_cursor: dict[str, Any] | None


class InvalidCursor(Exception):
    """The request's cursor cannot be honoured; Kafka refuses the whole request."""


def _names(request: Any, image: MetadataImage) -> list[str]:
    """The topic names to answer, in order, starting at the cursor's topic."""
    cursor = request.cursor
    start = cursor.topic_name if cursor is not None else ""
    if request.topics:
        names = {t.name for t in request.topics if t.name >= start}
        if cursor is not None and cursor.topic_name not in names:
            raise InvalidCursor("DescribeTopicPartitionsRequest topic list should contain the "
                                f"cursor topic: {cursor.topic_name}")
    else:
        names = {name for name in image.topics if name >= start}
    if cursor is not None and cursor.partition_index < 0:
        raise InvalidCursor("DescribeTopicPartitionsRequest cursor partition must be valid: "
                            f"{cursor.topic_name}-{cursor.partition_index}")
    return sorted(names)


def _unknown(name: str) -> dict[str, Any]:
    try:
        validate_topic_name(name)
        code = ErrorCode.unknown_topic_or_partition
    except MetadataError:
        code = ErrorCode.invalid_topic_exception
    return {"error_code": code, "name": name, "topic_id": ZERO_UUID,
            "is_internal": name in INTERNAL_TOPICS, "partitions": []}


def _partitions(ctx: RequestContext, topic: TopicInfo, live: Collection[int], first: int,
                count: int) -> list[dict[str, Any]]:
    """Partitions [first, first + count) of the topic, as Metadata reports them (a leader
    that is not live is -1; replicas of dead brokers or failed log dirs here are offline)."""
    wanted = range(first, first + count)
    offline_here = {i for i in wanted if _offline_here(ctx, topic.name, i)}
    return [
        {"error_code": NONE, "partition_index": row.partition_index,
         "leader_id": row.leader_id, "leader_epoch": row.leader_epoch,
         "replica_nodes": row.replica_nodes, "isr_nodes": row.isr_nodes,
         "eligible_leader_replicas": (), "last_known_elr": (),
         "offline_replicas": row.offline_replicas}
        for row in partition_rows(topic, live, ctx.broker_id, offline_here)
        if row.partition_index in wanted
    ]


def _offline_here(ctx: RequestContext, topic: str, index: int) -> bool:
    if not ctx.partitions.offline_dirs:
        return False
    partition = ctx.partitions.get(topic, index)
    return partition is not None and partition.log.offline is not None


def _page(ctx: RequestContext, names: list[str], cursor: Any, limit: int,
          all_topics: bool) -> Page:
    """Walk the topics in order until `limit` partitions are answered (Kafka's loop)."""
    image = ctx.metadata.image()
    remaining = limit
    out: list[dict[str, Any]] = []
    for name in names:
        if remaining <= 0:
            return Page(out, {"topic_name": name, "partition_index": 0})
        topic = image.topics.get(name)
        if topic is None:
            if not all_topics:
                out.append(_unknown(name))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        end = min(topic.partition_count, start + remaining)
        partitions = _partitions(ctx, topic, image.live_broker_ids, start, max(end - start, 0))
        out.append({"error_code": NONE, "name": name, "topic_id": topic.topic_id,
                    "is_internal": name in INTERNAL_TOPICS,
                    "partitions": partitions})
        if end < topic.partition_count:
            return Page(out, {"topic_name": name, "partition_index": end})
        remaining -= len(partitions)
    return Page(out, None)


@dispatch.handles(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, 0)
async def describe_topic_partitions(ctx: RequestContext, request: Any) -> Any:
    image = ctx.metadata.image()
    try:
        names = _names(request, image)
    except InvalidCursor:
        return ctx.respond(throttle_time=0, next_cursor=None, topics=[
            {"error_code": ErrorCode.invalid_request, "name": t.name, "topic_id": ZERO_UUID,
             "is_internal": False, "partitions": []} for t in request.topics])
    limit = max(min(ctx.config.get_int(LIMIT_CONFIG), int(request.response_partition_limit)), 1)
    page = _page(ctx, names, request.cursor, limit, not request.topics)
    return ctx.respond(throttle_time=0, topics=page.topics, next_cursor=page.next_cursor)

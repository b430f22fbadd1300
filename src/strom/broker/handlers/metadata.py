"""Metadata (3): brokers, controller, topics and partition leadership.

Unknown topics are created here when both the broker (`auto.create.topics.enable`) and
the request (`allow_auto_topic_creation`, implied before v4) allow it, as Kafka does;
otherwise they are answered with UNKNOWN_TOPIC_OR_PARTITION, which the Java tools expect.
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker import dispatch
from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE, error
from strom.broker.topic_admin import INTERNAL_TOPICS
from strom.cluster.image import MetadataImage, TopicInfo
from strom.cluster.store import MetadataError
from strom.protocol.schema import uuid_or_none

log = logging.getLogger(__name__)
AUTHORIZED_OPERATIONS_UNKNOWN = -(2**31)


def _topic_entry(topic: TopicInfo, image: MetadataImage) -> dict[str, Any]:
    partitions = []
    for p in sorted(topic.partitions.values(), key=lambda p: p.partition):
        live = p.leader in image.brokers
        partitions.append(
            {
                "error_code": NONE if live else ErrorCode.leader_not_available,
                "partition_index": p.partition,
                "leader_id": p.leader if live else -1,
                "leader_epoch": p.leader_epoch,
                "replica_nodes": list(p.replicas),
                "isr_nodes": list(p.isr),
                "offline_replicas": [r for r in p.replicas if r not in image.brokers],
            }
        )
    return {
        "error_code": NONE,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": topic.internal,
        "partitions": partitions,
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN,
    }


def _missing(name: str | None, topic_id: Any, code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": topic_id, "partitions": []}


def _lookup_or_create(ctx: RequestContext, name: str, auto_create: bool) -> dict[str, Any]:
    image = ctx.broker.store.image()
    topic = image.topics.get(name)
    if topic is not None:
        return _topic_entry(topic, image)
    if not auto_create or name in INTERNAL_TOPICS:
        return _missing(name, None, ErrorCode.unknown_topic_or_partition)
    try:
        topic = ctx.broker.admin.auto_create(name)
    except MetadataError as exc:
        if exc.error == "topic_already_exists":
            return _lookup_or_create(ctx, name, False)
        log.info("auto-creation of %r refused: %s", name, exc)
        return _missing(name, None, error(exc.error))
    return _topic_entry(topic, ctx.broker.store.image())


@dispatch.handles(3, 0, 13)
async def handle(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    image = broker.store.image()
    auto_create = broker.config.get_bool("auto.create.topics.enable") and getattr(
        request, "allow_auto_topic_creation", True
    )
    requested = request.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        topics = [_topic_entry(t, image) for t in sorted(image.topics.values(), key=lambda t: t.name)]
    else:
        topics = []
        for item in requested:
            name = getattr(item, "name", None)
            topic_id = uuid_or_none(getattr(item, "topic_id", None))
            if name is None and topic_id is not None:
                topic = image.topic_by_id(topic_id)
                topics.append(
                    _topic_entry(topic, image) if topic
                    else _missing(None, topic_id, ErrorCode.unknown_topic_id)
                )
            else:
                topics.append(_lookup_or_create(ctx, name or "", auto_create))
    image = broker.store.image()
    _mark_offline_replicas(ctx, topics)
    return _response(ctx, image, topics)


def _mark_offline_replicas(ctx: RequestContext, topics: list[dict[str, Any]]) -> None:
    """Partitions whose log dir failed here, as Kafka reports them once its controller
    heard of the failure: this replica among the offline replicas and, where it led, no
    leader (LEADER_NOT_AVAILABLE), so clients stop sending there."""
    if not ctx.broker.logs.offline_dirs:
        return
    me = ctx.broker.broker_id
    for topic in topics:
        for entry in topic.get("partitions") or ():
            partition = ctx.broker.replicas.get(topic["name"], entry["partition_index"])
            if partition is None or partition.log.offline is None:
                continue
            if me not in entry["offline_replicas"]:
                entry["offline_replicas"].append(me)
            if entry["leader_id"] == me:
                entry.update(leader_id=-1, error_code=ErrorCode.leader_not_available)


def _response(ctx: RequestContext, image: MetadataImage, topics: list[dict[str, Any]]) -> Any:
    from strom.protocol.schema import build

    return build(
        ctx.response_type(),
        brokers=[
            {"node_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack}
            for b in sorted(image.brokers.values(), key=lambda b: b.broker_id)
        ],
        cluster_id=image.cluster_id,
        controller_id=image.controller_id,
        topics=topics,
        cluster_authorized_operations=AUTHORIZED_OPERATIONS_UNKNOWN,
    )

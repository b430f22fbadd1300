"""CreateTopics (19), DeleteTopics (20) and CreatePartitions (37)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker import dispatch
from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE, error
from strom.broker.topic_admin import TopicSpec
from strom.cluster.store import MetadataError
from strom.config.defs import ConfigSource
from strom.config.topic import effective_topic_configs
from strom.protocol.schema import uuid_or_none


def _created(ctx: RequestContext, name: str, configs: dict[str, str],
             assignments: dict[int, list[int]], topic_id: Any) -> dict[str, Any]:
    effective = effective_topic_configs(configs, ctx.broker.config.props)
    return {
        "name": name,
        "topic_id": topic_id,
        "error_code": NONE,
        "num_partitions": len(assignments),
        "replication_factor": len(assignments[0]),
        "configs": [
            {
                "name": c.name,
                "value": c.value,
                "read_only": False,
                "config_source": int(c.source if c.source != ConfigSource.UNKNOWN
                                     else ConfigSource.DEFAULT_CONFIG),
                "is_sensitive": False,
            }
            for c in effective.values()
        ],
    }


def _failed(name: str, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"name": name, "error_code": code, "error_message": message, "num_partitions": -1,
            "replication_factor": -1, "configs": None}


def _create_one(ctx: RequestContext, topic: Any, validate_only: bool) -> dict[str, Any]:
    spec = TopicSpec(
        name=topic.name,
        num_partitions=int(topic.num_partitions),
        replication_factor=int(topic.replication_factor),
        assignments={int(a.partition_index): list(a.broker_ids) for a in topic.assignments},
        configs={c.name: c.value for c in topic.configs},
    )
    try:
        assignments, configs = ctx.broker.admin.plan_create(spec)
        topic_id = None
        if not validate_only:
            topic_id = ctx.broker.admin.create(spec).topic_id
    except MetadataError as exc:
        return _failed(topic.name, error(exc.error), str(exc))
    return _created(ctx, topic.name, configs, assignments, topic_id)


@dispatch.handles(19, 2, 7)
async def create_topics(ctx: RequestContext, request: Any) -> Any:
    counts = Counter(t.name for t in request.topics)
    results = []
    for topic in request.topics:
        if counts[topic.name] > 1:
            results.append(_failed(topic.name, ErrorCode.invalid_request,
                                   "Create topics request from client contains a duplicate topic"))
            continue
        results.append(_create_one(ctx, topic, bool(request.validate_only)))
    return ctx.respond(topics=results)


def _delete_one(ctx: RequestContext, name: str | None, topic_id: Any) -> dict[str, Any]:
    image = ctx.broker.store.image()
    if name is None and topic_id is not None:
        topic = image.topic_by_id(topic_id)
        if topic is None:
            return {"name": None, "topic_id": topic_id, "error_code": ErrorCode.unknown_topic_id}
        name = topic.name
    topic = image.topics.get(name or "")
    if topic is None:
        return {"name": name, "topic_id": topic_id, "error_code": ErrorCode.unknown_topic_or_partition,
                "error_message": "This server does not host this topic-partition."}
    if topic.internal:
        return {"name": name, "topic_id": topic.topic_id, "error_code": ErrorCode.invalid_request,
                "error_message": f"Internal topic {name} cannot be deleted"}
    try:
        ctx.broker.admin.delete(topic.name)
    except MetadataError as exc:
        return {"name": name, "topic_id": topic.topic_id, "error_code": error(exc.error),
                "error_message": str(exc)}
    return {"name": name, "topic_id": topic.topic_id, "error_code": NONE}


@dispatch.handles(20, 1, 6)
async def delete_topics(ctx: RequestContext, request: Any) -> Any:
    results = []
    if ctx.api_version >= 6:
        for state in request.topics:
            results.append(_delete_one(ctx, state.name, uuid_or_none(state.topic_id)))
    else:
        for name in request.topic_names:
            results.append(_delete_one(ctx, name, None))
    return ctx.respond(responses=results)


@dispatch.handles(37, 0, 3)
async def create_partitions(ctx: RequestContext, request: Any) -> Any:
    results = []
    counts = Counter(t.name for t in request.topics)
    for topic in request.topics:
        if counts[topic.name] > 1:
            results.append({"name": topic.name, "error_code": ErrorCode.invalid_request,
                            "error_message": "Duplicate topic in request."})
            continue
        assignments = [list(a.broker_ids) for a in topic.assignments] if topic.assignments else None
        try:
            placement = ctx.broker.admin.plan_partitions(topic.name, int(topic.count), assignments)
            if not request.validate_only:
                ctx.broker.admin.add_partitions(topic.name, placement)
        except MetadataError as exc:
            results.append({"name": topic.name, "error_code": error(exc.error),
                            "error_message": str(exc)})
            continue
        results.append({"name": topic.name, "error_code": NONE, "error_message": None})
    return ctx.respond(results=results)

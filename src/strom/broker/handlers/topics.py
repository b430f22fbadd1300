"""CreateTopics (19), DeleteTopics (20) and CreatePartitions (37).

The work is ``TopicAdmin``'s, done as coroutines that yield to other clients; building
the responses yields too (``Slicer``), since a 1,000-topic response with every topic's
effective configs is itself tens of milliseconds of work.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.broker.topic_admin import CreatePlan, Slicer, TopicSpec
from strom.cluster.store import MetadataError
from strom.config.defs import ConfigSource
from strom.config.topic import effective_topic_configs
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import uuid_or_none


def _created(ctx: RequestContext, name: str, configs: dict[str, str],
             assignments: dict[int, list[int]], topic_id: Any) -> dict[str, Any]:
    effective = effective_topic_configs(configs, ctx.config.props)
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


def _spec(topic: Any) -> TopicSpec:
    return TopicSpec(
        name=topic.name,
        num_partitions=int(topic.num_partitions),
        replication_factor=int(topic.replication_factor),
        assignments={int(a.partition_index): list(a.broker_ids) for a in topic.assignments},
        configs={c.name: c.value for c in topic.configs},
    )


def _result(ctx: RequestContext, plan: CreatePlan) -> dict[str, Any]:
    if plan.error is not None:
        return _failed(plan.spec.name, plan.error.error, str(plan.error))
    return _created(ctx, plan.spec.name, plan.configs, plan.assignments, plan.topic_id)


@dispatch.handles(ApiKey.CREATE_TOPICS, 2, 7)
async def create_topics(ctx: RequestContext, request: Any) -> Any:
    counts = Counter(t.name for t in request.topics)
    plans = await ctx.admin.create_topics(
        [_spec(t) for t in request.topics if counts[t.name] == 1], bool(request.validate_only))
    by_name = {plan.spec.name: plan for plan in plans}
    results = []
    slicer = Slicer()
    for topic in request.topics:
        if counts[topic.name] > 1:
            results.append(_failed(topic.name, ErrorCode.invalid_request,
                                   "Create topics request from client contains a duplicate topic"))
            continue
        results.append(_result(ctx, by_name[topic.name]))
        await slicer.tick()
    return ctx.respond(topics=results)


def _resolve_delete(image: Any, by_id: dict[Any, Any], name: str | None,
                    topic_id: Any) -> tuple[Any, dict[str, Any] | None]:
    """The topic to delete, or the response entry that refuses it."""
    if name is None and topic_id is not None:
        topic = by_id.get(topic_id)
        if topic is None:
            return None, {"name": None, "topic_id": topic_id, "error_code": ErrorCode.unknown_topic_id}
        name = topic.name
    topic = image.topics.get(name or "")
    if topic is None:
        return None, {"name": name, "topic_id": topic_id,
                      "error_code": ErrorCode.unknown_topic_or_partition,
                      "error_message": "This server does not host this topic-partition."}
    if topic.internal:
        return None, {"name": name, "topic_id": topic.topic_id,
                      "error_code": ErrorCode.invalid_request,
                      "error_message": f"Internal topic {name} cannot be deleted"}
    return topic, None


@dispatch.handles(ApiKey.DELETE_TOPICS, 1, 6)
async def delete_topics(ctx: RequestContext, request: Any) -> Any:
    if ctx.api_version >= 6:
        wanted = [(state.name, uuid_or_none(state.topic_id)) for state in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    image = ctx.metadata.image()
    by_id = image.topics_by_id if ctx.api_version >= 6 else {}
    entries: list[dict[str, Any] | Any] = []
    for name, topic_id in wanted:
        topic, refusal = _resolve_delete(image, by_id, name, topic_id)
        entries.append(refusal or topic)
    names = list(dict.fromkeys(e.name for e in entries if not isinstance(e, dict)))
    outcomes = await ctx.admin.delete_topics(names) if names else {}
    results = []
    for entry in entries:
        if isinstance(entry, dict):
            results.append(entry)
            continue
        failure = outcomes[entry.name]
        result = {"name": entry.name, "topic_id": entry.topic_id, "error_code": NONE}
        if failure is not None:
            result.update(error_code=failure.error, error_message=str(failure))
        results.append(result)
    return ctx.respond(responses=results)


@dispatch.handles(ApiKey.CREATE_PARTITIONS, 0, 3)
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
            await ctx.admin.add_partitions(topic.name, int(topic.count), assignments,
                                                  bool(request.validate_only))
        except MetadataError as exc:
            results.append({"name": topic.name, "error_code": exc.error,
                            "error_message": str(exc)})
            continue
        results.append({"name": topic.name, "error_code": NONE, "error_message": None})
    return ctx.respond(results=results)

"""Produce (0): validate and append record batches, answer with their offsets.

We serve v3 (the first with RecordBatch v2) through v13 but advertise a minimum of 0,
as Kafka 4 does: librdkafka derives its message-format features from the advertised
minimum and refuses compressed produce otherwise (KAFKA-18659). A request below v3
never parses, so the connection is closed.

acks=0 gets no response at all; acks=-1 (all) first checks that the in-sync replica
set satisfies `min.insync.replicas`.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker import dispatch
from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE, UNKNOWN_TOPIC, error, resolve_topic
from strom.protocol.schema import build, uuid_or_none


def _partition_error(index: int, code: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return {"index": index, "error_code": code, "base_offset": -1, "log_append_time": -1,
            "log_start_offset": -1, "error_message": message}


def _append(ctx: RequestContext, topic: Any, acks: int, part: Any) -> dict[str, Any]:
    partition = ctx.broker.replicas.get(topic.name, part.index)
    if partition is None:
        return _partition_error(part.index, UNKNOWN_TOPIC)
    if acks == -1:
        info = topic.partitions[part.index]
        if len(info.isr) < partition.policy.min_insync_replicas:
            return _partition_error(
                part.index, ErrorCode.not_enough_replicas,
                f"The size of the current ISR {len(info.isr)} is insufficient to satisfy the "
                f"min.isr requirement of {partition.policy.min_insync_replicas}",
            )
    result = partition.append(part.records)
    if result.error != "none":
        return _partition_error(part.index, error(result.error), result.message)
    ctx.broker.metrics.produced(topic.name, part.records)
    return {
        "index": part.index,
        "error_code": NONE,
        "base_offset": result.base_offset,
        "log_append_time": result.log_append_time,
        "log_start_offset": result.log_start_offset,
    }


@dispatch.handles(0, 3, 13, advertised_min=0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    acks = int(request.acks)
    responses = []
    for topic_data in request.topic_data:
        name = getattr(topic_data, "name", None)
        topic_id = uuid_or_none(getattr(topic_data, "topic_id", None))
        topic, code = resolve_topic(ctx, name, topic_id)
        parts = []
        for part in topic_data.partition_data:
            if acks not in (-1, 0, 1):
                parts.append(_partition_error(part.index, ErrorCode.invalid_required_acks))
            elif request.transactional_id is not None:
                parts.append(_partition_error(
                    part.index, ErrorCode.transactional_id_authorization_failed,
                    "transactions are not supported by this broker yet",
                ))
            elif topic is None or part.index not in topic.partitions:
                parts.append(_partition_error(part.index, code if topic is None else UNKNOWN_TOPIC))
            else:
                parts.append(_append(ctx, topic, acks, part))
        responses.append({"name": name, "topic_id": topic_id, "partition_responses": parts})
    if acks == 0:
        return None
    return build(ctx.response_type(), responses=responses)

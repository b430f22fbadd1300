"""Produce (0): validate and append record batches, answer with their offsets.

We serve v3 (the first with RecordBatch v2) through v13 but advertise a minimum of 0,
as Kafka 4 does: librdkafka derives its message-format features from the advertised
minimum and refuses compressed produce otherwise (KAFKA-18659). A request below v3
never parses, so the connection is closed.

acks=0 gets no response at all; acks=-1 (all) first checks that the in-sync replica
set satisfies `min.insync.replicas`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers import produce_txn
from strom.broker.handlers.common import (
    NONE,
    UNKNOWN_TOPIC,
    missing_partition_error,
    resolve_topic,
)
from strom.broker.network import dispatch
from strom.broker.quotas.throttling import hold_for_old_clients, produce_throttle
from strom.broker.replication.partition import Partition
from strom.broker.topic_admin import INTERNAL_TOPICS
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build, millis, uuid_or_none


def _partition_error(index: int, code: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return {"index": index, "error_code": code, "base_offset": -1, "log_append_time": -1,
            "log_start_offset": -1, "error_message": message}


_Pending = list[tuple[dict[str, Any], Partition, int]]


def _isr_too_small(partition: Partition, isr_size: int) -> str:
    return (f"The size of the current ISR {isr_size} is insufficient to satisfy the "
            f"min.isr requirement of {partition.policy.min_insync_replicas}")


def _append(ctx: RequestContext, topic: Any, acks: int, part: Any,
            pending: _Pending) -> dict[str, Any]:
    partition = ctx.partitions.get(topic.name, part.index)
    if partition is None:
        return _partition_error(part.index, missing_partition_error(ctx, topic.name, part.index))
    if not partition.is_leader:
        entry = _partition_error(part.index, ErrorCode.not_leader_or_follower)
        entry["current_leader"] = {"leader_id": partition.leader_id,
                                   "leader_epoch": partition.leader_epoch}
        return entry
    if acks == -1 and len(partition.isr) < partition.policy.min_insync_replicas:
        return _partition_error(part.index, ErrorCode.not_enough_replicas,
                                _isr_too_small(partition, len(partition.isr)))
    result = partition.append(part.records)
    if result.error != NONE:
        entry = _partition_error(part.index, result.error, result.message)
        entry["record_errors"] = [{"batch_index": index, "batch_index_error_message": message}
                                  for index, message in result.record_errors]
        return entry
    ctx.metrics.produced(topic.name, len(part.records), result.records)
    entry = {
        "index": part.index,
        "error_code": NONE,
        "base_offset": result.base_offset,
        "log_append_time": result.log_append_time,
        "log_start_offset": result.log_start_offset,
    }
    if acks == -1 and partition.high_watermark < partition.log_end_offset:
        pending.append((entry, partition, partition.log_end_offset))
    return entry


async def _await_replication(pending: _Pending, timeout_ms: int) -> None:
    """acks=all: answer once every in-sync replica has the records, or time out.

    A partition that lost leadership meanwhile answers NOT_LEADER_OR_FOLLOWER, and one whose
    ISR fell below min.insync.replicas answers NOT_ENOUGH_REPLICAS_AFTER_APPEND: the records
    are in the log but not as safe as the producer asked.
    """
    waits = [partition.wait_for_high_watermark(offset) for _, partition, offset in pending]
    done, _ = await asyncio.wait(waits, timeout=max(timeout_ms, 0) / 1000)
    for (entry, partition, _), wait in zip(pending, waits, strict=True):
        if wait not in done:
            wait.cancel()
            entry.update(error_code=ErrorCode.request_timed_out, base_offset=-1,
                         error_message="replication to the ISR did not finish in time")
        elif not wait.result():
            entry.update(error_code=ErrorCode.not_leader_or_follower, base_offset=-1)
        elif len(partition.isr) < partition.policy.min_insync_replicas:
            entry.update(error_code=ErrorCode.not_enough_replicas_after_append, base_offset=-1,
                         error_message=_isr_too_small(partition, len(partition.isr)))


def _produce_to(ctx: RequestContext, topic_data: Any, acks: int,
                refusal: tuple[ErrorCode, str] | None, verdicts: produce_txn.Verdicts,
                pending: _Pending) -> list[dict[str, Any]]:
    name = getattr(topic_data, "name", None)
    topic, code = resolve_topic(ctx, name, uuid_or_none(getattr(topic_data, "topic_id", None)))
    parts = []
    for part in topic_data.partition_data:
        verdict = verdicts.get((topic.name, part.index), NONE) if topic is not None else NONE
        if acks not in (-1, 0, 1):
            parts.append(_partition_error(part.index, ErrorCode.invalid_required_acks))
        elif refusal is not None:
            parts.append(_partition_error(part.index, *refusal))
        elif verdict != NONE:
            parts.append(_partition_error(part.index, verdict))
        elif topic is None or part.index not in topic.partitions:
            parts.append(_partition_error(part.index, code if topic is None else UNKNOWN_TOPIC))
        elif topic.name in INTERNAL_TOPICS:
            parts.append(_partition_error(part.index, ErrorCode.invalid_topic_exception,
                                          f"Cannot append to internal topic {topic.name}"))
        else:
            parts.append(_append(ctx, topic, acks, part, pending))
    return parts


@dispatch.handles(ApiKey.PRODUCE, 3, 13, advertised_min=0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    acks = int(request.acks)
    responses = []
    pending: _Pending = []
    refusal = produce_txn.refusal(ctx, request)
    verdicts = await produce_txn.verify(ctx, request) if refusal is None else {}
    for topic_data in request.topic_data:
        parts = _produce_to(ctx, topic_data, acks, refusal, verdicts, pending)
        responses.append({"name": getattr(topic_data, "name", None),
                          "topic_id": uuid_or_none(getattr(topic_data, "topic_id", None)),
                          "partition_responses": parts})
    throttle_ms = produce_throttle(ctx)  # over a client quota: muted for this long
    if acks == 0:
        return None
    if pending:
        await _await_replication(pending, millis(request.timeout))
    await hold_for_old_clients(ctx, throttle_ms, 6)
    return build(ctx.response_type(), responses=responses, throttle_time=throttle_ms)

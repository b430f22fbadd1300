"""ListOffsets (2): earliest, latest, max-timestamp and by-timestamp offset lookups."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker import dispatch
from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE, leader_partition
from strom.broker.partition import Partition
from strom.protocol.schema import build
from strom.storage.errors import CorruptLog, KafkaStorageError

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, EARLIEST_PENDING_UPLOAD, LATEST_TIERED = (
    -1, -2, -3, -4, -5, -6,
)


def _lookup(partition: Partition, timestamp: int) -> tuple[int, int]:
    """(timestamp, offset) for one query; (-1, -1) when no record qualifies."""
    log = partition.log
    if timestamp == LATEST:
        return -1, partition.high_watermark
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return -1, log.log_start_offset
    if timestamp in (EARLIEST_PENDING_UPLOAD, LATEST_TIERED):
        return -1, -1
    if timestamp == MAX_TIMESTAMP:
        return log.max_timestamp_and_offset()
    found = log.offset_for_timestamp(timestamp)
    if found is None or found[0] >= partition.high_watermark:
        return -1, -1
    offset, ts = found
    return ts, offset


def _lookup_stored(partition: Partition, timestamp: int) -> tuple[int, int]:
    if partition.log.offline is not None:
        raise KafkaStorageError(partition.log.log_dir, partition.log.offline)
    return _lookup(partition, timestamp)


def _answer(ctx: RequestContext, topic: str, part: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"partition_index": part.partition_index, "error_code": NONE,
                             "timestamp": -1, "offset": -1, "leader_epoch": -1}
    partition, code = leader_partition(ctx, topic, part.partition_index,
                                       int(getattr(part, "current_leader_epoch", -1)))
    if partition is None:
        entry["error_code"] = code
        return entry
    try:
        ts, offset = _lookup_stored(partition, int(part.timestamp))
    except KafkaStorageError:  # the log dir is offline: any query, as in Kafka
        entry["error_code"] = ErrorCode.kafka_storage_error
        return entry
    except CorruptLog:  # logged with file and position by the log
        entry["error_code"] = ErrorCode.corrupt_message
        return entry
    entry.update(timestamp=ts, offset=offset, leader_epoch=partition.leader_epoch)
    return entry


@dispatch.handles(2, 1, 10)
async def handle(ctx: RequestContext, request: Any) -> Any:
    topics = []
    for topic_req in request.topics:
        parts = [_answer(ctx, topic_req.name, p) for p in topic_req.partitions]
        topics.append({"name": topic_req.name, "partitions": parts})
    return build(ctx.response_type(), topics=topics)

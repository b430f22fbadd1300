"""ListOffsets (2): earliest, latest, max-timestamp and by-timestamp offset lookups.

The semantics of each query live in storage (`PartitionLog.list_offset`); this module
maps partitions and errors.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE, leader_partition
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build
from strom.storage.errors import CorruptLog, KafkaStorageError

READ_COMMITTED = 1


def _answer(ctx: RequestContext, topic: str, part: Any, read_committed: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"partition_index": part.partition_index, "error_code": NONE,
                             "timestamp": -1, "offset": -1, "leader_epoch": -1}
    partition, code = leader_partition(ctx, topic, part.partition_index,
                                       int(getattr(part, "current_leader_epoch", -1)))
    if partition is None:
        entry["error_code"] = code
        return entry
    try:
        ts, offset = partition.list_offset(int(part.timestamp), read_committed)
    except KafkaStorageError:  # the log dir is offline: any query, as in Kafka
        entry["error_code"] = ErrorCode.kafka_storage_error
        return entry
    except CorruptLog:  # logged with file and position by the log
        entry["error_code"] = ErrorCode.corrupt_message
        return entry
    entry.update(timestamp=ts, offset=offset, leader_epoch=partition.leader_epoch)
    return entry


@dispatch.handles(ApiKey.LIST_OFFSETS, 1, 10)
async def handle(ctx: RequestContext, request: Any) -> Any:
    topics = []
    read_committed = int(getattr(request, "isolation_level", 0)) == READ_COMMITTED
    for topic_req in request.topics:
        parts = [_answer(ctx, topic_req.name, p, read_committed) for p in topic_req.partitions]
        topics.append({"name": topic_req.name, "partitions": parts})
    return build(ctx.response_type(), topics=topics)

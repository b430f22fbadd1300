"""DeleteRecords (21): move a partition's log start offset forward."""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey
from strom.storage import KafkaStorageError, OffsetOutOfRange

log = logging.getLogger(__name__)


def _delete(ctx: RequestContext, topic: str, part: Any) -> dict[str, Any]:
    partition = ctx.partitions.get(topic, part.partition_index)
    if partition is None:
        return {"partition_index": part.partition_index, "low_watermark": -1,
                "error_code": ErrorCode.unknown_topic_or_partition}
    try:
        low = partition.delete_records_before(int(part.offset))
    except OffsetOutOfRange:
        return {"partition_index": part.partition_index, "low_watermark": -1,
                "error_code": ErrorCode.offset_out_of_range}
    except KafkaStorageError:  # the partition's log dir is offline
        return {"partition_index": part.partition_index, "low_watermark": -1,
                "error_code": ErrorCode.kafka_storage_error}
    log.info("log start offset of %s-%d moved to %d", topic, part.partition_index, low)
    return {"partition_index": part.partition_index, "low_watermark": low, "error_code": NONE}


@dispatch.handles(ApiKey.DELETE_RECORDS, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    topics = [
        {"name": t.name, "partitions": [_delete(ctx, t.name, p) for p in t.partitions]}
        for t in request.topics
    ]
    return ctx.respond(topics=topics)

"""Writing transaction markers into the partitions this broker leads.

The transaction coordinator ends a transaction by writing a COMMIT or ABORT marker into
every partition the transaction touched: through ``LocalMarkerWriter`` for partitions led
here, through WriteTxnMarkers (27) to the leaders of the others, whose handler calls the
same writer. A marker counts once it is replicated (the high watermark passed it), as
Kafka appends markers with acks=all; a marker written into ``__consumer_offsets`` is also
handed to the group coordinator, which then makes the transaction's offsets visible or
drops them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

if TYPE_CHECKING:
    from strom.broker.services import PartitionDirectory

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
REPLICATION_TIMEOUT_S = 30.0  # Kafka's marker channel uses request.timeout.ms
# (offsets partition, producer id, committed): the group coordinator's side of a marker
OffsetsMarkerHook = Callable[[int, int, bool], None]


class LocalMarkerWriter:
    """Markers for partitions led here (see module docstring)."""

    def __init__(self, partitions: PartitionDirectory,
                 on_offsets_marker: OffsetsMarkerHook | None = None) -> None:
        self.partitions = partitions
        self.on_offsets_marker = on_offsets_marker

    async def write_marker(self, topic: str, partition: int, producer_id: int,
                           producer_epoch: int, committed: bool,
                           coordinator_epoch: int) -> ErrorCode:
        """Append the marker and wait until it is replicated; Kafka's error otherwise
        (NOT_LEADER_OR_FOLLOWER: the coordinator retries at the new leader)."""
        target = self.partitions.get(topic, partition)
        if target is None:
            reason = self.partitions.offline_reason(topic, partition)
            return (ErrorCode.kafka_storage_error if reason is not None
                    else ErrorCode.unknown_topic_or_partition)
        if not target.is_leader:
            return ErrorCode.not_leader_or_follower
        result = target.append_marker(producer_id, producer_epoch, committed, coordinator_epoch)
        if result.error != ErrorCode.none:
            log.info("marker for producer %d refused by %s-%d: %s", producer_id, topic,
                     partition, result.message)
            return result.error
        if topic == OFFSETS_TOPIC and self.on_offsets_marker is not None:
            self.on_offsets_marker(partition, producer_id, committed)
        waiter = target.wait_for_high_watermark(result.base_offset + 1)
        try:
            replicated = await asyncio.wait_for(waiter, REPLICATION_TIMEOUT_S)
        except TimeoutError:
            return ErrorCode.request_timed_out
        return ErrorCode.none if replicated else ErrorCode.not_leader_or_follower

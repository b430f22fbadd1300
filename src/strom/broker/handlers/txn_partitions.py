"""The partition side of transactions: WriteTxnMarkers (27) and DescribeProducers (61).

WriteTxnMarkers is what a transaction coordinator on another broker sends to end a
transaction here; each marker is written by the same `LocalMarkerWriter` the local
coordinator uses, all partitions at once. (It is a broker-to-broker API: once ACLs exist
it needs ClusterAction, as in Kafka.) DescribeProducers reports the producers a
replica (leader or follower) tracks, open transactions included (`kafka-transactions.sh
describe-producers`, `strom txn producers`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE, missing_partition_error
from strom.broker.network import dispatch
from strom.broker.replication.txn_markers import LocalMarkerWriter
from strom.protocol.api_keys import ApiKey

COMMIT = True


async def _marker_result(writer: LocalMarkerWriter, marker: Any) -> dict[str, Any]:
    committed = bool(marker.transaction_result) is COMMIT
    topics = []
    for topic in marker.topics:
        codes = await asyncio.gather(*[
            writer.write_marker(topic.name, int(index), int(marker.producer_id),
                                int(marker.producer_epoch), committed,
                                int(marker.coordinator_epoch))
            for index in topic.partition_indexes])
        topics.append({"name": topic.name, "partitions": [
            {"partition_index": int(index), "error_code": code}
            for index, code in zip(topic.partition_indexes, codes, strict=True)]})
    return {"producer_id": marker.producer_id, "topics": topics}


@dispatch.handles(ApiKey.WRITE_TXN_MARKERS, 1, 2)
async def write_txn_markers(ctx: RequestContext, request: Any) -> Any:
    writer = LocalMarkerWriter(ctx.partitions, ctx.groups.on_offsets_marker)
    results = [await _marker_result(writer, marker) for marker in request.markers]
    return ctx.respond(markers=results)


def _producers(ctx: RequestContext, topic: str, index: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"partition_index": index, "error_code": NONE,
                             "error_message": None, "active_producers": []}
    partition = ctx.partitions.get(topic, index)  # any replica answers, as in Kafka
    if partition is None:
        entry["error_code"] = missing_partition_error(ctx, topic, index)
        return entry
    entry["active_producers"] = [
        {"producer_id": p.producer_id, "producer_epoch": p.producer_epoch,
         "last_sequence": p.last_sequence, "last_timestamp": p.last_timestamp,
         "coordinator_epoch": p.coordinator_epoch,
         "current_txn_start_offset": p.current_txn_start_offset}
        for p in partition.producer_states()]
    return entry


@dispatch.handles(ApiKey.DESCRIBE_PRODUCERS, 0, 0)
async def describe_producers(ctx: RequestContext, request: Any) -> Any:
    topics = [{"name": t.name, "partitions": [_producers(ctx, t.name, int(i))
                                              for i in t.partition_indexes]}
              for t in request.topics]
    return ctx.respond(topics=topics)


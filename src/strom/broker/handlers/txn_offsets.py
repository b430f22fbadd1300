"""TxnOffsetCommit (28): a transactional producer commits a consumer group's offsets.

The group coordinator writes them in a transactional batch of the producer and holds
them until the transaction's marker reaches the group's `__consumer_offsets` partition:
COMMIT makes them committed offsets, ABORT drops them. Until then OffsetFetch does not
show them, and a fetch with require_stable answers UNSTABLE_OFFSET_COMMIT for them.

Before writing, the group's partition is verified with the transaction coordinator, as
Kafka's group coordinator does (KIP-890 part 1): a commit whose partition is not in the
producer's open transaction (no AddOffsetsToTxn before it, or a late retry after the
transaction ended) is refused, TRANSACTION_ABORTABLE from v4 and INVALID_TXN_STATE below,
instead of leaving offsets no marker will ever decide. From v5 (transaction version 2,
KIP-890 part 2) the commit adds the partition to the transaction instead, as a client on
transaction version 2 sends no AddOffsetsToTxn.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.transactions import fenced_for
from strom.broker.network import dispatch
from strom.coordinator.group.offsets import OffsetCommit
from strom.protocol.api_keys import ApiKey

OFFSETS_TOPIC = "__consumer_offsets"
FIRST_ABORTABLE_VERSION = 4  # clients that know TRANSACTION_ABORTABLE
FIRST_FENCED_VERSION = 3  # clients that know PRODUCER_FENCED (KIP-588)
FIRST_ADDING_VERSION = 5  # transaction version 2: the commit adds its partition itself


async def _verified(ctx: RequestContext, request: Any) -> ErrorCode:
    """The verification's verdict for the group's offsets partition (none: go ahead)."""
    txns = ctx.services.transactions
    if txns is None or not request.group_id:
        return ErrorCode.none
    partition = ctx.groups.coordinator.partition_for(request.group_id)
    target = ctx.partitions.get(OFFSETS_TOPIC, partition)
    producer_id = int(request.producer_id)
    if target is not None and target.is_leader and target.in_transaction(producer_id):
        return ErrorCode.none  # the transaction is already open there
    check = (txns.add_partition if ctx.api_version >= FIRST_ADDING_VERSION
             else txns.verify_partition)
    error = await check(request.transactional_id, producer_id, int(request.producer_epoch),
                        OFFSETS_TOPIC, partition)
    if error == ErrorCode.transaction_abortable and ctx.api_version < FIRST_ABORTABLE_VERSION:
        return ErrorCode.invalid_txn_state
    return fenced_for(error, ctx.api_version, FIRST_FENCED_VERSION)


def _respond(ctx: RequestContext, request: Any, results: dict[tuple[str, int], ErrorCode]
             ) -> Any:
    return ctx.respond(topics=[
        {"name": t.name, "partitions": [
            {"partition_index": p.partition_index,
             "error_code": results[(t.name, int(p.partition_index))]}
            for p in t.partitions]}
        for t in request.topics
    ])


@dispatch.handles(ApiKey.TXN_OFFSET_COMMIT, 0, 5)
async def txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    commits = [
        OffsetCommit(t.name, int(p.partition_index), int(p.committed_offset),
                     int(getattr(p, "committed_leader_epoch", -1)), p.committed_metadata)
        for t in request.topics for p in t.partitions
    ]
    error = ctx.groups.coordinator.ownership_error(request.group_id)
    if error == ErrorCode.none:
        error = await _verified(ctx, request)
    if error != ErrorCode.none:
        return _respond(ctx, request, {(c.topic, c.partition): error for c in commits})
    _, results = await ctx.groups.coordinator.txn_commit(
        request.group_id, (int(request.producer_id), int(request.producer_epoch)),
        int(getattr(request, "generation_id", -1)), getattr(request, "member_id", ""), commits)
    return _respond(ctx, request, results)

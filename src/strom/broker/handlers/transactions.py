"""AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26), DescribeTransactions (65)
and ListTransactions (66): the client's side of the transaction coordinator.

Errors are Kafka 4.4's: PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH to the
versions from before KIP-588 (AddPartitionsToTxn/AddOffsetsToTxn/EndTxn below v2), and
an AddPartitionsToTxn that names a partition that does not exist answers
UNKNOWN_TOPIC_OR_PARTITION for it and OPERATION_NOT_ATTEMPTED for the others. Versions
4+ of AddPartitionsToTxn carry batches of transactions, the verify-only ones of KIP-890
part 1 among them (partition leaders asking whether a batch belongs to a transaction).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from strom.broker.services import TransactionCoordination

E = ErrorCode
TopicPartition = tuple[str, int]


def face(ctx: RequestContext) -> TransactionCoordination | None:
    return ctx.services.transactions


def fenced_for(error: ErrorCode, version: int, first_fenced_version: int) -> ErrorCode:
    """PRODUCER_FENCED for clients that know it (KIP-588), INVALID_PRODUCER_EPOCH before."""
    if error == E.producer_fenced and version < first_fenced_version:
        return E.invalid_producer_epoch
    return error


# --- AddPartitionsToTxn ---------------------------------------------------------------


async def _add_one(ctx: RequestContext, txn_id: str, producer_id: int, epoch: int,
                   topics: Any, verify_only: bool) -> dict[TopicPartition, ErrorCode]:
    wanted = [(t.name, int(p)) for t in topics for p in t.partitions]
    txns = face(ctx)
    if txns is None:
        return dict.fromkeys(wanted, E.coordinator_not_available)
    if not txn_id:
        return dict.fromkeys(wanted, E.invalid_request)
    if verify_only:
        return txns.coordinator.verify(txn_id, producer_id, epoch, wanted)
    missing = [tp for tp in wanted if not _exists(ctx, tp)]
    if missing:
        errors = dict.fromkeys(wanted, E.operation_not_attempted)
        errors.update(dict.fromkeys(missing, E.unknown_topic_or_partition))
        return errors
    error = await txns.coordinator.add_partitions(txn_id, producer_id, epoch, wanted)
    return dict.fromkeys(wanted, error)


def _exists(ctx: RequestContext, tp: TopicPartition) -> bool:
    info = ctx.metadata.image().topics.get(tp[0])
    return info is not None and tp[1] in info.partitions


def _topic_results(errors: dict[TopicPartition, ErrorCode]) -> list[dict[str, Any]]:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), error in errors.items():
        by_topic.setdefault(topic, []).append(
            {"partition_index": partition, "partition_error_code": error})
    return [{"name": name, "results_by_partition": parts} for name, parts in by_topic.items()]


@dispatch.handles(ApiKey.ADD_PARTITIONS_TO_TXN, 0, 5)
async def add_partitions(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    if version <= 3:
        errors = await _add_one(ctx, request.v3_and_below_transactional_id,
                                int(request.v3_and_below_producer_id),
                                int(request.v3_and_below_producer_epoch),
                                request.v3_and_below_topics, False)
        errors = {tp: fenced_for(e, version, 2) for tp, e in errors.items()}
        return ctx.respond(results_by_topic_v3_and_below=_topic_results(errors))
    results = []
    for txn in request.transactions:
        errors = await _add_one(ctx, txn.transactional_id, int(txn.producer_id),
                                int(txn.producer_epoch), txn.topics, bool(txn.verify_only))
        results.append({"transactional_id": txn.transactional_id,
                        "topic_results": _topic_results(errors)})
    return ctx.respond(error_code=E.none, results_by_transaction=results)


# --- AddOffsetsToTxn and EndTxn -------------------------------------------------------


@dispatch.handles(ApiKey.ADD_OFFSETS_TO_TXN, 0, 4)
async def add_offsets(ctx: RequestContext, request: Any) -> Any:
    txns = face(ctx)
    if txns is None:
        return ctx.respond(error_code=E.coordinator_not_available)
    if not request.transactional_id:
        return ctx.respond(error_code=E.invalid_request)
    error = await txns.coordinator.add_offsets(request.transactional_id,
                                               int(request.producer_id),
                                               int(request.producer_epoch), request.group_id)
    return ctx.respond(error_code=fenced_for(error, ctx.api_version, 2))


FIRST_TV2_END_TXN = 5  # EndTxn v5+: the client runs transaction version 2


@dispatch.handles(ApiKey.END_TXN, 0, 5)
async def end_txn(ctx: RequestContext, request: Any) -> Any:
    txns = face(ctx)
    if txns is None:
        return ctx.respond(error_code=E.coordinator_not_available)
    if not request.transactional_id:
        return ctx.respond(error_code=E.invalid_request)
    if ctx.api_version >= FIRST_TV2_END_TXN:
        result = await txns.coordinator.end_transaction_v2(
            request.transactional_id, int(request.producer_id), int(request.producer_epoch),
            bool(request.committed))
        return ctx.respond(error_code=result.error, producer_id=result.producer_id,
                           producer_epoch=result.producer_epoch)
    error = await txns.coordinator.end_transaction(request.transactional_id,
                                                   int(request.producer_id),
                                                   int(request.producer_epoch),
                                                   bool(request.committed))
    return ctx.respond(error_code=fenced_for(error, ctx.api_version, 2))


# --- DescribeTransactions and ListTransactions ----------------------------------------


def _describe(txns: TransactionCoordination, txn_id: str) -> dict[str, Any]:
    error, meta = txns.coordinator.describe(txn_id)
    # An error entry carries the schema's defaults (zeros), as Kafka's does.
    entry: dict[str, Any] = {"transactional_id": txn_id, "error_code": error,
                             "transaction_state": "", "producer_id": 0, "producer_epoch": 0,
                             "transaction_timeout": 0, "transaction_start_time": 0,
                             "topics": []}
    if meta is None:
        return entry
    entry.update(transaction_state=meta.state.display, producer_id=meta.producer_id,
                 producer_epoch=meta.producer_epoch, transaction_timeout=meta.timeout_ms,
                 transaction_start_time=meta.start_ms,
                 topics=[{"topic": topic, "partitions": list(ids)}
                         for topic, ids in meta.sorted_partitions()])
    return entry


@dispatch.handles(ApiKey.DESCRIBE_TRANSACTIONS, 0, 0)
async def describe_transactions(ctx: RequestContext, request: Any) -> Any:
    txns = face(ctx)
    if txns is None:
        return ctx.respond(transaction_states=[
            {"transactional_id": t, "error_code": E.coordinator_not_available}
            for t in request.transactional_ids])
    return ctx.respond(transaction_states=[_describe(txns, t)
                                           for t in request.transactional_ids])


@dispatch.handles(ApiKey.LIST_TRANSACTIONS, 0, 2)
async def list_transactions(ctx: RequestContext, request: Any) -> Any:
    txns = face(ctx)
    if txns is None:
        return ctx.respond(error_code=E.coordinator_not_available)
    from strom.coordinator.transaction.model import TxnState

    states = {name: TxnState.by_name(name) for name in request.state_filters}
    unknown = [name for name, state in states.items() if state is None]
    wanted_states = {s for s in states.values() if s is not None}
    producers = {int(p) for p in request.producer_id_filters}
    duration = int(getattr(request, "duration_filter", -1))
    pattern_text = getattr(request, "transactional_id_pattern", None)
    try:
        pattern = re.compile(pattern_text) if pattern_text else None
    except re.error:
        return ctx.respond(error_code=E.invalid_regular_expression)
    now = txns.coordinator.clock()
    found = []
    for meta in txns.coordinator.transactions():
        if ((states and meta.state not in wanted_states)
                or (producers and meta.producer_id not in producers)
                or (duration >= 0 and (meta.start_ms < 0 or now - meta.start_ms < duration))
                or (pattern is not None and not pattern.fullmatch(meta.transactional_id))):
            continue
        found.append({"transactional_id": meta.transactional_id,
                      "producer_id": meta.producer_id,
                      "transaction_state": meta.state.display})
    error = E.none
    if txns.coordinator.loading:
        error = E.coordinator_load_in_progress
    return ctx.respond(error_code=error, unknown_state_filters=unknown,
                       transaction_states=found)

"""Transactional produce: who may write transactional batches, and KIP-890 verification.

A batch with the transactional bit needs the request's transactional id (Kafka answers
TRANSACTIONAL_ID_AUTHORIZATION_FAILED otherwise, for every partition). The first
transactional batch a producer writes to a partition in a transaction is verified with
the transaction coordinator first (KIP-890 part 1: AddPartitionsToTxn verify-only, or a
local call when the coordinator is this broker): a write that arrives after its
transaction ended — a retry delayed past EndTxn, the KAFKA-17754 class of bug — is
refused instead of opening a transaction nobody will ever end. Later batches of the same
open transaction need no check: the partition already counts it open.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import resolve_topic
from strom.protocol.records import (
    ATTRIBUTES_OFFSET,
    CURRENT_MAGIC,
    HEADER_SIZE,
    MAGIC_OFFSET,
    Attr,
    InvalidBatch,
    read_header,
)
from strom.protocol.schema import uuid_or_none

FIRST_ADDING_PRODUCE = 12
Verdicts = dict[tuple[str, int], ErrorCode]  # by topic name, whatever the request used


def is_transactional(records: Any) -> bool:
    low_byte = ATTRIBUTES_OFFSET + 1  # attributes are a big-endian int16
    return bool(records and len(records) > low_byte and records[MAGIC_OFFSET] == CURRENT_MAGIC
                and records[low_byte] & Attr.TRANSACTIONAL)


def has_transactional_records(request: Any) -> bool:
    return any(is_transactional(part.records)
               for topic_data in request.topic_data for part in topic_data.partition_data)


def refusal(ctx: RequestContext, request: Any) -> tuple[ErrorCode, str] | None:
    """An error for every partition of the request, as Kafka sends before appending."""
    if request.transactional_id is not None and ctx.services.transactions is None:
        return (ErrorCode.transactional_id_authorization_failed,
                "transactions are not enabled on this broker")
    if request.transactional_id is None and has_transactional_records(request):
        return (ErrorCode.transactional_id_authorization_failed,
                "transactional records need a transactional id")
    return None


async def verify(ctx: RequestContext, request: Any) -> Verdicts:
    """Ask the coordinator about every partition where a producer starts a transaction."""
    transactions = ctx.services.transactions
    if request.transactional_id is None or transactions is None:
        return {}
    # Produce v12+ comes from a client on transaction version 2 (KIP-890 part 2), which
    # sends no AddPartitionsToTxn: the leader adds the partition, as Kafka's does.
    check = (transactions.add_partition if ctx.api_version >= FIRST_ADDING_PRODUCE
             else transactions.verify_partition)
    asks: dict[tuple[str, int], Any] = {}
    for topic_data in request.topic_data:
        topic, _ = resolve_topic(ctx, getattr(topic_data, "name", None),
                                 uuid_or_none(getattr(topic_data, "topic_id", None)))
        if topic is None:
            continue  # answered as unknown by the produce handler
        name = topic.name
        for part in topic_data.partition_data:
            header = _transactional_header(part.records)
            partition = ctx.partitions.get(name, part.index)
            if (header is None or partition is None or not partition.is_leader
                    or partition.in_transaction(header.producer_id)):
                continue
            asks[(name, part.index)] = check(
                str(request.transactional_id), header.producer_id, header.producer_epoch,
                name, part.index)
    answers = await asyncio.gather(*asks.values())
    return {tp: _for_produce(code) for tp, code in zip(asks, answers, strict=True)}


# The coordinator cannot answer yet (moving, loading, not created, busy ending the last
# transaction): Kafka's leader answers a produce NOT_ENOUGH_REPLICAS, which every client
# version retries, rather than coordinator errors a producer does not expect from Produce.
_RETRY_LATER = frozenset({ErrorCode.coordinator_not_available, ErrorCode.not_coordinator,
                          ErrorCode.coordinator_load_in_progress,
                          ErrorCode.concurrent_transactions})


def _for_produce(code: ErrorCode) -> ErrorCode:
    """The coordinator's verdict as a Produce answer. A stale epoch is INVALID_PRODUCER_EPOCH
    there, not the coordinator's PRODUCER_FENCED, as Kafka's verification answers it: a
    producer whose transaction the coordinator timed out and aborted is told its epoch is
    old (librdkafka: fatal at once) instead of being left to abort a transaction its
    EndTxn can no longer end."""
    if code == ErrorCode.producer_fenced:
        return ErrorCode.invalid_producer_epoch
    return ErrorCode.not_enough_replicas if code in _RETRY_LATER else code


def _transactional_header(records: Any) -> Any:
    if not is_transactional(records) or len(records) < HEADER_SIZE:
        return None
    try:
        return read_header(records)
    except InvalidBatch:
        return None  # the validator answers it

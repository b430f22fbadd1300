"""The records of `__transaction_state` as the shard writes and replays them.

A record is a transactional id and its full state (None: a tombstone, the id expired),
so replaying the last record of an id rebuilds it whole. ``last_producer_epoch`` rides
along in memory only: Kafka does not store it either, and a loaded coordinator starts
without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.coordinator.transaction import codec
from strom.coordinator.transaction.model import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    TransactionMetadata,
    TxnState,
)


@dataclass(frozen=True, slots=True)
class TxnRecord:
    transactional_id: str
    value: codec.TxnValue | None
    last_producer_epoch: int = NO_PRODUCER_EPOCH


def serialize(record: TxnRecord) -> tuple[bytes, bytes | None]:
    """Kafka's bytes: value version 1 for a transaction version 2 client, as Kafka."""
    value = None if record.value is None else codec.encode_value(
        record.value, 1 if record.value.client_transaction_version >= 2 else 0)
    return codec.encode_key(record.transactional_id), value


def of(meta: TransactionMetadata) -> TxnRecord:
    """The record that makes an id what ``meta`` says (Empty writes no partitions)."""
    partitions = () if meta.state == TxnState.EMPTY else meta.sorted_partitions()
    value = codec.TxnValue(
        producer_id=meta.producer_id,
        producer_epoch=meta.producer_epoch,
        timeout_ms=meta.timeout_ms,
        status=meta.state.value,
        partitions=partitions,
        last_update_ms=meta.last_update_ms,
        start_ms=meta.start_ms,
        previous_producer_id=(meta.previous_producer_id
                              if meta.previous_producer_id != NO_PRODUCER_ID else -1),
        next_producer_id=meta.next_producer_id,
        client_transaction_version=meta.client_transaction_version,
    )
    return TxnRecord(meta.transactional_id, value, meta.last_producer_epoch)


def tombstone(transactional_id: str) -> TxnRecord:
    return TxnRecord(transactional_id, None)


def to_metadata(record: TxnRecord) -> TransactionMetadata:
    value = record.value
    assert value is not None
    return TransactionMetadata(
        transactional_id=record.transactional_id,
        producer_id=value.producer_id,
        producer_epoch=value.producer_epoch,
        timeout_ms=value.timeout_ms,
        state=TxnState(value.status),
        partitions={(t, p) for t, ids in value.partitions for p in ids},
        start_ms=value.start_ms,
        last_update_ms=value.last_update_ms,
        last_producer_epoch=record.last_producer_epoch,
        previous_producer_id=value.previous_producer_id,
        next_producer_id=value.next_producer_id,
        client_transaction_version=value.client_transaction_version,
    )

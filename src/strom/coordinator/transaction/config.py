"""Settings and seams the transaction coordinator needs from its host broker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode

from strom.coordinator.group.config import OffsetsLog, partition_for

TRANSACTION_TOPIC = "__transaction_state"


@dataclass(frozen=True)
class TxnConfig:
    num_partitions: int = 50  # transaction.state.log.num.partitions
    max_timeout_ms: int = 900_000  # transaction.max.timeout.ms
    id_expiration_ms: int = 604_800_000  # transactional.id.expiration.ms
    # transaction.abort.timed.out.transaction.cleanup.interval.ms
    abort_interval_ms: int = 10_000
    # transaction.remove.expired.transaction.cleanup.interval.ms
    remove_expired_interval_ms: int = 3_600_000
    offsets_partitions: int = 50  # offsets.topic.num.partitions (AddOffsetsToTxn)


# The door to `__transaction_state` has the same shape as the one to
# `__consumer_offsets`: append, wait until replicated, replay a partition for a load.
TxnLog = OffsetsLog


class MarkerWriter(Protocol):
    """Where the coordinator's transaction markers go (Kafka's TransactionMarkerChannel).

    ``write_marker`` answers `ErrorCode.none` once the COMMIT or ABORT control batch is
    appended and replicated on the partition's leader; any other code is Kafka's error
    for that partition (NOT_LEADER_OR_FOLLOWER and the like are retried by the caller).
    """

    async def write_marker(self, topic: str, partition: int, producer_id: int,
                           producer_epoch: int, committed: bool,
                           coordinator_epoch: int) -> ErrorCode: ...


def txn_partition_for(transactional_id: str, num_partitions: int) -> int:
    """Which `__transaction_state` partition owns a transactional id (Kafka's hash)."""
    return partition_for(transactional_id, num_partitions)

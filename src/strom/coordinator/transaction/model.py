"""A transactional id's state, as Kafka's TransactionMetadata keeps it (plain data).

The states and their ids are Kafka's (the ids are what `__transaction_state` stores and
the names what DescribeTransactions and ListTransactions report). `VALID_PREVIOUS` is
Kafka's transition table: a transition from anywhere else is a bug, and the shard
refuses it rather than writing it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_EPOCH = 32767  # Short.MaxValue


class TxnState(enum.Enum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def display(self) -> str:
        """Kafka's state name (TransactionState.stateName)."""
        return _NAMES[self]

    @classmethod
    def by_name(cls, name: str) -> TxnState | None:
        for state, display in _NAMES.items():
            if display == name:
                return state
        return None


_NAMES = {
    TxnState.EMPTY: "Empty",
    TxnState.ONGOING: "Ongoing",
    TxnState.PREPARE_COMMIT: "PrepareCommit",
    TxnState.PREPARE_ABORT: "PrepareAbort",
    TxnState.COMPLETE_COMMIT: "CompleteCommit",
    TxnState.COMPLETE_ABORT: "CompleteAbort",
    TxnState.DEAD: "Dead",
    TxnState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}

S = TxnState
COMPLETE = (S.COMPLETE_COMMIT, S.COMPLETE_ABORT)
PREPARING = (S.PREPARE_COMMIT, S.PREPARE_ABORT)
AT_REST = (S.EMPTY, *COMPLETE)

VALID_PREVIOUS: dict[TxnState, tuple[TxnState, ...]] = {
    S.EMPTY: (S.EMPTY, *COMPLETE),
    S.ONGOING: (S.ONGOING, S.EMPTY, *COMPLETE),
    S.PREPARE_COMMIT: (S.ONGOING,),
    # from rest too: transaction version 2 aborts with an epoch bump whatever the state
    S.PREPARE_ABORT: (S.ONGOING, S.PREPARE_EPOCH_FENCE, S.EMPTY, *COMPLETE),
    S.COMPLETE_COMMIT: (S.PREPARE_COMMIT,),
    S.COMPLETE_ABORT: (S.PREPARE_ABORT,),
    S.DEAD: (S.EMPTY, *COMPLETE),
    S.PREPARE_EPOCH_FENCE: (S.ONGOING,),
}

TopicPartition = tuple[str, int]


def epoch_exhausted(epoch: int) -> bool:
    """Kafka keeps the last epoch for fencing a zombie: a producer at MAX-1 gets a new id."""
    return epoch >= MAX_EPOCH - 1


@dataclass
class TransactionMetadata:
    """One transactional id. ``last_producer_epoch`` lives in memory only (as in Kafka):
    it recognises the retry of an InitProducerId whose answer was lost."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: set[TopicPartition] = field(default_factory=set)
    start_ms: int = -1
    last_update_ms: int = -1
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID  # TV2: the id a Complete record switches to
    client_transaction_version: int = 0  # 2: the client ends transactions with EndTxn v5+

    def sorted_partitions(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The partitions grouped by topic, in a stable order (as the record holds them)."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(self.partitions):
            by_topic.setdefault(topic, []).append(partition)
        return tuple((topic, tuple(ids)) for topic, ids in by_topic.items())

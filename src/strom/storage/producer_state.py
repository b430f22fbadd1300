"""Idempotent-producer bookkeeping for one partition.

Rules, as Kafka's ProducerStateManager applies them (KIP-98, KIP-360):

* A batch carries (producer_id, producer_epoch, base_sequence). Batches without a
  producer id (-1) are not tracked.
* An epoch older than the one we know is fenced: INVALID_PRODUCER_EPOCH.
* A newer epoch starts over: its first batch must have sequence 0.
* Same epoch: a batch whose sequence range equals one of the last five we appended is a
  retry. It is acknowledged with the offsets it got the first time and not appended again.
  (Five matches `max.in.flight.requests.per.connection`: Jepsen found duplicates in
  Redpanda before it kept that window.)
* Otherwise the first sequence must follow the last one (wrapping at 2^31-1 to 0), else
  OUT_OF_ORDER_SEQUENCE_NUMBER: the producer lost a batch and must not skip ahead.
* A producer id we have never seen (or whose state expired) may start at any sequence.
* Expiry (`producer.id.expiration.ms`): a producer whose last batch is stamped longer ago
  than the expiration is forgotten, unless it has a transaction open (none can be yet:
  `ProducerEntry.txn_first_offset` is the hook). Without it the state, and every
  snapshot, grows by one entry per producer id ever seen, for as long as the log lives.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from strom.protocol.records import BatchHeader
from strom.storage.producer_snapshot import SnapshotEntry

DEDUP_WINDOW = 5
_INT_MAX = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class BatchMeta:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque[BatchMeta] = field(default_factory=lambda: deque(maxlen=DEDUP_WINDOW))
    last_timestamp: int = -1
    txn_first_offset: int = -1  # first offset of an open transaction; -1: none
    coordinator_epoch: int = -1  # of the last transaction marker written for it

    def expired(self, now_ms: int, expiration_ms: int) -> bool:
        """Kafka's rule: idle for the expiration and no transaction open (an open
        transaction's producer must stay known until its marker is written)."""
        return self.txn_first_offset < 0 and now_ms - self.last_timestamp >= expiration_ms

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


class SequenceError(Exception):
    """A batch refused for its producer id, epoch or sequence, with Kafka's error code."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A retried batch: answer with where it was first written."""

    first_offset: int
    last_offset: int
    timestamp: int


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.ongoing: dict[int, int] = {}  # pid -> first offset of its open transaction

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest open transaction: read_committed stops there."""
        return min(self.ongoing.values()) if self.ongoing else None

    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> None:
        """A transaction marker from the coordinator: refused if it comes from an older
        producer epoch or an older coordinator (a zombie coordinator's late marker)."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if producer_epoch < entry.epoch:
            raise SequenceError(ErrorCode.invalid_producer_epoch,
                                f"marker epoch {producer_epoch} is older than {entry.epoch} "
                                f"for producer {producer_id}")
        if coordinator_epoch < entry.coordinator_epoch:
            raise SequenceError(ErrorCode.transaction_coordinator_fenced,
                                f"coordinator epoch {coordinator_epoch} is older than "
                                f"{entry.coordinator_epoch} for producer {producer_id}")

    def complete_txn(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                     timestamp: int) -> int | None:
        """A marker was appended: the producer's transaction ends here. Returns the
        transaction's first offset in this partition (None if none was open)."""
        entry = self.producers.get(producer_id)
        if entry is None or producer_epoch > entry.epoch:
            first = entry.txn_first_offset if entry is not None else -1
            entry = ProducerEntry(epoch=producer_epoch, txn_first_offset=first)
            self.producers[producer_id] = entry
        first = entry.txn_first_offset
        entry.txn_first_offset = -1
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = timestamp
        self.ongoing.pop(producer_id, None)
        return first if first >= 0 else None

    def check(self, header: BatchHeader) -> Duplicate | None:
        """Validate a batch before append; returns a Duplicate for an already-written one."""
        if header.producer_id < 0:
            return None
        entry = self.producers.get(header.producer_id)
        if entry is None:
            return None
        if header.producer_epoch < entry.epoch:
            raise SequenceError(
                ErrorCode.invalid_producer_epoch,
                f"epoch {header.producer_epoch} is older than {entry.epoch} for producer "
                f"{header.producer_id}",
            )
        if entry.txn_first_offset >= 0 and not header.is_transactional:
            raise SequenceError(ErrorCode.invalid_txn_state,
                                f"producer {header.producer_id} has a transaction open; "
                                "a non-transactional batch cannot join it")
        if header.producer_epoch > entry.epoch:
            # no sequence (-1): the group coordinator's transactional offsets, which Kafka
            # appends without sequence checks; clients' batches always carry one
            if header.base_sequence > 0:
                raise SequenceError(
                    ErrorCode.out_of_order_sequence_number,
                    f"new epoch {header.producer_epoch} must start at sequence 0, "
                    f"got {header.base_sequence}",
                )
            return None
        for meta in entry.batches:
            if meta.first_seq == header.base_sequence and meta.last_seq == header.last_sequence:
                return Duplicate(meta.first_offset, meta.last_offset, meta.timestamp)
        expected = 0 if entry.last_seq == _INT_MAX else entry.last_seq + 1
        if entry.batches and header.base_sequence != expected:
            raise SequenceError(
                ErrorCode.out_of_order_sequence_number,
                f"producer {header.producer_id} expected sequence {expected}, "
                f"got {header.base_sequence}",
            )
        return None

    def record(self, header: BatchHeader, first_offset: int, timestamp: int) -> None:
        """Remember a batch once appended (also used when replaying the log on startup)."""
        if header.producer_id < 0:
            return
        entry = self.producers.get(header.producer_id)
        if entry is None or header.producer_epoch > entry.epoch:
            first = entry.txn_first_offset if entry is not None else -1
            coordinator_epoch = entry.coordinator_epoch if entry is not None else -1
            entry = ProducerEntry(epoch=header.producer_epoch, txn_first_offset=first,
                                  coordinator_epoch=coordinator_epoch)
            self.producers[header.producer_id] = entry
        elif header.producer_epoch < entry.epoch:
            return
        if header.is_transactional and not header.is_control and entry.txn_first_offset < 0:
            entry.txn_first_offset = first_offset
            self.ongoing[header.producer_id] = first_offset
        if header.base_sequence < 0:
            return
        entry.batches.append(
            BatchMeta(
                header.base_sequence,
                header.last_sequence,
                first_offset,
                first_offset + header.last_offset_delta,
                timestamp,
            )
        )
        entry.last_timestamp = timestamp

    def truncate(self) -> None:
        self.producers.clear()
        self.ongoing.clear()

    def remove_expired(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers idle for `expiration_ms` (see module docstring); returns how
        many. Their next batch is judged as a new producer's: any sequence is accepted."""
        expired = [pid for pid, entry in self.producers.items()
                   if entry.expired(now_ms, expiration_ms)]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    def to_snapshot(self) -> list[SnapshotEntry]:
        entries = []
        for pid, entry in self.producers.items():
            if entry.batches:
                last = entry.batches[-1]
                seq, offset, delta = last.last_seq, last.last_offset, (
                    last.last_offset - last.first_offset)
            elif entry.coordinator_epoch >= 0 or entry.txn_first_offset >= 0:
                seq, offset, delta = -1, -1, 0  # known only by its transaction markers
            else:
                continue
            entries.append(SnapshotEntry(pid, entry.epoch, seq, offset, delta,
                                         entry.last_timestamp, entry.coordinator_epoch,
                                         entry.txn_first_offset))
        return entries

    def load_snapshot(self, entries: list[SnapshotEntry]) -> None:
        """Restore the last batch of each producer (the window shrinks to one, as in Kafka)."""
        self.producers.clear()
        self.ongoing.clear()
        for e in entries:
            entry = ProducerEntry(epoch=e.epoch, last_timestamp=e.timestamp,
                                  txn_first_offset=e.txn_first_offset,
                                  coordinator_epoch=e.coordinator_epoch)
            span = e.offset_delta
            first_seq = (e.last_sequence - span) & _INT_MAX if e.last_sequence >= 0 else -1
            if e.last_offset >= 0:
                entry.batches.append(
                    BatchMeta(first_seq, e.last_sequence, e.last_offset - span, e.last_offset,
                              e.timestamp)
                )
            self.producers[e.producer_id] = entry
            if e.txn_first_offset >= 0:
                self.ongoing[e.producer_id] = e.txn_first_offset

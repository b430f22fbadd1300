"""Reading one `__consumer_offsets` partition into a shard, record by record.

Each record is decoded into the types of `records` and handed to the shard's `replay`,
the same function that applies the records operations write. Decoding is this
module's part: what cannot be decoded never reaches the shard.

The fold must survive any content: the topic may hold records an older broker wrote, a
damaged disk, or (before Strom refused client writes to internal topics) a hostile
client. A record it cannot decode is skipped, counted and logged, and the rest of the
partition still loads, so one bad record never costs more than its own group's state
and never stops a broker from starting.

Kafka's CoordinatorLoaderImpl ignores an unknown record type (key version) with a
warning: newer record types (KIP-848 consumer groups, share and streams groups) or a
left-over from an aborted upgrade. Strom does the same, and goes further for the rest
(a truncated value, garbage, a batch whose payload cannot be decompressed), which
Kafka turns into a failed load of the whole partition.

Logging is bounded: one line per batch with skipped records (its offsets, how many, the
first reason), at most `MAX_LOGGED_BATCHES` such lines per load, and one summary line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from strom.coordinator.group import codec, records, records_848
from strom.coordinator.group.config import LogRecord, MarkerEntry, UnreadableBatch
from strom.coordinator.share import records as share_records

log = logging.getLogger(__name__)
MAX_LOGGED_BATCHES = 10
T = TypeVar("T")

# Why a record was skipped; the label of strom_coordinator_skipped_records_total.
UNREADABLE_BATCH = "unreadable_batch"
UNKNOWN_TYPE = "unknown_type"
BAD_KEY = "bad_key"
BAD_VALUE = "bad_value"


class _Skip(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _BatchSkips:
    """Records skipped in the batch being read, reported in one line when it ends."""

    batch: int
    first: int
    last: int
    reasons: Counter[str]
    message: str


@dataclass
class PartitionLoad:
    """One partition's replay into ``replay`` (a shard's): what it read, what it skipped.

    ``replay`` raising anything is not a skip: the load fails (see `GroupCoordinator.load`).
    """

    partition: int
    replay: Callable[[records.Record], None]
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    _pending: _BatchSkips | None = None
    _logged: int = 0
    _unlogged: int = 0

    def feed(self, entry: LogRecord | UnreadableBatch | MarkerEntry) -> None:
        if isinstance(entry, MarkerEntry):
            self.replay(records.TxnMarker(entry.producer_id, entry.committed))
            return
        if isinstance(entry, UnreadableBatch):
            self._flush()
            self.skipped[UNREADABLE_BATCH] += entry.span
            self._report(logging.ERROR, "skipped the unreadable batch at offsets %d..%d: %s",
                         entry.base_offset, entry.last_offset, entry.reason)
            return
        if self._pending is not None and self._pending.batch != entry.batch:
            self._flush()
        self.read += 1
        try:
            self._apply(entry)
        except _Skip as skip:
            self._note(entry, skip)

    def finish(self) -> None:
        """Report the last batch's skips and, if anything was skipped, a summary."""
        self._flush()
        total = sum(self.skipped.values())
        if not total:
            return
        level = logging.WARNING if set(self.skipped) == {UNKNOWN_TYPE} else logging.ERROR
        reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(self.skipped.items()))
        more = f"; {self._unlogged} more batch(es) with skips not logged" if self._unlogged else ""
        log.log(level, "__consumer_offsets-%d loaded with %d record(s) skipped (%s)%s: their "
                "groups may have lost offsets or metadata", self.partition, total, reasons, more)

    # --- one record -------------------------------------------------------------------

    def _apply(self, entry: LogRecord) -> None:
        if entry.key is not None and records_848.record_type(entry.key) is not None:
            value = entry.value
            self.replay(_decode(BAD_VALUE, lambda k: records_848.decode(k, value), entry.key))
            return
        if entry.key is not None and share_records.record_type(entry.key) is not None:
            value = entry.value
            self.replay(_decode(BAD_VALUE, lambda k: share_records.decode(k, value), entry.key))
            return
        key = _decode(BAD_KEY, codec.decode_key, entry.key)
        value = entry.value
        record: records.Record
        if isinstance(key, codec.OffsetKey):
            record = records.OffsetRecord(key, None if value is None else
                                          _decode(BAD_VALUE, codec.decode_offset_value, value),
                                          entry.producer_id)
        else:
            record = records.GroupRecord(key, None if value is None else
                                         _decode(BAD_VALUE, codec.decode_group_value, value))
        self.replay(record)

    # --- reporting --------------------------------------------------------------------

    def _note(self, entry: LogRecord, skip: _Skip) -> None:
        self.skipped[skip.reason] += 1
        pending = self._pending
        if pending is None:
            self._pending = _BatchSkips(entry.batch, entry.offset, entry.offset,
                                        Counter({skip.reason: 1}), str(skip))
            return
        pending.last = entry.offset
        pending.reasons[skip.reason] += 1

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        count = sum(pending.reasons.values())
        # As Kafka: an unknown record type is a warning, anything else an error.
        level = logging.WARNING if set(pending.reasons) == {UNKNOWN_TYPE} else logging.ERROR
        self._report(level, "skipped %d record(s) of the batch at offset %d (offsets %d..%d): %s",
                     count, pending.batch, pending.first, pending.last, pending.message)

    def _report(self, level: int, message: str, *args: object) -> None:
        if self._logged >= MAX_LOGGED_BATCHES:
            self._unlogged += 1
            return
        self._logged += 1
        log.log(level, "__consumer_offsets-%d: " + message, self.partition, *args)


def _decode(reason: str, decoder: Callable[[bytes], T], data: bytes | None) -> T:
    if data is None:
        raise _Skip(reason, "record without a key")
    try:
        return decoder(data)
    except codec.UnknownRecordType as exc:
        raise _Skip(UNKNOWN_TYPE, f"{exc}; ignored, as Kafka does") from exc
    except codec.CodecError as exc:
        raise _Skip(reason, str(exc)) from exc

"""Timestamp extractors: which time a record has for windows, joins and stream time.

Kafka Streams reads event time through a `TimestampExtractor`, called with the record
(already deserialized) and the partition's time so far (the largest timestamp seen on its
partition, -1 before the first). The built-in ones behave as Kafka's:

- `FailOnInvalidTimestamp` (the default): the record's own timestamp; a negative one stops
  the task with `InvalidTimestampError`.
- `LogAndSkipOnInvalidTimestamp`: a negative timestamp drops the record (logged).
- `UsePartitionTimeOnInvalidTimestamp`: a negative timestamp becomes the partition time.
- `WallclockTimestampExtractor`: processing time, from the task's clock.

Any callable `(record, partition_time) -> int` works as an extractor too; a negative
result drops the record, as Kafka's RecordQueue does.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from strom.streams.errors import InvalidTimestampError
from strom.streams.record import Record

log = logging.getLogger(__name__)


class TimestampExtractor(Protocol):
    def __call__(self, record: Record, partition_time: int) -> int: ...


class FailOnInvalidTimestamp:
    """The record's timestamp; negative ones are an error (Kafka's default extractor)."""

    def __call__(self, record: Record, partition_time: int) -> int:
        if record.timestamp < 0:
            raise InvalidTimestampError(
                f"record {record.topic}-{record.partition}@{record.offset} has invalid "
                f"(negative) timestamp {record.timestamp}")
        return record.timestamp


class LogAndSkipOnInvalidTimestamp:
    """The record's timestamp; a negative one is logged and the record dropped."""

    def __call__(self, record: Record, partition_time: int) -> int:
        if record.timestamp < 0:
            log.warning("skipping record %s-%s@%s: negative timestamp %s", record.topic,
                        record.partition, record.offset, record.timestamp)
        return record.timestamp


class UsePartitionTimeOnInvalidTimestamp:
    """The record's timestamp, or the partition time when that is negative."""

    def __call__(self, record: Record, partition_time: int) -> int:
        if record.timestamp >= 0:
            return record.timestamp
        if partition_time < 0:
            raise InvalidTimestampError("negative timestamp and no partition time yet")
        return partition_time


class WallclockTimestampExtractor:
    """Processing time: the wall clock when the record is read."""

    def __call__(self, record: Record, partition_time: int) -> int:
        return time.time_ns() // 1_000_000

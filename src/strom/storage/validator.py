"""Validation of a client's produce payload for one partition, as Kafka's LogValidator.

A batch whose CRC is right can still be poison: a record count that lies, records that
do not parse, a compressed payload that is garbage or expands to gigabytes, offset deltas
that jump by 2^31, timestamps out of bounds. Kafka parses every record of every batch a
client sends before anything is written, and so does this module; the log then stores
the bytes as received (no re-encoding), so a batch that passes here is one every client
and every replay can read.

Kafka's rules, in its order (UnifiedLog.analyzeAndValidateRecords, then LogValidator):
one batch per partition (v3+ produce); magic 2; size within max.message.bytes; CRC;
`records_count == last_offset_delta + 1 > 0`; no control batches from clients; a
producer id needs a sequence; every record parses, fills the batch exactly and has the
offset delta of its position; CreateTime timestamps within the
`message.timestamp.before/after.max.ms` window; compacted topics need keys. The batch's
max timestamp is corrected from the records when it lies, as Kafka rewrites it.

Errors: framing and CRC problems are CORRUPT_MESSAGE (Kafka's CorruptRecordException);
record-level problems INVALID_RECORD (InvalidRecordException), with the failing record's
index in ``record_errors`` where Kafka reports one.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from strom.protocol import compression, record_walk
from strom.protocol.records import (
    HEADER_SIZE,
    BatchHeader,
    Codec,
    InvalidBatch,
    crc_of,
    decode_records,
    patch_max_timestamp,
    read_header,
)

NO_TIMESTAMP = -1
Payload = bytes | bytearray | memoryview
_MAX_RECORD_ERRORS = 100  # a response listing a million bad records helps nobody


@dataclass(frozen=True)
class RecordPolicy:
    """The topic and broker settings a client's batch is checked against."""

    max_message_bytes: int = 1048588
    log_append_time: bool = False
    timestamp_before_max_ms: int = 2**63 - 1
    timestamp_after_max_ms: int = 3600000
    compacted: bool = False
    decompression_max_bytes: int = 64 * 1024 * 1024


class InvalidProduce(Exception):
    """The payload is refused; ``error`` is Kafka's error code for the partition."""

    def __init__(self, error: ErrorCode, message: str,
                 record_errors: tuple[tuple[int, str], ...] = ()) -> None:
        super().__init__(message)
        self.error = error
        self.record_errors = record_errors


def validate_client_batch(payload: Payload, policy: RecordPolicy, now_ms: int) -> BatchHeader:
    """Check a produce payload for one partition; return its (possibly corrected) header.

    May patch `payload` in place (the max timestamp, with a new CRC) when it is writable
    (a bytearray, or a slice of the request's frame) and the batch's max timestamp
    disagrees with its records. Nothing is copied but what decompression produces.
    """
    header = _check_framing(payload, policy)
    _check_batch(header)
    summary = _walk_records(payload, header, policy)
    if policy.log_append_time:
        return header
    if header.uses_log_append_time:
        raise InvalidProduce(ErrorCode.invalid_timestamp, "Producer should not set timestamp type to "
                             "LogAppendTime on a CreateTime topic", ((0, "LogAppendTime set by producer"),))
    _check_timestamps(payload, header, summary, policy, now_ms)
    return _correct_max_timestamp(payload, header, summary)


def _check_framing(payload: Payload, policy: RecordPolicy) -> BatchHeader:
    if not payload:
        raise InvalidProduce(ErrorCode.corrupt_message, "empty record set")
    try:
        header = read_header(payload)
    except InvalidBatch as exc:
        if exc.reason == ErrorCode.unsupported_for_message_format:  # Kafka 4: v3+ produce is magic 2
            raise InvalidProduce(ErrorCode.invalid_record, "Produce requests with version 3 and above "
                                 "are only allowed to contain record batches with magic "
                                 "version 2") from None
        raise InvalidProduce(exc.reason, str(exc)) from None
    if header.size > len(payload):
        raise InvalidProduce(ErrorCode.corrupt_message, "batch extends past the end of the record set")
    if header.size < len(payload):
        raise InvalidProduce(ErrorCode.invalid_record, "Produce requests with version 3 and above are "
                             "only allowed to contain exactly one record batch per partition")
    if header.size > policy.max_message_bytes:
        raise InvalidProduce(ErrorCode.message_too_large, f"batch of {header.size} bytes exceeds "
                             f"max.message.bytes {policy.max_message_bytes}")
    if crc_of(payload, 0, header.size) != header.crc:
        raise InvalidProduce(ErrorCode.corrupt_message, "Record is corrupt (CRC-32C mismatch)")
    return header


def _check_batch(header: BatchHeader) -> None:
    if header.codec > Codec.ZSTD:
        raise InvalidProduce(ErrorCode.corrupt_message, f"unknown compression codec {header.codec}")
    if header.last_offset_delta < 0 or header.records_count <= 0:
        raise InvalidProduce(ErrorCode.invalid_record, f"Invalid reported count for record batch: "
                             f"{header.records_count} (last offset delta "
                             f"{header.last_offset_delta})")
    if header.records_count != header.last_offset_delta + 1:
        raise InvalidProduce(ErrorCode.invalid_record, f"Inconsistent batch offset range [0, "
                             f"{header.last_offset_delta}] and count of records "
                             f"{header.records_count}")
    if header.is_control:
        raise InvalidProduce(ErrorCode.invalid_record, "Clients are not allowed to write control records")
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise InvalidProduce(ErrorCode.invalid_record, f"Invalid sequence number {header.base_sequence} "
                             f"in record batch with producerId {header.producer_id}")


def _walk_records(payload: Payload, header: BatchHeader,
                  policy: RecordPolicy) -> record_walk.RecordsSummary:
    body: bytes | memoryview = memoryview(payload)[HEADER_SIZE:header.size]
    if header.codec != Codec.NONE:
        try:
            body = compression.decompress(header.codec, body, policy.decompression_max_bytes)
        except compression.DecompressionError as exc:
            raise InvalidProduce(ErrorCode.corrupt_message, f"cannot decompress the batch: {exc}") from None
    try:
        summary = record_walk.walk(body, header.records_count)
    except record_walk.RecordWalkError as exc:
        raise InvalidProduce(ErrorCode.invalid_record, f"record {exc.index}: {exc}",
                             ((exc.index, str(exc)),)) from None
    if policy.compacted and summary.first_null_key >= 0:
        index = summary.first_null_key
        raise InvalidProduce(ErrorCode.invalid_record, "Compacted topic cannot accept message without key",
                             ((index, "Compacted topic cannot accept message without key"),))
    return summary


def _check_timestamps(payload: Payload, header: BatchHeader, summary: record_walk.RecordsSummary,
                      policy: RecordPolicy, now_ms: int) -> None:
    if header.base_timestamp == NO_TIMESTAMP:
        return
    lowest = header.base_timestamp + summary.min_timestamp_delta
    highest = header.base_timestamp + summary.max_timestamp_delta
    earliest = now_ms - policy.timestamp_before_max_ms
    latest = now_ms + policy.timestamp_after_max_ms
    if lowest >= earliest and highest <= latest:
        return
    errors = _timestamp_errors(payload, policy, earliest, latest)
    raise InvalidProduce(ErrorCode.invalid_timestamp, errors[0][1] if errors else "timestamp out of range",
                         errors)


def _timestamp_errors(payload: Payload, policy: RecordPolicy, earliest: int,
                      latest: int) -> tuple[tuple[int, str], ...]:
    """Which records are out of bounds (Kafka lists each): decoded only on this error path."""
    found = []
    for index, record in enumerate(decode_records(payload, policy.decompression_max_bytes)):
        if record.timestamp != NO_TIMESTAMP and not earliest <= record.timestamp <= latest:
            found.append((index, f"Timestamp {record.timestamp} of message with offset {index} "
                                 f"is out of range. The timestamp should be within "
                                 f"[{earliest}, {latest}]"))
            if len(found) >= _MAX_RECORD_ERRORS:
                break
    return tuple(found)


def _correct_max_timestamp(payload: Payload, header: BatchHeader,
                           summary: record_walk.RecordsSummary) -> BatchHeader:
    """Kafka sets a batch's max timestamp from its records; a lying one would mislead the
    time index and ListOffsets by timestamp."""
    if header.base_timestamp == NO_TIMESTAMP:
        return header
    actual = header.base_timestamp + summary.max_timestamp_delta
    if actual == header.max_timestamp or isinstance(payload, bytes) or (
            isinstance(payload, memoryview) and payload.readonly):
        return header  # nothing to correct, or a buffer that cannot be patched
    patch_max_timestamp(payload, 0, header.size, actual)
    return header._replace(max_timestamp=actual, crc=crc_of(payload, 0, header.size))


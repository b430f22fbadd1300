"""Replay of a real `__consumer_offsets` log that holds batches no coordinator wrote.

`PartitionOffsetsLog.replay` reads a log on disk (the storage API, no broker) in which
hostile batches sit between good ones. It must yield every good record, an
`UnreadableBatch` for each bad batch, and raise for none of them: a zstd bomb is cut at
the decompression cap, a lying record count is refused before decoding.
"""

from __future__ import annotations

import resource
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from strom.broker.hosts import group_host
from strom.broker.hosts.group_host import PartitionOffsetsLog
from strom.coordinator.group import codec
from strom.coordinator.group.config import LogRecord, MarkerEntry, UnreadableBatch
from strom.protocol import records
from strom.storage import Log, LogConfig
from support.offsets_topic import ZSTD, append_raw, commit_record, hostile_batches, raw_batch, zstd_bomb


class _Target:
    """The slice of `Partition` replay uses, over a real log."""

    index = 0

    def __init__(self, log: Log, refused: range = range(0),
                 error: ErrorCode = ErrorCode.corrupt_message) -> None:
        self.log = log
        self.high_watermark = log.log_end_offset
        self.refused = refused  # offsets whose batch storage refuses, answering `error`
        self.error = error

    def read(self, offset: int, max_bytes: int, **_: Any) -> Any:
        if offset in self.refused:
            return SimpleNamespace(records=b"", error=self.error)
        data = self.log.read(offset, max_bytes).data
        for pos, header in records.scan_batches(data):  # served up to the damage
            if header.base_offset in self.refused:
                data = data[:pos]
                break
        return SimpleNamespace(records=data, error=ErrorCode.none)


def replay(partition_dir: Path, **target: Any) -> list[LogRecord | UnreadableBatch]:
    log = Log.open(partition_dir, LogConfig(), clean_shutdown=True)
    try:
        part = _Target(log, **target)
        partitions: Any = SimpleNamespace(get=lambda t, p: part)
        return list(PartitionOffsetsLog(partitions, lambda: 0).replay(0))
    finally:
        log.close()


def good(offset_value: int) -> bytes:
    return records.encode_batch([commit_record("g", "t", 0, offset_value)])


def test_every_hostile_batch_is_reported_and_the_good_ones_around_it_are_read(
        tmp_path: Path) -> None:
    partition_dir = tmp_path / "__consumer_offsets-0"
    hostile = hostile_batches()
    append_raw(partition_dir, [good(1), *hostile.values(), good(2)])
    entries = replay(partition_dir)
    unreadable = [e for e in entries if isinstance(e, UnreadableBatch)]
    readable = [e for e in entries if isinstance(e, LogRecord)]
    # three batches cannot be opened; the other hostile ones open into bad records,
    # which the coordinator's fold skips (tests/unit/coordinator/test_replay_load.py)
    assert len(unreadable) == 3, unreadable
    assert "Unknown frame descriptor" in unreadable[0].reason or "codec 4" in unreadable[0].reason
    assert "2000000 records" in unreadable[2].reason
    assert [e.offset for e in readable] == [0, 6, 7, 8, 9, 10, 11]
    first, last = (codec.decode_offset_value(e.value or b"") for e in (readable[0], readable[-1]))
    assert (first.offset, last.offset) == (1, 2)


def test_a_zstd_bomb_is_cut_at_the_decompression_cap(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_host, "REPLAY_MAX_DECOMPRESSED", 4 << 20)
    partition_dir = tmp_path / "__consumer_offsets-0"
    append_raw(partition_dir, [raw_batch(zstd_bomb(256 << 20), count=1, attributes=ZSTD), good(5)])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    entries = replay(partition_dir)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert isinstance(entries[0], UnreadableBatch) and "exceeds" in entries[0].reason
    assert isinstance(entries[1], LogRecord) and entries[1].offset == 1
    assert grown_mb < 64, f"peak RSS grew by {grown_mb:.0f} MB for a 256 MiB bomb"


def test_a_batch_with_a_wrong_crc_is_skipped_not_decoded() -> None:
    batch = bytearray(good(3))
    batch[-1] ^= 0xFF  # damage the last value byte; the header still frames the batch
    header = records.read_header(batch)
    (entry,) = group_host._batch_entries(bytes(batch), 0, header, 0)
    assert isinstance(entry, UnreadableBatch) and entry.reason == "CRC-32C mismatch"


def test_a_batch_storage_refuses_as_corrupt_is_stepped_over(tmp_path: Path) -> None:
    partition_dir = tmp_path / "__consumer_offsets-0"
    append_raw(partition_dir, [good(1), records.encode_batch([commit_record("g", "t", 0, 2)] * 3),
                               good(3)])
    entries = replay(partition_dir, refused=range(1, 4))
    assert entries[1] == UnreadableBatch(1, 3, entries[1].reason)  # type: ignore[union-attr]
    assert [e.offset for e in entries if isinstance(e, LogRecord)] == [0, 4]


def test_a_log_that_cannot_be_read_fails_the_replay(tmp_path: Path) -> None:
    partition_dir = tmp_path / "__consumer_offsets-0"
    append_raw(partition_dir, [good(1), good(2)])
    with pytest.raises(group_host.OffsetsLogUnreadable, match="kafka_storage_error"):
        replay(partition_dir, refused=range(1, 2), error=ErrorCode.kafka_storage_error)


def test_bytes_that_do_not_frame_as_a_batch_end_the_replay_with_a_report(
        tmp_path: Path) -> None:
    partition_dir = tmp_path / "__consumer_offsets-0"
    append_raw(partition_dir, [good(1)])
    log = Log.open(partition_dir, LogConfig(), clean_shutdown=True)
    target = _Target(log)
    junk = bytearray(good(2))
    junk[16] = 9  # magic 9: not a batch at all
    target.read = lambda offset, max_bytes, **_: SimpleNamespace(  # type: ignore[method-assign]
        records=bytes(junk), error=ErrorCode.none)
    target.log = SimpleNamespace(log_start_offset=0, log_end_offset=5)  # type: ignore[assignment]
    partitions: Any = SimpleNamespace(get=lambda t, p: target)
    entries = list(PartitionOffsetsLog(partitions, lambda: 0).replay(0))
    log.close()
    assert len(entries) == 1 and isinstance(entries[0], UnreadableBatch)
    assert (entries[0].base_offset, entries[0].last_offset) == (0, 4)


_FIELDS = struct.Struct(">hiqqqhii")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_batch_with_a_valid_crc_yields_entries_and_never_raises(data: st.DataObject) -> None:
    """Random header fields and random or mutated bodies, CRC recomputed each time."""
    body = data.draw(st.one_of(
        st.binary(max_size=300),
        st.just(good(1)[records.HEADER_SIZE:]).map(lambda b: bytes(
            x ^ data.draw(st.sampled_from([0, 0, 0, 1, 0x80])) for x in b)),
    ))
    attributes = data.draw(st.sampled_from([0, 1, 2, 3, 4, 7, 0x10, 0x20]))
    count = data.draw(st.one_of(st.integers(-2, 5), st.integers(-2**31, 2**31 - 1)))
    batch = bytearray(raw_batch(body, count=max(count, 0), attributes=attributes))
    struct.pack_into(">i", batch, 57, count)
    delta = data.draw(st.one_of(st.just(max(count - 1, 0)), st.integers(-2**31, 2**31 - 1)))
    struct.pack_into(">i", batch, 23, delta)
    struct.pack_into(">I", batch, 17, records.crc_of(batch, 0, len(batch)))
    header = records.read_header(batch)
    for entry in group_host._batch_entries(bytes(batch), 0, header, 0):
        # a control batch whose body happens to be a well-formed marker is one (hypothesis
        # drew an abort marker); any other batch yields records or is unreadable
        assert (isinstance(entry, LogRecord | UnreadableBatch)
                or (header.is_control and isinstance(entry, MarkerEntry))), entry

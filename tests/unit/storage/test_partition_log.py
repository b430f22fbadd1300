"""PartitionLog paths the property test does not drive: follower appends, a full
truncation, ListOffsets semantics and a snapshot overtaken by a truncation."""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import FakeClock

from strom.protocol.records import encode_batch, validate_batches
from strom.storage import KafkaStorageError, Log, LogConfig
from strom.storage.partition_log import (
    EARLIEST,
    LATEST,
    MAX_TIMESTAMP,
    NOT_FOUND,
    PartitionLog,
    TimestampOffset,
)
from strom.storage.producer_snapshot import snapshot_offsets


def _open(tmp_path: Path) -> PartitionLog:
    return PartitionLog(Log.open(tmp_path / "t-0", LogConfig(), clock=FakeClock()))


def _leader(plog: PartitionLog, count: int = 1, *, ts: int = 1000, pid: int = -1, seq: int = -1,
            epoch: int = 0) -> None:
    buf = bytearray(encode_batch([(None, b"v")] * count, timestamp_ms=ts, producer_id=pid,
                                 producer_epoch=0 if pid >= 0 else -1, base_sequence=seq))
    plog.append_as_leader(buf, validate_batches(buf), leader_epoch=epoch)


def _from_leader(base: int, epoch: int, *, pid: int = -1, seq: int = -1) -> bytes:
    """A batch as a leader serves it: offsets and partition leader epoch assigned."""
    buf = bytearray(encode_batch([(None, b"v")] * 2, base_offset=base, timestamp_ms=5,
                                 producer_id=pid, producer_epoch=0 if pid >= 0 else -1,
                                 base_sequence=seq))
    buf[12:16] = epoch.to_bytes(4, "big")  # partitionLeaderEpoch is outside the CRC
    return bytes(buf)


def test_follower_appends_take_the_leaders_epochs_and_producers(tmp_path: Path) -> None:
    plog = _open(tmp_path)
    plog.append_as_follower(_from_leader(0, 3) + _from_leader(2, 5, pid=4, seq=0))
    assert plog.latest_epoch == 5
    assert plog.end_offset_for_epoch(3) == (3, 2)
    assert plog.end_offset_for_epoch(4) == (3, 2)
    assert plog.end_offset_for_epoch(9) == (5, 4)
    assert [(e.producer_id, e.last_offset) for e in plog.producers.to_snapshot()] == [(4, 3)]


def test_a_full_truncation_forgets_epochs_producers_and_snapshots(tmp_path: Path) -> None:
    plog = _open(tmp_path)
    _leader(plog, 3, pid=4, seq=0, epoch=2)
    writer = plog.producer_snapshot_writer()
    assert writer is not None
    writer()
    assert snapshot_offsets(plog.log.dir) == [3]
    plog.truncate_fully_and_start_at(100)
    assert (plog.log_start_offset, plog.log_end_offset, plog.latest_epoch) == (100, 100, -1)
    assert plog.producers.to_snapshot() == []
    assert snapshot_offsets(plog.log.dir) == []
    plog.log.close()
    again = PartitionLog(Log.open(plog.log.dir, LogConfig(), log_start_offset=100))
    assert again.latest_epoch == -1 and again.producers.to_snapshot() == []


def test_a_snapshot_captured_before_a_truncation_is_not_written(tmp_path: Path) -> None:
    plog = _open(tmp_path)
    _leader(plog, 2, pid=4, seq=0)
    _leader(plog, 2, pid=4, seq=2)
    writer = plog.producer_snapshot_writer()  # captured on the loop at offset 4 ...
    assert writer is not None
    plog.truncate_to(2)  # ... the log is truncated before the worker writes it
    writer()
    assert snapshot_offsets(plog.log.dir) == []
    assert [e.last_sequence for e in plog.producers.to_snapshot()] == [1]


def test_list_offset_semantics(tmp_path: Path) -> None:
    plog = _open(tmp_path)
    for ts in (1000, 3000, 2000):
        _leader(plog, 2, ts=ts)
    plog.delete_records_before(1)
    assert plog.list_offset(EARLIEST, high_watermark=4) == TimestampOffset(-1, 1)
    assert plog.list_offset(LATEST, high_watermark=4) == TimestampOffset(-1, 4)
    assert plog.list_offset(MAX_TIMESTAMP, high_watermark=4) == TimestampOffset(3000, 2)
    assert plog.list_offset(1500, high_watermark=6) == TimestampOffset(3000, 2)
    assert plog.list_offset(1500, high_watermark=2) == NOT_FOUND  # not below the HW yet
    assert plog.list_offset(999, high_watermark=6) == TimestampOffset(1000, 1)
    assert plog.list_offset(3001, high_watermark=6) == NOT_FOUND
    plog.log.take_offline("test")
    with pytest.raises(KafkaStorageError):
        plog.list_offset(EARLIEST, high_watermark=4)


def test_epochs_follow_the_log_start_after_retention(tmp_path: Path) -> None:
    clock = FakeClock()
    plog = PartitionLog(Log.open(tmp_path / "t-0", LogConfig(segment_bytes=200),
                                 clock=clock))
    for epoch in range(4):
        _leader(plog, 2, epoch=epoch)
        plog.log.roll()
    plog.log.update_config(LogConfig(segment_bytes=200, retention_bytes=0))
    plog.log.enforce_retention(clock(), high_watermark=5)  # the LogManager's path
    assert plog.log_start_offset == 4
    assert plog.end_offset_for_epoch(1) == (-1, -1)
    assert plog.end_offset_for_epoch(2) == (2, 6)
    assert plog.end_offset_for_epoch(3) == (3, 8)

"""Retention, DeleteRecords and truncation: what goes, and what the offsets become."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from storage_helpers import FakeClock, append, batch, headers_of, read_all, values_of

from strom.storage import Log, LogConfig, OffsetOutOfRange

OpenLog = Callable[..., Log]

SEGMENT = LogConfig(segment_bytes=500)  # ~4 small batches per segment


def _fill(log: Log, n: int, *, timestamp: int = 1000, step: int = 0) -> None:
    for i in range(n):
        append(log, batch(1, value_size=50, timestamp=timestamp + i * step, tag=i))


def _log_files(log: Log) -> list[str]:
    return sorted(n for n in os.listdir(log.dir) if n.endswith(".log"))


def test_retention_by_time_deletes_old_segments(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(LogConfig(segment_bytes=500, retention_ms=10_000))
    start = clock.now - 40_000
    _fill(log, 20, timestamp=start, step=2000)  # offset i stamped 40 s - 2i s ago
    bases = [s.base_offset for s in log.segments] + [20]
    assert len(bases) >= 5
    newest = [start + 2000 * (bases[i + 1] - 1) for i in range(len(bases) - 1)]
    expired = 0
    while clock.now - newest[expired] > 10_000:
        expired += 1
    assert 0 < expired < len(newest)
    assert log.enforce_retention(clock.now) == expired
    assert [s.base_offset for s in log.segments] == bases[expired:-1]
    assert log.log_start_offset == bases[expired]
    assert [o for o, _ in values_of(read_all(log))] == list(range(bases[expired], 20))
    with pytest.raises(OffsetOutOfRange):
        log.read(0, 100)
    assert log.enforce_retention(clock.now) == 0


def test_retention_by_time_empties_an_expired_log(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(LogConfig(segment_bytes=500, retention_ms=1000))
    _fill(log, 10, timestamp=clock.now - 5000)
    segments = len(log.segments)
    assert log.enforce_retention(clock.now) == segments  # the active one too, after a roll
    assert [s.base_offset for s in log.segments] == [10]
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (10, 10, 0)
    assert _log_files(log) == ["00000000000000000010.log"]
    assert log.enforce_retention(clock.now) == 0  # an empty active segment stays
    append(log, batch(1))
    assert log.read(10, 100).first_offset == 10


def test_retention_forever(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(LogConfig(segment_bytes=500, retention_ms=-1))
    _fill(log, 10, timestamp=0)
    assert log.enforce_retention(clock.now) == 0


def test_retention_by_size(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(LogConfig(segment_bytes=500, retention_ms=-1, retention_bytes=1000))
    _fill(log, 30)
    sizes = [s.size for s in log.segments]
    deleted = log.enforce_retention(clock.now)
    assert deleted > 0
    assert log.size_bytes <= 1000 + sizes[deleted]  # stops once under the limit
    assert sum(sizes[deleted - 1 :]) > 1000  # and not one segment later
    assert log.log_start_offset == log.segments[0].base_offset
    assert log.log_end_offset == 30


def test_retention_waits_for_the_high_watermark(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(LogConfig(segment_bytes=500, retention_ms=1000))
    _fill(log, 20, timestamp=0)
    second = log.segments[1].base_offset
    assert log.enforce_retention(clock.now, high_watermark=second) == 1
    assert log.log_start_offset == second
    assert log.enforce_retention(clock.now, high_watermark=second) == 0


def test_delete_records_before(open_log: OpenLog) -> None:
    log = open_log(SEGMENT)
    _fill(log, 20)
    bases = [s.base_offset for s in log.segments]
    target = bases[2] + 1
    assert log.delete_records_before(target) == target
    assert log.log_start_offset == target
    assert [s.base_offset for s in log.segments] == bases[2:]
    with pytest.raises(OffsetOutOfRange):
        log.read(target - 1, 100)
    assert log.read(target, 100).first_offset == target
    assert log.delete_records_before(3) == target  # never moves back
    with pytest.raises(OffsetOutOfRange):
        log.delete_records_before(21)
    assert log.delete_records_before(20) == 20
    assert log.read(20, 100).data == b""
    assert len(log.segments) == 1  # the active segment stays, as in Kafka


def test_truncate_to_inside_and_across_segments(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=500, index_interval_bytes=0))
    for i in range(20):
        append(log, batch(2, value_size=30, tag=i))  # batches of two offsets
    bases = [s.base_offset for s in log.segments]
    log.truncate_to(bases[2] + 3)  # mid-batch: the whole batch goes
    assert log.log_end_offset == bases[2] + 2
    assert [s.base_offset for s in log.segments] == bases[:3]
    assert headers_of(read_all(log))[-1] == (bases[2], bases[2] + 1)
    info = append(log, batch(1))
    assert info.first_offset == bases[2] + 2
    assert [o for o, _ in values_of(read_all(log))] == list(range(bases[2] + 3))
    log.truncate_to(bases[1])  # to a segment's base: it stays, empty
    assert log.log_end_offset == bases[1]
    assert log.segments[-1].size == 0
    assert _log_files(log)[-1] == f"{bases[1]:020d}.log"
    log.truncate_to(1000)  # past the end: nothing
    assert log.log_end_offset == bases[1]


def test_truncated_log_reopens_consistently(open_log: OpenLog) -> None:
    config = LogConfig(segment_bytes=500, index_interval_bytes=40)
    log = open_log(config)
    _fill(log, 30, step=10)
    log.truncate_to(17)
    append(log, batch(1, timestamp=5))
    expected = read_all(log)
    max_ts = log.max_timestamp_and_offset()
    log.close()
    again = open_log(config, clean_shutdown=True)
    assert again.log_end_offset == 18
    assert read_all(again) == expected
    assert again.max_timestamp_and_offset() == max_ts == (1000 + 16 * 10, 16)


def test_truncate_below_log_start_starts_over(open_log: OpenLog) -> None:
    log = open_log(SEGMENT)
    _fill(log, 20)
    log.delete_records_before(10)
    log.truncate_to(5)
    assert (log.log_start_offset, log.log_end_offset) == (5, 5)
    assert _log_files(log) == ["00000000000000000005.log"]


def test_truncate_fully_and_start_at(open_log: OpenLog) -> None:
    log = open_log(SEGMENT)
    _fill(log, 20)
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset, log.recovery_point) == (100, 100, 100)
    assert _log_files(log) == ["00000000000000000100.log"]
    info = append(log, batch(2))
    assert (info.first_offset, info.last_offset) == (100, 101)
    with pytest.raises(OffsetOutOfRange):
        log.read(99, 100)
    log.close()
    again = open_log(SEGMENT, log_start_offset=100, clean_shutdown=True)
    assert (again.log_start_offset, again.log_end_offset) == (100, 102)


def test_delete_removes_the_directory(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(1))
    log.delete()
    assert not log.dir.exists()
    assert os.listdir(log.dir.parent) == []

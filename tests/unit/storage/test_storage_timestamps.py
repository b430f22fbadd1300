"""ListOffsets support: offset for a timestamp, and the max timestamp (-3)."""

from __future__ import annotations

from collections.abc import Callable

from storage_helpers import append, batch, batch_with_timestamps

from strom.storage import Log, LogConfig

OpenLog = Callable[..., Log]


def _records_with_timestamps(log: Log, timestamps: list[int]) -> None:
    """One record per batch, so record and batch granularity agree."""
    for i, ts in enumerate(timestamps):
        append(log, batch(1, timestamp=ts, tag=i))


def _expected(timestamps: list[int], target: int, start: int = 0) -> tuple[int, int] | None:
    for offset, ts in enumerate(timestamps):
        if offset >= start and ts >= target:
            return offset, ts
    return None


def test_offset_for_timestamp_across_segments(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=600, index_interval_bytes=100))
    timestamps = [1000 + 10 * i for i in range(60)]
    timestamps[30] = 5  # a late record does not hide the later ones
    timestamps[31] = 99999
    _records_with_timestamps(log, timestamps)
    assert len(log.segments) > 5
    for target in (0, 5, 6, 999, 1000, 1001, 1290, 1295, 1300, 1590, 99999):
        assert log.offset_for_timestamp(target) == _expected(timestamps, target), target
    assert log.offset_for_timestamp(100000) is None


def test_offset_for_timestamp_inside_a_batch_is_record_exact(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(1, timestamp=100))
    append(log, batch_with_timestamps([200, 230, 210, 240]))  # offsets 1-4
    assert log.offset_for_timestamp(150) == (1, 200)
    assert log.offset_for_timestamp(205) == (2, 230)
    assert log.offset_for_timestamp(231) == (4, 240)
    assert log.max_timestamp_and_offset() == (240, 4)


def test_offset_for_timestamp_respects_log_start(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(5, timestamp=100))
    append(log, batch(5, timestamp=200))
    log.delete_records_before(3)
    assert log.offset_for_timestamp(0) == (3, 100)
    assert log.offset_for_timestamp(150) == (5, 200)


def test_offset_for_timestamp_with_log_append_time(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(3, timestamp=1), lat=5000)
    append(log, batch(3, timestamp=2), lat=6000)
    assert log.offset_for_timestamp(5500) == (3, 6000)
    assert log.offset_for_timestamp(0) == (0, 5000)


def test_max_timestamp_and_offset(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=300))
    assert log.max_timestamp_and_offset() == (-1, -1)
    _records_with_timestamps(log, [10, 50, 40, 50, 30, 20])
    assert len(log.segments) > 1
    assert log.max_timestamp_and_offset() == (50, 1)


def test_max_timestamp_is_the_first_record_carrying_it(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(1, timestamp=10))
    append(log, batch(4, timestamp=70))  # all four records stamped 70
    assert log.max_timestamp_and_offset() == (70, 1)
    append(log, batch_with_timestamps([80, 90, 85, 90]))  # offsets 5-8
    assert log.max_timestamp_and_offset() == (90, 6)


def test_timestamps_survive_reopen(open_log: OpenLog) -> None:
    config = LogConfig(segment_bytes=500, index_interval_bytes=50)
    log = open_log(config)
    timestamps = [(i * 37) % 101 + 1000 for i in range(50)]
    _records_with_timestamps(log, timestamps)
    before = [log.offset_for_timestamp(t) for t in range(990, 1110, 3)]
    max_before = log.max_timestamp_and_offset()
    log.close()
    for clean in (True, False):
        again = open_log(config, clean_shutdown=clean)
        assert [again.offset_for_timestamp(t) for t in range(990, 1110, 3)] == before
        assert again.max_timestamp_and_offset() == max_before
        assert before == [_expected(timestamps, t) for t in range(990, 1110, 3)]
        again.close()

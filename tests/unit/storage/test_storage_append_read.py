"""Appending batches and reading them back: offsets, slicing, limits, rolls."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import FakeClock, append, batch, headers_of, read_all, values_of

from strom.protocol.records import Attr, read_header, validate_batches
from strom.storage import InvalidAppend, Log, LogConfig, OffsetOutOfRange

OpenLog = Callable[..., Log]


def test_empty_log(open_log: OpenLog) -> None:
    log = open_log()
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (0, 0, 0)
    assert log.read(0, 1000).data == b""
    assert sorted(os.listdir(log.dir)) == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000000000.timeindex",
    ]
    assert (log.topic, log.partition) == ("topic", 0)


def test_append_assigns_consecutive_offsets_and_round_trips(open_log: OpenLog) -> None:
    log = open_log()
    first = append(log, batch(3, tag=1))
    second = append(log, batch(2, tag=2), batch(4, tag=3))
    assert (first.first_offset, first.last_offset) == (0, 2)
    assert (second.first_offset, second.last_offset, second.record_count) == (3, 8, 6)
    assert log.log_end_offset == 9
    data = log.read(0, 1 << 20).data
    assert headers_of(data) == [(0, 2), (3, 4), (5, 8)]
    values = values_of(data)
    assert [offset for offset, _ in values] == list(range(9))
    assert values[3][1] is not None and values[3][1].startswith(b"2:0:")
    assert log.size_bytes == len(data)


def test_append_patches_leader_epoch_and_keeps_crc(open_log: OpenLog) -> None:
    log = open_log()
    payload = batch(2)
    append(log, payload, epoch=7)
    data = log.read(0, 1 << 20).data
    assert validate_batches(data)[0].partition_leader_epoch == 7


def test_log_append_time_is_stamped(open_log: OpenLog) -> None:
    log = open_log()
    info = append(log, batch(2, timestamp=5), lat=123456)
    assert info.log_append_time_ms == 123456
    assert (info.max_timestamp, info.offset_of_max_timestamp) == (123456, 1)
    header = validate_batches(log.read(0, 1 << 20).data)[0]  # CRC re-signed
    assert header.attributes & Attr.LOG_APPEND_TIME
    assert (header.base_timestamp, header.max_timestamp) == (123456, 123456)


def test_append_info_reports_create_time_max(open_log: OpenLog) -> None:
    log = open_log()
    info = append(log, batch(1, timestamp=50), batch(2, timestamp=90), batch(1, timestamp=70))
    assert (info.log_append_time_ms, info.max_timestamp, info.offset_of_max_timestamp) == (
        -1,
        90,
        2,
    )


def test_headers_must_cover_the_payload(open_log: OpenLog) -> None:
    log = open_log()
    payload = batch(1) + batch(1)
    with pytest.raises(InvalidAppend):
        log.append_as_leader(payload, validate_batches(payload)[:1], leader_epoch=0)
    with pytest.raises(InvalidAppend):
        log.append_as_leader(bytearray(), [], leader_epoch=0)
    assert log.log_end_offset == 0


def test_one_write_per_append(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log()
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    payload = [batch(2, tag=i) for i in range(10)]
    append(log, *payload)
    assert writes == [sum(len(b) for b in payload)]


def test_read_from_mid_batch_returns_whole_batch(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(5), batch(5))
    result = log.read(7, 1 << 20)
    assert result.first_offset == 5
    assert headers_of(result.data) == [(5, 9)]
    assert log.read(4, 1 << 20).first_offset == 0


def test_read_bounds(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(3))
    assert log.read(3, 100).data == b""
    assert log.read(3, 100).first_offset == 3
    with pytest.raises(OffsetOutOfRange):
        log.read(4, 100)
    with pytest.raises(OffsetOutOfRange):
        log.read(-1, 100)


def test_max_bytes_returns_whole_batches_only(open_log: OpenLog) -> None:
    log = open_log()
    batches = [batch(1, value_size=100, tag=i) for i in range(10)]
    append(log, *batches)
    size = len(batches[0])
    for max_bytes in (size, size + 1, 2 * size - 1, 2 * size, 5 * size + 7):
        data = log.read(0, max_bytes).data
        assert len(data) == (max_bytes // size) * size
        assert len(headers_of(data)) == max_bytes // size


def test_min_one_batch(open_log: OpenLog) -> None:
    log = open_log()
    big = batch(1, value_size=5000)
    append(log, big, batch(1))
    assert log.read(0, 10).data == bytes(log.read(0, len(big)).data)
    assert len(log.read(0, 10).data) == len(big)
    assert log.read(0, 10, min_one_batch=False).data == b""


def test_max_offset_excludes_batches_at_or_past_it(open_log: OpenLog) -> None:
    log = open_log()
    append(log, batch(2), batch(2), batch(2))  # 0-1, 2-3, 4-5
    assert headers_of(log.read(0, 1 << 20, max_offset=4).data) == [(0, 1), (2, 3)]
    assert headers_of(log.read(0, 1 << 20, max_offset=3).data) == [(0, 1), (2, 3)]
    assert headers_of(log.read(0, 1 << 20, max_offset=2).data) == [(0, 1)]
    assert log.read(2, 1 << 20, max_offset=2).data == b""
    assert log.read(0, 1 << 20, max_offset=0).data == b""


def test_rolls_by_segment_bytes_and_reads_across_segments(open_log: OpenLog) -> None:
    one = batch(1, value_size=200)
    log = open_log(LogConfig(segment_bytes=len(one) * 4 + 10))
    for i in range(40):
        append(log, batch(1, value_size=200, tag=i))
    assert len(log.segments) == 10
    assert [s.base_offset for s in log.segments] == list(range(0, 40, 4))
    assert all(s.size <= log.config.segment_bytes for s in log.segments)
    names = sorted(n for n in os.listdir(log.dir) if n.endswith(".log"))
    assert names[1] == "00000000000000000004.log"
    # a read never spans two segments
    result = log.read(2, 1 << 20)
    assert headers_of(result.data) == [(2, 2), (3, 3)]
    assert [off for off, _ in values_of(read_all(log))] == list(range(40))
    for offset in range(40):
        assert log.read(offset, 1).first_offset == offset


def test_payload_larger_than_segment_goes_in_one_new_segment(open_log: OpenLog) -> None:
    log = open_log(LogConfig(segment_bytes=1000))
    append(log, batch(1))
    append(log, *[batch(1, value_size=300, tag=i) for i in range(5)])
    assert [s.base_offset for s in log.segments] == [0, 1]
    assert log.segments[1].size > 1000


def test_rolls_by_segment_ms(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(LogConfig(segment_ms=1000))
    append(log, batch(1))
    clock.advance(1000)
    append(log, batch(1))
    assert len(log.segments) == 1
    clock.advance(1)
    append(log, batch(1))
    assert [s.base_offset for s in log.segments] == [0, 2]
    # the age counts from the first append into the segment, not from its creation
    clock.advance(5000)
    append(log, batch(1))
    assert [s.base_offset for s in log.segments] == [0, 2, 3]
    assert headers_of(read_all(log)) == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_maybe_roll_by_time_on_idle_log(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(LogConfig(segment_ms=1000))
    assert not log.maybe_roll_by_time(clock.now + 5000)  # empty: nothing to roll
    append(log, batch(1))
    assert not log.maybe_roll_by_time(clock.now + 1000)
    assert log.maybe_roll_by_time(clock.now + 1001)
    assert [s.base_offset for s in log.segments] == [0, 1]


def test_rolls_when_index_is_full(open_log: OpenLog) -> None:
    log = open_log(LogConfig(index_interval_bytes=0, segment_index_bytes=24))  # 3 entries
    for i in range(10):
        append(log, batch(1, tag=i))
    assert len(log.segments) > 1
    for segment in log.segments[:-1]:
        assert segment.index_entries()[0] <= 3
    assert [off for off, _ in values_of(read_all(log))] == list(range(10))


def test_sparse_index_follows_kafkas_rule(open_log: OpenLog) -> None:
    """An entry for the first batch that starts more than interval bytes past the last."""
    one = batch(1, value_size=100)
    size = len(one)
    log = open_log(LogConfig(index_interval_bytes=2 * size))
    for i in range(12):
        append(log, batch(1, value_size=100, tag=i))
    log.close()
    raw = (log.dir / "00000000000000000000.index").read_bytes()
    entries = list(struct.iter_unpack(">ii", raw))
    # batches at 0, s, 2s, ...: bytes since the last entry exceed 2s at position 3s
    assert entries == [(3, 3 * size), (6, 6 * size), (9, 9 * size)]
    times = list(struct.iter_unpack(">qi", (log.dir / "00000000000000000000.timeindex")
                                    .read_bytes()))
    assert times == [(1000, 0)]  # the max timestamp never grows after the first entry


def test_index_lookups_with_small_interval(open_log: OpenLog) -> None:
    log = open_log(LogConfig(index_interval_bytes=64, segment_bytes=10_000))
    counts = [1 + (i * 7) % 5 for i in range(300)]
    for i, count in enumerate(counts):
        append(log, batch(count, tag=i, value_size=1 + i % 50))
    assert len(log.segments) > 3
    assert log.segments[0].index_entries()[0] > 10
    bases = [0]
    for count in counts:
        bases.append(bases[-1] + count)
    for i in range(len(counts)):
        for offset in range(bases[i], bases[i + 1]):
            assert log.read(offset, 1).first_offset == bases[i]


def test_follower_append_validates_and_keeps_offsets(open_log: OpenLog, tmp_path: Path) -> None:
    leader = Log.open(tmp_path / "leader-0", LogConfig())
    append(leader, batch(2), batch(3))
    append(leader, batch(1))
    follower = open_log()
    data = leader.read(0, 1 << 20).data
    info = follower.append_as_follower(data)
    assert (info.first_offset, info.last_offset, follower.log_end_offset) == (0, 5, 6)
    assert follower.read(0, 1 << 20).data == data
    with pytest.raises(InvalidAppend):
        follower.append_as_follower(data)  # offsets go backwards
    corrupt = bytearray(leader.read(0, 1 << 20).data)
    corrupt[-1] ^= 0xFF
    with pytest.raises(InvalidAppend):
        follower.append_as_follower(bytes(corrupt))
    leader.close()


def test_follower_append_with_gap(open_log: OpenLog) -> None:
    log = open_log()
    payload = batch(2)
    struct.pack_into(">q", payload, 0, 10)
    log.append_as_follower(bytes(payload))
    assert log.log_end_offset == 12
    assert log.read(0, 1000).first_offset == 10
    assert read_header(log.read(11, 1000).data).base_offset == 10


def test_open_needs_a_partition_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Log.open(tmp_path / "no_partition_here", LogConfig())
    log = Log.open(tmp_path / "my.topic-with-dashes-12", LogConfig())
    assert (log.topic, log.partition) == ("my.topic-with-dashes", 12)
    log.close()

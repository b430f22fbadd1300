"""Crash recovery: torn tails, flipped bits, lost indexes, and what a restart may read."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import FakeClock, append, batch, crash, headers_of, read_all

from strom.protocol.records import scan_batches
from strom.storage import Log, LogConfig

OpenLog = Callable[..., Log]

CONFIG = LogConfig(segment_bytes=1200, index_interval_bytes=100)


def _fill(log: Log, n: int, start_tag: int = 0) -> list[tuple[int, int]]:
    """Append ``n`` batches of 1-3 records; return their (base, last) offsets."""
    spans = []
    for i in range(start_tag, start_tag + n):
        info = append(log, batch(1 + i % 3, value_size=20 + i % 40, timestamp=1000 + i, tag=i))
        spans.append((info.first_offset, info.last_offset))
    return spans


def _index_files(dir: Path) -> dict[str, bytes]:
    return {
        name: (dir / name).read_bytes()
        for name in sorted(os.listdir(dir))
        if name.endswith((".index", ".timeindex"))
    }


def _last_batch_position(log: Log) -> tuple[Path, int, int]:
    """(log file, position, size) of the last batch of the active segment."""
    segment = log.active_segment
    position, header = list(scan_batches(segment.read(0, segment.size)))[-1]
    return segment.log_path, position, header.size


def test_clean_reopen_is_identical(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    _fill(log, 60)
    data, end = read_all(log), log.log_end_offset
    log.close()
    indexes = _index_files(log.dir)
    again = open_log(CONFIG, clean_shutdown=True)
    assert (again.log_end_offset, read_all(again)) == (end, data)
    assert again.recovery_point == end
    again.close()
    assert _index_files(log.dir) == indexes


def test_unclean_recovery_rebuilds_identical_indexes(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    _fill(log, 60)
    data = read_all(log)
    log.close()
    indexes = _index_files(log.dir)
    for name in indexes:
        (log.dir / name).write_bytes(b"")
    again = open_log(CONFIG, recovery_point=0, clean_shutdown=False)
    assert read_all(again) == data
    again.close()
    assert _index_files(log.dir) == indexes


@pytest.mark.parametrize("seed", range(8))
def test_torn_tail_is_truncated(open_log: OpenLog, seed: int) -> None:
    rng = random.Random(seed)
    log = open_log(CONFIG)
    spans = _fill(log, 40)
    log.flush()
    recovery_point = log.recovery_point
    spans += _fill(log, 5, start_tag=40)
    path, position, size = _last_batch_position(log)
    whole = read_all(log)
    crash(log)
    cut = position + rng.randrange(size)  # anywhere inside the last batch, even its start
    os.truncate(path, cut)

    again = open_log(CONFIG, recovery_point=recovery_point, clean_shutdown=False)
    assert again.log_end_offset == spans[-2][1] + 1
    assert headers_of(read_all(again)) == spans[:-1]
    assert read_all(again) == whole[: len(read_all(again))]
    assert again.active_segment.size == position
    info = append(again, batch(2))
    assert info.first_offset == spans[-2][1] + 1
    again.close()
    # indexes equal those of a log built cleanly with the same batches
    indexes = _index_files(again.dir)
    reopened = open_log(CONFIG, recovery_point=0, clean_shutdown=False)
    reopened.close()
    assert _index_files(again.dir) == indexes


def test_flipped_byte_in_last_batch_is_cut(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    spans = _fill(log, 30)
    path, position, size = _last_batch_position(log)
    crash(log)
    with open(path, "r+b") as f:
        f.seek(position + size - 3)
        byte = f.read(1)
        f.seek(position + size - 3)
        f.write(bytes([byte[0] ^ 0x01]))
    again = open_log(CONFIG, clean_shutdown=False)
    assert headers_of(read_all(again)) == spans[:-1]
    assert again.active_segment.size == position


def test_damage_mid_log_keeps_later_batches(open_log: OpenLog) -> None:
    """Kafka cuts at the first bad batch and drops every later segment; we cut out only
    the damaged batch, keep the original file aside and report the lost offsets."""
    log = open_log(CONFIG)
    spans = _fill(log, 60)
    segments = list(log.segments)
    assert len(segments) >= 4
    victim = segments[1]
    crash(log)
    with open(victim.log_path, "r+b") as f:  # flip a byte in the CRC of the 2nd batch
        data = f.read()
        second = len(headers_of(data)) > 1
        assert second
        first_size = int.from_bytes(data[8:12], "big") + 12
        f.seek(first_size + 17)
        f.write(bytes([data[first_size + 17] ^ 0xFF]))
    damaged = next(span for span in spans if span[0] > victim.base_offset)
    again = open_log(CONFIG, clean_shutdown=False)
    assert [s.base_offset for s in again.segments] == [s.base_offset for s in segments]
    assert again.log_end_offset == log.log_end_offset
    assert headers_of(read_all(again)) == [span for span in spans if span != damaged]
    assert again.first_lost_offset == damaged[0]
    aside = [n for n in os.listdir(again.dir) if n.endswith(".corrupt")]
    assert len(aside) == 1 and aside[0].startswith(victim.log_path.name)
    assert (again.dir / aside[0]).read_bytes() != victim.log_path.read_bytes()


def spans_in(spans: list[tuple[int, int]], base: int) -> int:
    """Records in the first batch starting at ``base``."""
    for first, last in spans:
        if first == base:
            return last - first + 1
    raise AssertionError(base)


def test_recovery_starts_at_the_recovery_point(open_log: OpenLog) -> None:
    """Damage below the recovery point is not even read: startup cost is bounded."""
    log = open_log(CONFIG)
    _fill(log, 60)
    log.flush()
    first = log.segments[0]
    assert log.recovery_point == log.log_end_offset
    size = first.size
    crash(log)
    with open(first.log_path, "r+b") as f:
        f.seek(size - 1)
        last = f.read(1)[0]
        f.seek(size - 1)
        f.write(bytes([last ^ 0xFF]))
    again = open_log(CONFIG, recovery_point=log.log_end_offset, clean_shutdown=False)
    assert again.segments[0].size == size  # not rescanned, so not cut
    assert len(again.segments) == len(log.segments)
    crash(again)
    full = open_log(CONFIG, recovery_point=0, clean_shutdown=False)
    assert full.segments[0].size < size  # rescanned from 0: cut
    assert len(full.segments) == len(log.segments)  # later segments kept (Kafka drops them)


def test_clean_shutdown_with_torn_active_tail_is_still_cut(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    spans = _fill(log, 30)
    path, position, _ = _last_batch_position(log)
    log.close()
    os.truncate(path, position + 20)
    again = open_log(CONFIG, clean_shutdown=True)
    assert headers_of(read_all(again)) == spans[:-1]


def test_missing_index_rebuilt_after_clean_shutdown(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    _fill(log, 60)
    data = read_all(log)
    log.close()
    indexes = _index_files(log.dir)
    first = sorted(indexes)[0]
    (log.dir / first).unlink()
    active_time_index = sorted(n for n in indexes if n.endswith(".timeindex"))[-1]
    (log.dir / active_time_index).unlink()
    again = open_log(CONFIG, clean_shutdown=True)
    assert _index_files(log.dir) == indexes  # rebuilt at open, before any use
    assert read_all(again) == data


def test_damaged_index_rebuilt_on_first_use(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    _fill(log, 60)
    data = read_all(log)
    log.close()
    indexes = _index_files(log.dir)
    name = sorted(indexes)[0]
    (log.dir / name).write_bytes(indexes[name][:-3])  # not a whole number of entries
    second = sorted(indexes)[2]
    (log.dir / second).write_bytes(b"\x7f" * len(indexes[second]))  # entries out of range
    again = open_log(CONFIG, clean_shutdown=True)
    assert read_all(again) == data
    assert _index_files(log.dir) == indexes


def test_flush_messages_one_fsyncs_every_append(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real = os.fdatasync

    def counting_fdatasync(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting_fdatasync)
    log = open_log(LogConfig(flush_messages=1))
    for i in range(5):
        append(log, batch(2, tag=i))
        assert log.recovery_point == log.log_end_offset == 2 * (i + 1)
    assert len(syncs) == 5


def test_flush_messages_counts_offsets(open_log: OpenLog) -> None:
    log = open_log(LogConfig(flush_messages=5))
    append(log, batch(2))
    append(log, batch(2))
    assert log.recovery_point == 0
    append(log, batch(1))
    assert log.recovery_point == 5


def test_flush_ms_is_not_kept_on_the_append_path(open_log: OpenLog, clock: FakeClock) -> None:
    """flush.ms is the periodic flush's (LogManager.flush_dirty, in a worker thread, as
    Kafka's flush scheduler): an append never fsyncs for it on the event loop."""
    log = open_log(LogConfig(flush_ms=1000))
    append(log, batch(1))
    clock.advance(1000)
    append(log, batch(1))
    assert log.recovery_point == 0
    log.flush()
    assert log.recovery_point == 2


def test_flush_up_to_and_recovery_of_rolled_segments(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    _fill(log, 60)
    active = log.active_segment.base_offset
    log.flush(up_to=active)
    assert log.recovery_point == active
    data = read_all(log)
    crash(log)
    again = open_log(CONFIG, recovery_point=active, clean_shutdown=False)
    assert read_all(again) == data


def test_leftover_files_are_cleaned(open_log: OpenLog, log_dir: Path) -> None:
    log = open_log(CONFIG)
    _fill(log, 5)
    log.close()
    for name in ("00000000000000000003.log.deleted", "00000000000000000003.index.deleted",
                 "00000000000000000007.index", "00000000000000000007.timeindex",
                 "00000000000000000000.log.cleaned", "leader-epoch-checkpoint"):
        (log_dir / name).write_bytes(b"junk")
    open_log(CONFIG, clean_shutdown=True).close()
    assert sorted(os.listdir(log_dir)) == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000000000.timeindex",
        "leader-epoch-checkpoint",  # not ours: left alone
    ]


def test_log_start_checkpoint_past_the_end_starts_over(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    _fill(log, 5)
    log.close()
    again = open_log(CONFIG, log_start_offset=50, clean_shutdown=True)
    assert (again.log_start_offset, again.log_end_offset) == (50, 50)


def test_log_start_checkpoint_inside_the_log(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    _fill(log, 5)
    log.close()
    again = open_log(CONFIG, log_start_offset=3, clean_shutdown=True)
    assert (again.log_start_offset, again.log_end_offset) == (3, log.log_end_offset)

"""Recovery that meets damage in the middle of a segment keeps what follows it.

Kafka (LogSegment.recover) truncates at the first invalid batch with a WARN: every
acknowledged batch after a flipped bit is gone at the next unclean start, and new appends
reuse their offsets. Here the damaged bytes alone are cut out, the original file is kept
aside, the damage is logged at ERROR with file and position and counted, and the offsets
lost are reported (a follower truncates there to fetch them again).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import append, batch, batch_positions, crash, headers_of, poke, read_all, values_of

from strom.protocol.records import scan_batches
from strom.storage import CorruptLog, Log, LogConfig
from strom.storage.health import HEALTH

OpenLog = Callable[..., Log]
CONFIG = LogConfig(segment_bytes=1 << 20, index_interval_bytes=100)


def _fill(log: Log, n: int, first_tag: int = 0) -> list[tuple[int, int]]:
    return [(i.first_offset, i.last_offset) for i in (
        append(log, batch(2, value_size=30, tag=t)) for t in range(first_tag, first_tag + n))]


def _aside(dir: Path) -> list[str]:
    return sorted(n for n in os.listdir(dir) if n.endswith(".corrupt"))


def test_bad_crc_mid_active_segment_keeps_later_batches(
    open_log: OpenLog, caplog: pytest.LogCaptureFixture
) -> None:
    log = open_log(CONFIG)
    spans = _fill(log, 20)
    position, size = batch_positions(log)[7]
    path = log.active_segment.log_path
    original = path.read_bytes()
    crash(log)
    poke(path, position + size - 5, b"\xff\xfe")
    before = HEALTH.corrupt_batches
    with caplog.at_level(logging.ERROR):
        again = open_log(CONFIG, clean_shutdown=False)
    kept = spans[:7] + spans[8:]
    assert headers_of(read_all(again)) == kept
    assert again.log_end_offset == spans[-1][1] + 1  # offsets are never reused
    assert again.first_lost_offset == spans[7][0]
    assert HEALTH.corrupt_batches == before + 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(str(path) in m and f"byte {position}" in m and "offsets 14..15" in m
               for m in errors), errors
    aside = _aside(again.dir)
    assert len(aside) == 1
    damaged = (again.dir / aside[0]).read_bytes()
    assert damaged[:position] == original[:position]  # the operator has every byte
    assert len(damaged) == len(original)
    info = append(again, batch(1, tag=99))
    assert info.first_offset == spans[-1][1] + 1
    assert (values_of(again.read(info.first_offset, 1 << 20).data)[0][1] or b"").startswith(b"99:0:")


def test_damaged_length_is_skipped_by_searching_for_the_next_batch(open_log: OpenLog) -> None:
    """A wrong batch_length means the next batch is not where the header says: recovery
    finds it by its magic byte and CRC."""
    log = open_log(CONFIG)
    spans = _fill(log, 12)
    position, _ = batch_positions(log)[3]
    path = log.active_segment.log_path
    crash(log)
    poke(path, position + 8, (7).to_bytes(4, "big"))
    again = open_log(CONFIG, clean_shutdown=False)
    assert headers_of(read_all(again)) == spans[:3] + spans[4:]


def test_a_hole_of_zeros_mid_segment(open_log: OpenLog) -> None:
    """A page never written back before a crash reads as zeros, valid data after it."""
    log = open_log(CONFIG)
    spans = _fill(log, 40)
    positions = batch_positions(log)
    path = log.active_segment.log_path
    crash(log)
    start, end = positions[10][0], positions[14][0]
    poke(path, start, bytes(end - start))
    again = open_log(CONFIG, clean_shutdown=False)
    assert headers_of(read_all(again)) == spans[:10] + spans[14:]
    assert again.first_lost_offset == spans[10][0]


def test_torn_tail_is_cut_quietly_as_before(
    open_log: OpenLog, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash mid-write is not damage: no ERROR, no copy aside, no metric."""
    log = open_log(CONFIG)
    spans = _fill(log, 10)
    position, size = batch_positions(log)[-1]
    path = log.active_segment.log_path
    crash(log)
    os.truncate(path, position + size // 2)
    before = HEALTH.corrupt_batches
    with caplog.at_level(logging.WARNING):
        again = open_log(CONFIG, clean_shutdown=False)
    assert headers_of(read_all(again)) == spans[:-1]
    assert again.first_lost_offset is None
    assert HEALTH.corrupt_batches == before
    assert _aside(again.dir) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_damage_past_the_last_index_entry_after_a_clean_shutdown(open_log: OpenLog) -> None:
    """A clean start scans the active segment past its last index entry (here: all of
    it); damage there triggers the same recovery, later batches kept. (Damage before the
    last entry is not read at a clean start, as in Kafka; reads report it, see
    test_corruption_reads.)"""
    config = LogConfig(segment_bytes=1 << 20, index_interval_bytes=1 << 20)
    log = open_log(config)
    spans = _fill(log, 30)
    position, size = batch_positions(log)[-3]
    path = log.active_segment.log_path
    log.close()
    poke(path, position + 8, (size + 40).to_bytes(4, "big"))
    again = open_log(config, clean_shutdown=True)
    assert headers_of(read_all(again)) == spans[:-3] + spans[-2:]
    assert len(_aside(again.dir)) == 1


def test_flipped_base_offset_in_a_sealed_segment(open_log: OpenLog) -> None:
    """The CRC does not cover base offsets: a batch claiming offsets of the next segment
    is damage even with a valid CRC, and is cut out rather than served."""
    config = LogConfig(segment_bytes=1200, index_interval_bytes=100)
    log = open_log(config)
    spans = _fill(log, 40)
    first, second = log.segments[0], log.segments[1]
    crash(log)
    with open(first.log_path, "rb") as f:
        data = f.read()
    positions = [pos for pos, _ in scan_batches(data)]
    poke(first.log_path, positions[2], (second.base_offset + 1).to_bytes(8, "big"))
    again = open_log(config, recovery_point=0, clean_shutdown=False)
    assert headers_of(read_all(again)) == spans[:2] + spans[3:]
    assert [s.base_offset for s in again.segments] == [s.base_offset for s in log.segments]


def test_leftover_rewrite_file_is_removed(open_log: OpenLog, log_dir: Path) -> None:
    """A crash while the segment was being rewritten leaves a .tmp, removed at start; the
    .log still holds the original and recovery simply runs again."""
    log = open_log(CONFIG)
    spans = _fill(log, 10)
    position, size = batch_positions(log)[4]
    path = log.active_segment.log_path
    crash(log)
    poke(path, position + size - 3, b"\x00\x01")
    (log_dir / (path.name + ".tmp")).write_bytes(b"half a rewrite")
    again = open_log(CONFIG, clean_shutdown=False)
    assert headers_of(read_all(again)) == spans[:4] + spans[5:]
    assert not any(n.endswith(".tmp") for n in os.listdir(log_dir))


def test_damaged_first_header_does_not_stop_a_clean_start(open_log: OpenLog) -> None:
    """A clean start reads the active segment's first header (segment.ms); damage there
    must not make the log unopenable (the broker would not start): reads report it."""
    log = open_log(CONFIG)
    spans = _fill(log, 30)
    path = log.active_segment.log_path
    log.close()
    poke(path, 16, b"\x09")  # magic of the first batch
    again = open_log(CONFIG, clean_shutdown=True)
    assert again.log_end_offset == spans[-1][1] + 1
    with pytest.raises(CorruptLog):
        again.read(0, 1 << 20)

"""Damage met by reads is loud: CorruptLog with file and position, an ERROR, a metric.

Before, a batch whose length ran past the end of the file was served as a partial batch
(a consumer asks again at the same offset forever, nothing logged), and a batch with a bad
CRC was served as is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import append, batch, batch_positions, headers_of, poke

from strom.storage import CorruptLog, Log, LogConfig
from strom.storage.health import HEALTH

OpenLog = Callable[..., Log]
CONFIG = LogConfig(segment_bytes=1 << 20, index_interval_bytes=100)


def _fill(log: Log, n: int) -> list[tuple[int, int]]:
    return [(i.first_offset, i.last_offset)
            for i in (append(log, batch(2, value_size=30, tag=t)) for t in range(n))]


def _flip(path: Path, position: int) -> None:
    with open(path, "rb") as f:
        f.seek(position)
        byte = f.read(1)[0]
    poke(path, position, bytes([byte ^ 0x5A]))


def test_bad_crc_at_the_fetch_position_is_corrupt_and_loud(
    open_log: OpenLog, caplog: pytest.LogCaptureFixture
) -> None:
    log = open_log(CONFIG)
    spans = _fill(log, 10)
    position, size = batch_positions(log)[4]
    _flip(log.active_segment.log_path, position + size - 2)  # inside the records
    before = HEALTH.corrupt_batches
    with caplog.at_level(logging.ERROR), pytest.raises(CorruptLog) as raised:
        log.read(spans[4][0], 1 << 20)
    assert raised.value.position == position
    assert raised.value.path == log.active_segment.log_path
    assert HEALTH.corrupt_batches == before + 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(log.active_segment.log_path) in errors[0] and f"byte {position}" in errors[0]
    with pytest.raises(CorruptLog):  # a retrying consumer: same answer, no second report
        log.read(spans[4][0], 1 << 20)
    assert HEALTH.corrupt_batches == before + 1
    # the batches before and after are still served
    assert headers_of(log.read(spans[3][0], 1 << 20).data)[0] == spans[3]
    assert headers_of(log.read(spans[5][0], 1 << 20).data) == spans[5:]


def test_length_past_the_end_is_corrupt_not_a_partial_batch(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    spans = _fill(log, 6)
    position, _ = batch_positions(log)[5]
    poke(log.active_segment.log_path, position + 8, (10_000).to_bytes(4, "big"))
    with pytest.raises(CorruptLog, match="runs past the end"):
        log.read(spans[5][0], 1 << 20)


def test_garbage_header_mid_segment_is_corrupt(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    spans = _fill(log, 8)
    position, _ = batch_positions(log)[6]
    poke(log.active_segment.log_path, position + 16, b"\x07")  # magic
    with pytest.raises(CorruptLog, match="no batch header") as raised:
        log.read(spans[6][0], 1 << 20)
    assert raised.value.position == position
    # a read that starts before the damage gets the good batches, not an error
    data = log.read(spans[5][0], 1 << 20).data
    assert headers_of(data) == [spans[5]]


def test_base_offset_beyond_the_log_end_is_corrupt(open_log: OpenLog) -> None:
    """Base offsets are outside the CRC: a flipped high bit would send a consumer to 2^40."""
    log = open_log(CONFIG)
    spans = _fill(log, 4)
    position, _ = batch_positions(log)[2]
    poke(log.active_segment.log_path, position, (1 << 40).to_bytes(8, "big"))
    with pytest.raises(CorruptLog, match="do not fit"):
        log.read(spans[2][0], 1 << 20)


def test_min_one_batch_false_reads_nothing_and_checks_nothing(open_log: OpenLog) -> None:
    log = open_log(CONFIG)
    spans = _fill(log, 3)
    position, size = batch_positions(log)[1]
    _flip(log.active_segment.log_path, position + size - 1)
    assert log.read(spans[1][0], 10, min_one_batch=False).data == b""
    assert os.path.getsize(log.active_segment.log_path) == log.active_segment.size

"""The one threading promise: ``flush`` may run in a worker while the loop appends."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import FakeClock, append, batch, crash, headers_of, read_all

from strom.storage import Log, LogConfig, LogManager
from strom.storage.checkpoint import RECOVERY_POINT_CHECKPOINT, read_offset_checkpoint

OpenLog = Callable[..., Log]


def test_flush_in_a_thread_while_appending_and_rolling(open_log: OpenLog) -> None:
    config = LogConfig(segment_bytes=2000, index_interval_bytes=64)
    log = open_log(config)
    stop = threading.Event()
    errors: list[BaseException] = []
    flushed: list[int] = []

    def flusher() -> None:
        try:
            while not stop.is_set():
                log.flush()
                flushed.append(log.recovery_point)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test thread below
            errors.append(exc)

    worker = threading.Thread(target=flusher)
    worker.start()
    try:
        for i in range(1500):
            append(log, batch(1 + i % 3, value_size=i % 64, tag=i))
            if i % 200 == 0:
                assert log.read(0, 1 << 20).first_offset == 0
    finally:
        stop.set()
        worker.join()
    assert not errors
    assert flushed == sorted(flushed)  # the recovery point only moves forward
    assert len(log.segments) > 50
    log.flush()
    data = read_all(log)
    crash(log)
    again = open_log(config, recovery_point=log.recovery_point, clean_shutdown=False)
    assert read_all(again) == data
    assert headers_of(data)[-1][1] + 1 == again.log_end_offset


def test_a_checkpoint_during_a_flush_claims_only_what_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker runs flushes and checkpoints off the event loop: a checkpoint written
    while an fsync is under way must still show the recovery point from before it."""
    manager = LogManager([tmp_path], clock=FakeClock(), broker_id=1, cluster_id="c")
    manager.load_all(lambda _t: LogConfig())
    lg = manager.get_or_create("t", 0, LogConfig(flush_ms=1000))
    append(lg, batch(3))
    in_fsync, release = threading.Event(), threading.Event()
    fdatasync = os.fdatasync

    def slow_fdatasync(fd: int) -> None:
        in_fsync.set()
        release.wait(5)
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    worker = threading.Thread(target=manager.flush_dirty, args=(10**15,))
    worker.start()
    assert in_fsync.wait(5)
    manager.checkpoint()  # meanwhile, on the loop (or another worker)
    assert read_offset_checkpoint(tmp_path / RECOVERY_POINT_CHECKPOINT)[("t", 0)] == 0
    release.set()
    worker.join()
    manager.checkpoint()
    assert read_offset_checkpoint(tmp_path / RECOVERY_POINT_CHECKPOINT)[("t", 0)] == 3
    manager.close()

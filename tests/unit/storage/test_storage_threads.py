"""The one threading promise: ``flush`` may run in a worker while the loop appends."""

from __future__ import annotations

import threading
from collections.abc import Callable

from storage_helpers import append, batch, crash, headers_of, read_all

from strom.storage import Log, LogConfig

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
        except BaseException as exc:  # surfaced below
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

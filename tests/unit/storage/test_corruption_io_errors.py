"""Disk errors (ENOSPC, EIO) injected into the log: KafkaStorageError, never a torn batch.

Kafka's JBOD semantics: an I/O error takes the whole log dir offline until a restart;
other dirs keep serving. Before, the OSError escaped to the connection, which closed.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from storage_helpers import FakeClock, append, batch, headers_of, read_all

from strom.protocol.records import scan_batches
from strom.storage import KafkaStorageError, Log, LogConfig, LogManager
from strom.storage.health import HEALTH

OpenLog = Callable[..., Log]
CONFIG = LogConfig(segment_bytes=2000, index_interval_bytes=100)


@pytest.fixture
def failing_writes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``arm(fd, err, partial=n)``: writes to ``fd`` write ``n`` bytes once, then fail."""

    def arm(fd: int, err: int = errno.ENOSPC, partial: int = 0) -> None:
        real = os.write
        budget = [partial]

        def write(target: int, data: bytes | memoryview) -> int:
            if target != fd:
                return real(target, data)
            if budget[0] > 0:
                n = real(target, bytes(data)[: budget[0]])
                budget[0] = 0
                return n
            raise OSError(err, os.strerror(err))

        monkeypatch.setattr(os, "write", write)

    return arm


def _fd(log: Log) -> int:
    return log.active_segment._fd


@pytest.mark.parametrize("partial", [0, 100])
def test_enospc_on_append_raises_storage_error_and_leaves_no_torn_batch(
    open_log: OpenLog, failing_writes: Callable[..., None], partial: int
) -> None:
    log = open_log(CONFIG)
    append(log, batch(3, tag=1))
    size, end = log.active_segment.size, log.log_end_offset
    errors = HEALTH.io_errors
    failing_writes(_fd(log), partial=partial)  # 100: half a batch reaches the file first
    with pytest.raises(KafkaStorageError, match="No space left") as raised:
        append(log, batch(3, value_size=200, tag=2))
    assert raised.value.log_dir == log.dir.parent
    assert log.offline is not None
    assert HEALTH.io_errors == errors + 1
    assert (log.log_end_offset, log.active_segment.size) == (end, size)
    assert os.path.getsize(log.active_segment.log_path) == size  # cut back: nothing torn
    with pytest.raises(KafkaStorageError):  # offline until a restart, even if space returns
        append(log, batch(1, tag=3))
    with pytest.raises(KafkaStorageError):
        log.read(0, 1 << 20)


def test_eio_on_flush_takes_the_log_offline(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(LogConfig(flush_messages=1))

    def fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with pytest.raises(KafkaStorageError, match="Input/output error"):
        append(log, batch(1))
    assert log.offline is not None
    log.flush()  # an offline log has nothing to flush: no error, no second report
    log.close()  # never raises: the manager must still close the other logs


def test_roll_failure_takes_the_log_offline(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(CONFIG)
    while len(log.segments) == 1:
        append(log, batch(2, value_size=100))
    real_open = os.open

    def no_new_files(path: str | Path, flags: int, *args: int) -> int:
        if flags & os.O_CREAT and str(path).endswith(".log"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_new_files)
    with pytest.raises(KafkaStorageError):
        for _ in range(100):  # the next roll fails
            append(log, batch(2, value_size=100))
    assert log.offline is not None


@pytest.fixture
def two_dirs(tmp_path: Path) -> Iterator[tuple[LogManager, list[Path]]]:
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = LogManager(dirs, clock=FakeClock(), broker_id=1, cluster_id="c")
    manager.load_all(lambda _t: CONFIG)
    yield manager, dirs
    manager.close()


def test_jbod_one_dir_offline_the_other_serves(
    two_dirs: tuple[LogManager, list[Path]], failing_writes: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager, dirs = two_dirs
    logs = {p: manager.get_or_create("t", p, CONFIG) for p in range(4)}
    for p, lg in logs.items():
        append(lg, batch(2, tag=p))
    in_a = [lg for p, lg in logs.items() if manager.dir_of("t", p) == dirs[0]]
    in_b = [lg for p, lg in logs.items() if manager.dir_of("t", p) == dirs[1]]
    assert len(in_a) == len(in_b) == 2
    failing_writes(_fd(in_a[0]))
    with caplog.at_level(logging.ERROR), pytest.raises(KafkaStorageError):
        append(in_a[0], batch(1))
    assert manager.offline_dirs.keys() == {dirs[0]}
    for lg in in_a:  # the whole dir: produce and fetch refused
        with pytest.raises(KafkaStorageError):
            append(lg, batch(1))
        with pytest.raises(KafkaStorageError):
            lg.read(0, 1 << 20)
    for lg in in_b:
        append(lg, batch(1))
        assert headers_of(read_all(lg))[-1] == (2, 2)
    dir_errors = [r for r in caplog.records if "is offline" in r.getMessage()]
    assert len(dir_errors) == 1 and dir_errors[0].levelno == logging.ERROR
    # new partitions avoid the offline dir
    assert manager.dir_of("t", 9) is None
    manager.get_or_create("t", 9, CONFIG)
    assert manager.dir_of("t", 9) == dirs[1]
    manager.checkpoint()
    manager.flush_dirty(10**15)
    manager.enforce_retention(10**15)


def test_offline_dir_is_not_marked_clean_and_recovers_at_restart(
    tmp_path: Path, failing_writes: Callable[..., None]
) -> None:
    d = tmp_path / "only"
    manager = LogManager([d], clock=FakeClock(), broker_id=1, cluster_id="c")
    manager.load_all(lambda _t: CONFIG)
    lg = manager.get_or_create("t", 0, CONFIG)
    for i in range(30):
        append(lg, batch(2, tag=i))
    acknowledged = read_all(lg)
    failing_writes(_fd(lg), partial=37)
    with pytest.raises(KafkaStorageError):
        append(lg, batch(2, tag=99))
    with pytest.raises(KafkaStorageError):  # single dir: the broker stays up, answers errors
        manager.get_or_create("t", 1, CONFIG)
    manager.close()
    assert not (d / ".kafka_cleanshutdown").exists()
    again = LogManager([d], clock=FakeClock(), broker_id=1, cluster_id="c")
    try:
        reopened = again.load_all(lambda _t: CONFIG)[("t", 0)]
        assert read_all(reopened) == acknowledged
        segment = reopened.active_segment
        assert [p for p, _ in scan_batches(segment.read(0, segment.size))]
    finally:
        again.close()

"""LogManager: log dirs, placement, checkpoints, clean shutdown, restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from storage_helpers import FakeClock, append, batch, crash, read_all

from strom.storage import InconsistentLogDirs, LogConfig, LogManager
from strom.storage.checkpoint import read_offset_checkpoint, read_properties

CONFIG = LogConfig(segment_bytes=600, index_interval_bytes=100)


def _manager(dirs: list[Path], clock: FakeClock, cluster_id: str = "cluster-A") -> LogManager:
    return LogManager(dirs, clock=clock, broker_id=1, cluster_id=cluster_id)


def _populate(manager: LogManager) -> None:
    for topic, partitions in (("orders", 3), ("my.events-v2", 2)):
        for p in range(partitions):
            log = manager.get_or_create(topic, p, CONFIG)
            for i in range(5 + 7 * p):
                append(log, batch(1 + i % 2, tag=i, timestamp=1000 + i))


def test_new_partitions_spread_over_dirs(tmp_path: Path, clock: FakeClock) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = _manager(dirs, clock)
    manager.load_all(lambda _t: CONFIG)
    _populate(manager)
    per_dir = {d: sorted(n for n in os.listdir(d) if "-" in n and (d / n).is_dir()) for d in dirs}
    assert sorted(len(v) for v in per_dir.values()) == [2, 3]
    assert manager.dir_of("orders", 0) == dirs[0]
    assert manager.dir_of("orders", 1) == dirs[1]
    assert manager.get_or_create("orders", 0, CONFIG) is manager.get("orders", 0)
    assert manager.get("nope", 0) is None
    with pytest.raises(ValueError):
        manager.get_or_create("../escape", 0, CONFIG)
    manager.close()


def test_close_and_reload_sees_identical_logs(tmp_path: Path, clock: FakeClock) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = _manager(dirs, clock)
    manager.load_all(lambda _t: CONFIG)
    _populate(manager)
    manager.get("orders", 2).delete_records_before(3)  # type: ignore[union-attr]
    before = {
        key: (log.log_start_offset, log.log_end_offset, read_all(log), len(log.segments))
        for key, log in manager.logs.items()
    }
    manager.checkpoint({("orders", 0): 4, ("orders", 2): 9})
    manager.close()
    for d in dirs:
        assert (d / ".kafka_cleanshutdown").exists()

    again = _manager(dirs, clock, cluster_id="ignored")
    logs = again.load_all(lambda _t: CONFIG)
    after = {
        key: (log.log_start_offset, log.log_end_offset, read_all(log), len(log.segments))
        for key, log in logs.items()
    }
    assert after == before
    assert again.cluster_id == "cluster-A"
    assert again.high_watermarks == {("orders", 0): 4, ("orders", 2): 9}
    assert all(log.recovery_point == log.log_end_offset for log in logs.values())
    for d in dirs:
        assert not (d / ".kafka_cleanshutdown").exists()  # removed once loaded
    again.close()


def test_checkpoint_files(tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "data"
    manager = _manager([d], clock)
    manager.load_all(lambda _t: CONFIG)
    log = manager.get_or_create("t", 0, CONFIG)
    append(log, batch(3))
    log.flush()
    append(log, batch(2))
    manager.get_or_create("t", 1, CONFIG)
    manager.checkpoint({("t", 0): 3, ("gone", 0): 1})
    assert (d / "recovery-point-offset-checkpoint").read_text() == "0\n2\nt 0 3\nt 1 0\n"
    assert (d / "log-start-offset-checkpoint").read_text() == "0\n2\nt 0 0\nt 1 0\n"
    assert (d / "replication-offset-checkpoint").read_text() == "0\n1\nt 0 3\n"
    manager.delete_log("t", 0)
    assert not (d / "t-0").exists()
    assert read_offset_checkpoint(d / "recovery-point-offset-checkpoint") == {("t", 1): 0}
    assert read_offset_checkpoint(d / "replication-offset-checkpoint") == {}
    assert manager.get("t", 0) is None
    manager.close()


def test_meta_properties_and_cluster_id(tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "data"
    first = _manager([d], clock, cluster_id="first")
    assert first.cluster_id == "first"
    assert read_properties(d / "meta.properties") == {
        "version": "0",
        "broker.id": "1",
        "cluster.id": "first",
    }
    first.close()
    assert _manager([d], clock, cluster_id="second").cluster_id == "first"
    with pytest.raises(InconsistentLogDirs):
        LogManager([d], clock=clock, broker_id=2, cluster_id="x")
    other = tmp_path / "other"
    LogManager([other], clock=clock, broker_id=1, cluster_id="another").close()
    with pytest.raises(InconsistentLogDirs):
        LogManager([d, other], clock=clock, broker_id=1, cluster_id="x")


def test_unclean_restart_recovers(tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "data"
    manager = _manager([d], clock)
    manager.load_all(lambda _t: CONFIG)
    log = manager.get_or_create("t", 0, CONFIG)
    for i in range(30):
        append(log, batch(2, tag=i))
    manager.checkpoint()  # recovery point 0: nothing flushed yet
    data = read_all(log)
    segment = log.active_segment
    crash(log)
    os.truncate(segment.log_path, segment.size - 5)  # torn last batch

    again = _manager([d], clock)
    recovered = again.load_all(lambda _t: CONFIG)[("t", 0)]
    assert recovered.log_end_offset == 58
    assert read_all(recovered) == data[: len(read_all(recovered))]
    again.close()


def test_flush_dirty(tmp_path: Path, clock: FakeClock) -> None:
    manager = _manager([tmp_path / "data"], clock)
    manager.load_all(lambda _t: CONFIG)
    timed = manager.get_or_create("timed", 0, LogConfig(flush_ms=1000))
    rolled = manager.get_or_create("rolled", 0, CONFIG)
    idle = manager.get_or_create("idle", 0, LogConfig())
    append(timed, batch(1))
    append(idle, batch(1))
    for i in range(20):
        append(rolled, batch(1, tag=i))
    assert len(rolled.segments) > 1
    manager.flush_dirty(clock.now)
    assert timed.recovery_point == 0
    assert rolled.recovery_point == rolled.active_segment.base_offset  # flushed on roll
    assert idle.recovery_point == 0
    manager.flush_dirty(clock.now + 1000)
    assert timed.recovery_point == 1
    assert idle.recovery_point == 0
    manager.close()


def test_enforce_retention_across_logs(tmp_path: Path, clock: FakeClock) -> None:
    manager = _manager([tmp_path / "data"], clock)
    manager.load_all(lambda _t: CONFIG)
    config = LogConfig(segment_bytes=600, retention_ms=1000)
    old = manager.get_or_create("old", 0, config)
    for i in range(20):
        append(old, batch(1, tag=i, timestamp=clock.now - 5000))
    segments = len(old.segments)
    assert manager.enforce_retention(clock.now, {("old", 0): 0}) == 0  # held by the HW
    assert manager.enforce_retention(clock.now) == segments
    assert old.log_start_offset == old.log_end_offset == 20
    manager.close()


def test_leftover_delete_dirs_are_removed(tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "data"
    (d / "t-0.0123456789abcdef-delete").mkdir(parents=True)
    (d / "t-0.0123456789abcdef-delete" / "00000000000000000000.log").write_bytes(b"x")
    (d / "not a partition").mkdir()
    manager = _manager([d], clock)
    assert manager.load_all(lambda _t: CONFIG) == {}
    assert sorted(p.name for p in d.iterdir() if p.is_dir()) == ["not a partition"]
    manager.close()


def test_a_second_process_cannot_use_the_dirs(tmp_path: Path, clock: FakeClock) -> None:
    d = tmp_path / "data"
    manager = _manager([d], clock)
    script = (
        "import sys\n"
        "from strom.storage import LogManager, LogDirLocked\n"
        "try:\n"
        f"    LogManager([{str(d)!r}], broker_id=1, cluster_id='x')\n"
        "except LogDirLocked:\n"
        "    sys.exit(3)\n"
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 3
    manager.close()
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 0

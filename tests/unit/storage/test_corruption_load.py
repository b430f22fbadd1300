"""A log dir that fails while the broker starts (EIO reading a segment) goes offline
instead of failing the start: the other dirs load and serve (Kafka's JBOD semantics)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import FakeClock, append, batch, read_all

from strom.storage import Log, LogConfig, LogManager

CONFIG = LogConfig(segment_bytes=2000, index_interval_bytes=100)


def test_eio_while_loading_takes_that_dir_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = LogManager(dirs, clock=FakeClock(), broker_id=1, cluster_id="c")
    manager.load_all(lambda _t: CONFIG)
    for p in range(6):
        append(manager.get_or_create("t", p, CONFIG), batch(2, tag=p))
    in_b = {p for p in range(6) if manager.dir_of("t", p) == dirs[1]}
    data = {p: read_all(manager.get("t", p)) for p in range(6)}  # type: ignore[arg-type]
    manager.close()

    real_open = Log.open

    def failing_open(dir: Path, *args: Any, **kwargs: Any) -> Log:
        if Path(dir).parent == dirs[1]:
            raise OSError(errno.EIO, "Input/output error")
        return real_open(dir, *args, **kwargs)

    monkeypatch.setattr(Log, "open", failing_open)
    again = LogManager(dirs, clock=FakeClock(), broker_id=1, cluster_id="c")
    loaded = again.load_all(lambda _t: CONFIG)  # does not raise: the broker starts
    assert set(again.offline_dirs) == {dirs[1]}
    assert {p for (_, p) in again.offline} == in_b
    assert {p for (_, p) in loaded} == set(range(6)) - in_b
    for (_, p), lg in loaded.items():
        assert read_all(lg) == data[p]
    again.close()
    assert (dirs[0] / ".kafka_cleanshutdown").exists()
    assert not (dirs[1] / ".kafka_cleanshutdown").exists()

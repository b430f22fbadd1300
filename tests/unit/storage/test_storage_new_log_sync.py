"""A new log's directory is fsynced by its first flush, not at creation (as Kafka's
LocalLog.flush does): creating 1,000 partitions must not cost 1,000 fsyncs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import append, batch

from strom.storage import Log, LogConfig, loader
from strom.storage import log as log_module


@pytest.fixture
def dir_syncs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    synced: list[Path] = []
    for module in (loader, log_module):
        real = module.fsync_dir

        def counting(d: Path, real: Callable[[Path], None] = real) -> None:
            synced.append(d)
            real(d)

        monkeypatch.setattr(module, "fsync_dir", counting)
    return synced


def test_creating_a_log_fsyncs_no_directory(open_log: Callable[..., Log],
                                            dir_syncs: list[Path]) -> None:
    log = open_log()
    assert log.log_end_offset == 0
    assert dir_syncs == []
    log.flush()
    assert dir_syncs == [log.dir]  # the first flush makes the new files durable
    log.flush()
    assert dir_syncs == [log.dir]


def test_the_first_append_flush_covers_the_new_directory(open_log: Callable[..., Log],
                                                        dir_syncs: list[Path]) -> None:
    log = open_log(LogConfig(flush_messages=1))
    append(log, batch(3))
    assert dir_syncs == [log.dir]


def test_an_existing_empty_directory_gets_its_segment(log_dir: Path,
                                                      open_log: Callable[..., Log],
                                                      dir_syncs: list[Path]) -> None:
    """A crash after the mkdir but before the first flush can leave the directory
    empty: the log starts again there, at its log start offset."""
    log_dir.mkdir(parents=True)
    log = open_log(log_start_offset=7)
    assert (log.log_start_offset, log.log_end_offset) == (7, 7)
    assert sorted(p.suffix for p in log_dir.iterdir()) == [".index", ".log", ".timeindex"]
    log.close()
    assert dir_syncs == [log.dir]

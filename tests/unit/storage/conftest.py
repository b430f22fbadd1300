"""Fixtures for the storage tests: a fake clock and a factory that (re)opens the test log."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from storage_helpers import FakeClock

from strom.storage import Log, LogConfig, StorageError


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "topic-0"


@pytest.fixture
def open_log(log_dir: Path, clock: FakeClock) -> Iterator[Callable[..., Log]]:
    """Open the test log (again) with a config; closes what it opened at teardown."""
    opened: list[Log] = []

    def _open(config: LogConfig | None = None, **kwargs: object) -> Log:
        log = Log.open(log_dir, config or LogConfig(), clock=clock, **kwargs)  # type: ignore[arg-type]
        opened.append(log)
        return log

    yield _open
    for log in opened:
        with contextlib.suppress(StorageError, OSError):
            log.close()

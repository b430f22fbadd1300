"""LogManager at start when file descriptors run out: the logs it cannot open go offline
(their checkpointed offsets kept), the others load, and a reserve of descriptors is
free afterwards for the broker to serve with."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from strom.storage import LogConfig, LogManager
from strom.storage import manager as manager_module
from strom.storage.checkpoint import LOG_START_CHECKPOINT, read_offset_checkpoint


def _make_logs(root: Path, count: int) -> None:
    logs = LogManager([root], broker_id=1, cluster_id="c")
    for i in range(count):
        logs.get_or_create("t", i, LogConfig())
    logs.get_or_create("__consumer_offsets", 0, LogConfig())
    logs.close()


def test_a_log_that_cannot_be_opened_goes_offline_and_keeps_its_offsets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_logs(tmp_path, 3)
    starts = read_offset_checkpoint(tmp_path / LOG_START_CHECKPOINT)
    assert ("t", 1) in starts

    real_open = manager_module.Log.open

    def failing(path: Path, *args: object, **kwargs: object) -> object:
        if path.name == "t-1":
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(manager_module.Log, "open", failing)
    logs = LogManager([tmp_path], broker_id=1, cluster_id="c")
    loaded = logs.load_all(lambda _: LogConfig(), reserve_fds=8)
    assert sorted(loaded) == [("__consumer_offsets", 0), ("t", 0), ("t", 2)]
    assert list(logs.offline) == [("t", 1)]
    assert "Too many open files" in logs.offline[("t", 1)]
    logs.checkpoint()
    assert read_offset_checkpoint(tmp_path / LOG_START_CHECKPOINT) == starts
    logs.close()


def test_running_out_of_descriptors_while_loading_leaves_the_reserve_free(
        tmp_path: Path) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 200:
        pytest.skip("needs a hard limit of at least 200")
    _make_logs(tmp_path, 120)
    script = textwrap.dedent(f"""
        import os, resource
        from pathlib import Path
        from strom.storage import LogConfig, LogManager
        resource.setrlimit(resource.RLIMIT_NOFILE, (80, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        logs = LogManager([Path({str(tmp_path)!r})], broker_id=1, cluster_id="c")
        loaded = logs.load_all(lambda _: LogConfig(), reserve_fds=20)
        spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(15)]
        print(len(loaded), len(logs.offline), ("__consumer_offsets", 0) in loaded)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    loaded, offline, offsets_loaded = out.stdout.split()
    assert int(loaded) > 0 and int(offline) > 0 and int(loaded) + int(offline) == 121
    assert offsets_loaded == "True"  # internal topics load first
    assert "is offline" in out.stderr

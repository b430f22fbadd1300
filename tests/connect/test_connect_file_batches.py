"""The file source cuts its buffer into `batch.size` records per poll, keeps a partial last
line for later and gives each record the byte position after its line, so a restart
resumes exactly after the last committed line (the sink: one line per value, bytes decoded)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strom.connect.api.records import SinkRecord
from strom.connect.connectors.file import FileStreamSinkTask, FileStreamSourceTask


class Reader:
    def __init__(self, stored: dict[str, Any] | None) -> None:
        self.stored = stored

    def offset(self, partition: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.stored


class Context:
    def __init__(self, stored: dict[str, Any] | None = None) -> None:
        self.offset_storage_reader = Reader(stored)


def source(path: Path, stored: dict[str, Any] | None = None, batch: int = 2) -> FileStreamSourceTask:
    task = FileStreamSourceTask()
    task.initialize(Context(stored))  # type: ignore[arg-type]
    task.start({"file": str(path), "topic": "lines", "batch.size": str(batch)})
    return task


def test_batches_positions_and_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"one\ntwo\r\nthree\nfour\nfiv")
    task = source(path)
    batches = [task.poll(), task.poll(), task.poll()]
    values = [[r.value for r in batch or []] for batch in batches]
    assert values == [["one", "two"], ["three", "four"], []]
    positions = [r.source_offset["position"] for batch in batches for r in batch or []]  # type: ignore[index]
    assert positions == [4, 9, 15, 20]
    assert batches[0][0].source_partition == {"filename": str(path)}  # type: ignore[index]
    with open(path, "ab") as out:
        out.write(b"e\n")
    assert [(r.value, r.source_offset) for r in task.poll() or []] == [("five", {"position": 25})]
    task.stop()


def test_a_restart_resumes_after_the_stored_position(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"one\ntwo\nthree\n")
    task = source(path, {"position": 4}, batch=10)
    assert [r.value for r in task.poll() or []] == ["two", "three"]
    task.stop()


def test_the_sink_writes_one_line_per_value(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    task = FileStreamSinkTask()
    task.start({"file": str(path)})
    task.put([SinkRecord("t", 0, None, None, None, v, kafka_offset=i) for i, v in enumerate(["a", b"b", 3])])
    assert path.read_bytes() == b"a\nb\n3\n"  # written through at put, before any flush
    task.stop()

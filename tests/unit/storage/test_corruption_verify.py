"""strom.storage.verify: the offline deep check behind `strom storage verify`."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import crc32c
import pytest
from storage_helpers import FakeClock, append, batch, headers_of, read_all

from strom.protocol.records import HEADER_SIZE, scan_batches
from strom.storage import Log, LogConfig, LogManager
from strom.storage.verify import verify

OpenLog = Callable[..., Log]
CONFIG = LogConfig(segment_bytes=1500, index_interval_bytes=100)


def _written(open_log: OpenLog, batches: int = 30) -> Log:
    log = open_log(CONFIG)
    for i in range(batches):
        append(log, batch(3, value_size=20, tag=i, timestamp=1000 + i))
    log.close()
    return log


def _positions(path: Path) -> list[int]:
    return [pos for pos, _ in scan_batches(path.read_bytes())]


def _poke(path: Path, position: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        f.write(data)


def _problems(report: object) -> list[tuple[str, int, str]]:
    return [(f.path.name, p.position, p.message)
            for f in report.files for p in f.problems]  # type: ignore[attr-defined]


def test_a_healthy_partition_passes(open_log: OpenLog) -> None:
    log = _written(open_log)
    report = verify(log.dir)
    assert report.problems == 0
    logs = [f for f in report.files if f.kind == "log"]
    assert [f.first_offset for f in logs] == [s.base_offset for s in log.segments]
    assert sum(f.records for f in logs) == 90
    assert sum(f.batches for f in logs) == 30
    assert {f.kind for f in report.files} == {"log", "index", "timeindex"}
    assert verify(log.dir.parent).to_json()["ok"] is True  # the log dir above it
    assert verify(log.segments[0].log_path).problems == 0  # one file


def test_crc_mismatch_and_damaged_length_are_found_and_scanning_resumes(
    open_log: OpenLog,
) -> None:
    log = _written(open_log)
    path = log.segments[1].log_path
    positions = _positions(path)
    _poke(path, positions[3] + 100, b"\xee")
    _poke(path, positions[6] + 8, struct.pack(">i", 5000))
    report = verify(path)
    problems = _problems(report)
    assert [(name, pos) for name, pos, _ in problems] == [
        (path.name, positions[3]), (path.name, positions[6])]
    assert "CRC-32C mismatch" in problems[0][2]
    assert "runs past the end of the file" in problems[1][2]
    log_report = report.files[0]
    # past a CRC mismatch the batch's own length is trusted; past a damaged length the
    # next valid batch is searched for
    assert log_report.notes == [f"valid batches resume at byte {positions[7]}"]
    assert log_report.batches == len(positions) - 2


def test_records_that_do_not_decode_under_a_valid_crc(open_log: OpenLog) -> None:
    """What CRC checks cannot see: a lying record count, signed by a buggy writer."""
    log = _written(open_log, batches=3)
    path = log.segments[0].log_path
    position = _positions(path)[1]
    data = bytearray(path.read_bytes())
    struct.pack_into(">i", data, position + 57, 9)  # records_count 3 -> 9
    size = struct.unpack_from(">i", data, position + 8)[0] + 12
    struct.pack_into(">I", data, position + 17, crc32c.crc32c(data[position + 21:position + size]))
    path.write_bytes(bytes(data))
    problems = _problems(verify(path))
    assert len(problems) == 1 and problems[0][1] == position
    assert "do not decode" in problems[0][2]


def test_index_entries_must_point_at_batch_starts(open_log: OpenLog) -> None:
    log = _written(open_log)
    index = log.segments[0].index.path
    _poke(index, 4, struct.pack(">i", 7))
    time_index = log.segments[0].time_index.path
    _poke(time_index, 12, struct.pack(">q", 5))  # second entry: timestamp out of order
    problems = _problems(verify(log.dir))
    assert (index.name, 0, "entry 0 points at byte 7, which is not a batch start") in problems
    assert any(name == time_index.name and pos == 12 and "out of order" in message
               for name, pos, message in problems)


def test_offsets_reaching_the_next_segment(open_log: OpenLog) -> None:
    log = _written(open_log)
    first, second = log.segments[0].log_path, log.segments[1]
    _poke(first, _positions(first)[2], struct.pack(">q", second.base_offset))
    messages = [m for name, _, m in _problems(verify(log.dir)) if name == first.name]
    assert any("reaches the next segment's base" in m for m in messages)


def test_torn_tail_and_copies_kept_aside(open_log: OpenLog) -> None:
    log = _written(open_log)
    last = log.segments[-1].log_path
    last.write_bytes(last.read_bytes()[:-HEADER_SIZE // 2])
    (log.dir / f"{last.name}.1700000000000.corrupt").write_bytes(b"original bytes")
    report = verify(log.dir)
    assert [m for _, _, m in _problems(report) if "torn" in m]
    copies = [f for f in report.files if f.kind == "corrupt-copy"]
    assert len(copies) == 1 and not copies[0].problems


def test_not_a_segment(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError):
        verify(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "missing")


def test_the_repair_hint_repairs(tmp_path: Path) -> None:
    """What `strom storage verify` tells the operator to do works: damage in an old
    (sealed, clean) segment is cut out at the next start, later batches kept."""
    d = tmp_path / "logs"
    manager = LogManager([d], clock=FakeClock(), broker_id=1, cluster_id="c")
    manager.load_all(lambda _t: CONFIG)
    log = manager.get_or_create("orders", 0, CONFIG)
    spans = [(i.first_offset, i.last_offset) for i in (
        append(log, batch(3, value_size=20, tag=t)) for t in range(30))]
    first = log.segments[0].log_path
    manager.close()
    position = _positions(first)[4]
    _poke(first, position + 60, b"\x00\x00\x00")
    assert verify(d).problems == 1
    (d / "recovery-point-offset-checkpoint").unlink()
    (d / ".kafka_cleanshutdown").unlink()
    again = LogManager([d], clock=FakeClock(), broker_id=1, cluster_id="c")
    reopened = again.load_all(lambda _t: CONFIG)[("orders", 0)]
    assert headers_of(read_all(reopened)) == spans[:4] + spans[5:]
    again.close()
    report = verify(d)
    assert report.problems == 0
    assert [f.kind for f in report.files].count("corrupt-copy") == 1

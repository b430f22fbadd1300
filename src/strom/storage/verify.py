"""Offline check of log directories, as ``kafka-dump-log --deep-iteration`` (plus indexes).

``strom storage verify`` runs this against a stopped broker's data (or a copy): every
segment is read batch by batch and checked the way recovery and the consumers would read
it, and every index entry is checked against the batches it points at. Nothing is
written; files are opened read-only.

Per ``.log`` file: each batch header (magic 2, sane length, whole within the file), its
CRC-32C, offsets moving forward, inside the segment (at or above its base, below the next
segment's base, within int32 of the base), and every record decoding (decompressed with
the produce cap) with increasing offsets inside the batch's range. After damage the scan
looks for the next valid batch, so the report says how much after it is intact.

Per ``.index``: whole 8-byte entries, increasing offsets and positions, each position a
batch start and each offset that batch's last offset (Kafka's DumpLogSegments check).
Per ``.timeindex``: whole 12-byte entries, timestamps strictly increasing, each offset the
last offset of a batch whose max timestamp is the entry's.

Indexes are rebuilt at start when damaged, so index problems never lose data; they are
reported all the same, as Kafka's tool does.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from strom.protocol.records import (
    HEADER_SIZE,
    BatchHeader,
    InvalidBatch,
    crc_of,
    decode_records,
    read_header,
)
from strom.storage.files import (
    CORRUPT_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    parse_partition_dir,
    parse_segment_name,
)
from strom.storage.segment import find_next_batch

INT32_MAX = 2**31 - 1
_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024  # the broker's strom.decompression.max.bytes


class Problem(NamedTuple):
    position: int  # byte position in the file
    message: str


@dataclass
class FileReport:
    """What was found in one file; ``problems`` empty means it passed."""

    path: Path
    kind: str  # log, index, timeindex, corrupt-copy
    size: int
    batches: int = 0
    records: int = 0
    entries: int = 0
    first_offset: int | None = None
    last_offset: int | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        out["problems"] = [p._asdict() for p in self.problems]
        return out


@dataclass
class Report:
    files: list[FileReport] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(len(f.problems) for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.problems == 0, "problems": self.problems,
                "files": [f.to_json() for f in self.files]}


class _Batch(NamedTuple):
    base_offset: int
    last_offset: int
    max_timestamp: int


def verify(path: Path, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED) -> Report:
    """Check a log dir (of partition dirs), one partition dir, or one ``.log`` file."""
    path = Path(path)
    report = Report()
    if path.is_file():
        parsed = parse_segment_name(path.name)
        if parsed is None or parsed[1] != LOG_SUFFIX:
            raise ValueError(f"{path} is not a segment (<20 digits>.log) file")
        _verify_segment(report, path.parent, parsed[0], None, max_decompressed)
        return report
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    if any(parse_segment_name(p.name) for p in path.iterdir() if p.is_file()):
        verify_partition(report, path, max_decompressed)
        return report
    for child in sorted(path.iterdir()):
        if child.is_dir() and parse_partition_dir(child.name) is not None:
            verify_partition(report, child, max_decompressed)
    return report


def verify_partition(report: Report, dir: Path, max_decompressed: int) -> None:
    bases = sorted(
        parsed[0] for parsed in (parse_segment_name(p.name) for p in dir.iterdir())
        if parsed is not None and parsed[1] == LOG_SUFFIX
    )
    previous_end: int | None = None
    for i, base in enumerate(bases):
        limit = bases[i + 1] if i + 1 < len(bases) else None
        log_report = _verify_segment(report, dir, base, limit, max_decompressed)
        first = log_report.first_offset
        if previous_end is not None and first is not None and first < previous_end:
            log_report.problems.append(Problem(0, f"first offset {first} is below the "
                                                  f"previous segment's end {previous_end}"))
        if log_report.last_offset is not None:
            previous_end = log_report.last_offset + 1
    for copy in sorted(dir.glob(f"*{CORRUPT_SUFFIX}")):
        report.files.append(FileReport(copy, "corrupt-copy", copy.stat().st_size, notes=[
            "original bytes of a damaged segment, kept aside by recovery for inspection"]))


def _verify_segment(
    report: Report, dir: Path, base: int, limit: int | None, max_decompressed: int
) -> FileReport:
    log_path = dir / f"{base:020d}{LOG_SUFFIX}"
    log_report, batches = _verify_log(log_path, base, limit, max_decompressed)
    report.files.append(log_report)
    for suffix, check in ((INDEX_SUFFIX, _check_offset_index),
                          (TIME_INDEX_SUFFIX, _check_time_index)):
        index_path = dir / f"{base:020d}{suffix}"
        if index_path.exists():
            index_report = FileReport(index_path, suffix[1:], index_path.stat().st_size)
            check(index_report, index_path.read_bytes(), base, batches)
            report.files.append(index_report)
        else:
            log_report.notes.append(f"no {suffix} file (rebuilt at the next start)")
    return log_report


# -- the log file ------------------------------------------------------------------------


def _verify_log(
    path: Path, base: int, limit: int | None, max_decompressed: int
) -> tuple[FileReport, dict[int, _Batch]]:
    """Scan every batch; returns the report and the batches by position."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        report = FileReport(path, "log", size)
        batches: dict[int, _Batch] = {}
        position, expected = 0, base
        while position < size:
            header, data, problem = _read_batch(fd, position, size)
            if problem:
                report.problems.append(Problem(position, problem))
                if header is not None:  # damaged, but indexes may well point at it
                    batches[position] = _Batch(header.base_offset, header.last_offset,
                                               header.max_timestamp)
                resumed = _after_damage(fd, position, size, header, expected, report)
                if resumed is None:
                    break
                position = resumed
                continue
            assert header is not None
            for message in _batch_problems(header, data, expected, base, limit,
                                           max_decompressed, report):
                report.problems.append(Problem(position, message))
            batches[position] = _Batch(header.base_offset, header.last_offset,
                                       header.max_timestamp)
            if report.first_offset is None:
                report.first_offset = header.base_offset
            report.last_offset = header.last_offset
            report.batches += 1
            expected = max(expected, header.next_offset)
            position += header.size
        return report, batches
    finally:
        os.close(fd)


def _after_damage(
    fd: int, position: int, size: int, header: BatchHeader | None, expected: int,
    report: FileReport,
) -> int | None:
    """Where to read on after a bad batch: past it when only its CRC failed (its length
    is probably right; if not, the next read says so), else the next valid batch."""
    if header is not None and position + header.size <= size:
        return position + header.size
    resumed = find_next_batch(fd, position + 1, size, _at_or_after(expected))
    if resumed is not None:
        report.notes.append(f"valid batches resume at byte {resumed}")
    return resumed


def _at_or_after(expected: int) -> Callable[[BatchHeader], bool]:
    return lambda header: header.base_offset >= expected


def _read_batch(fd: int, position: int, size: int) -> tuple[BatchHeader | None, bytes, str]:
    """A whole batch with a good CRC at ``position`` (header, bytes, ""), or why not
    (with the header when it could be read)."""
    head = os.pread(fd, HEADER_SIZE, position)
    if len(head) < HEADER_SIZE:
        return None, b"", f"torn batch header: {len(head)} bytes left at the end of the file"
    try:
        header = read_header(head)
    except InvalidBatch as exc:
        return None, b"", f"bad batch header: {exc}"
    if position + header.size > size:
        return header, b"", (f"batch of {header.size} bytes runs past the end of the file "
                             f"({size} bytes): torn write or damaged length")
    data = os.pread(fd, header.size, position)
    crc = crc_of(data, 0, header.size)
    if crc != header.crc:
        return header, b"", (f"CRC-32C mismatch: stored {header.crc:#010x}, "
                             f"computed {crc:#010x}")
    return header, data, ""


def _batch_problems(
    header: BatchHeader, data: bytes, expected: int, base: int, limit: int | None,
    max_decompressed: int, report: FileReport,
) -> list[str]:
    problems = []
    if header.last_offset_delta < 0:
        problems.append(f"negative last offset delta {header.last_offset_delta}")
    if header.base_offset < expected:
        problems.append(f"offsets go backwards: batch at offset {header.base_offset} "
                        f"after offset {expected - 1}")
    if header.base_offset < base or header.last_offset - base > INT32_MAX:
        problems.append(f"offsets {header.base_offset}..{header.last_offset} do not fit "
                        f"the segment based at {base}")
    if limit is not None and header.last_offset >= limit:
        problems.append(f"offset {header.last_offset} reaches the next segment's base {limit}")
    return problems + _record_problems(header, data, max_decompressed, report)


def _record_problems(
    header: BatchHeader, data: bytes, max_decompressed: int, report: FileReport
) -> list[str]:
    try:
        records = decode_records(data, max_decompressed)
    except ValueError as exc:  # InvalidBatch, DecompressionError
        return [f"records of offsets {header.base_offset}..{header.last_offset} do not "
                f"decode: {exc}"]
    report.records += len(records)
    offsets = [r.offset for r in records]
    if any(b <= a for a, b in itertools.pairwise(offsets)):
        return ["record offsets inside the batch do not increase"]
    if offsets and (offsets[0] < header.base_offset or offsets[-1] > header.last_offset):
        return [f"record offsets {offsets[0]}..{offsets[-1]} outside the batch's "
                f"{header.base_offset}..{header.last_offset}"]
    return []


# -- indexes -----------------------------------------------------------------------------


def _check_offset_index(
    report: FileReport, data: bytes, base: int, batches: dict[int, _Batch]
) -> None:
    size = _OFFSET_ENTRY.size
    if len(data) % size:
        report.problems.append(Problem(len(data) - len(data) % size,
                                       f"not a whole number of {size}-byte entries"))
    previous = (-1, -1)
    for i in range(len(data) // size):
        rel, position = _OFFSET_ENTRY.unpack_from(data, i * size)
        report.entries += 1
        where = i * size
        if rel <= previous[0] or position <= previous[1]:
            report.problems.append(Problem(where, f"entry {i} ({base + rel}, byte {position})"
                                                  " does not increase"))
        previous = (rel, position)
        batch = batches.get(position)
        if batch is None:
            report.problems.append(Problem(where, f"entry {i} points at byte {position}, "
                                                  "which is not a batch start"))
        elif batch.last_offset != base + rel:
            report.problems.append(Problem(where, f"entry {i} says offset {base + rel}, the "
                                                  f"batch there ends at {batch.last_offset}"))


def _check_time_index(
    report: FileReport, data: bytes, base: int, batches: dict[int, _Batch]
) -> None:
    size = _TIME_ENTRY.size
    if len(data) % size:
        report.problems.append(Problem(len(data) - len(data) % size,
                                       f"not a whole number of {size}-byte entries"))
    by_last = {batch.last_offset: batch for batch in batches.values()}
    previous_ts, previous_rel = -1, -1
    for i in range(len(data) // size):
        timestamp, rel = _TIME_ENTRY.unpack_from(data, i * size)
        report.entries += 1
        where = i * size
        if timestamp <= previous_ts or rel < previous_rel:
            report.problems.append(Problem(where, f"entry {i} ({timestamp}, offset "
                                                  f"{base + rel}) is out of order"))
        previous_ts, previous_rel = timestamp, rel
        batch = by_last.get(base + rel)
        if batch is None:
            report.problems.append(Problem(where, f"entry {i} points at offset {base + rel}, "
                                                  "which ends no batch"))
        elif batch.max_timestamp != timestamp:
            report.problems.append(Problem(where, f"entry {i} says timestamp {timestamp}, the "
                                                  f"batch's max timestamp is "
                                                  f"{batch.max_timestamp}"))

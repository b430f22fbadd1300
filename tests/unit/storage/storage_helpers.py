"""Helpers for the storage tests: batch builders, a fake clock, whole-log readers.

Named uniquely (not ``helpers.py``) because test directories here have no ``__init__.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import crc32c

from strom.protocol.records import decode_records, encode_batch, scan_batches, validate_batches
from strom.storage import AppendInfo, Log
from support.wire_spec import varint


class FakeClock:
    """A clock the test moves by hand: no sleeps."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def batch(
    count: int = 1, *, value_size: int = 10, timestamp: int = 1000, tag: int = 0
) -> bytearray:
    """A v2 batch of ``count`` records whose values encode ``tag`` and their index."""
    records: list[tuple[bytes | None, bytes | None]] = [
        (None, f"{tag}:{i}:".encode().ljust(value_size, b"x")) for i in range(count)
    ]
    return bytearray(encode_batch(records, timestamp_ms=timestamp))


def append(log: Log, *batches: bytearray, epoch: int = 0, lat: int | None = None) -> AppendInfo:
    """Append ``batches`` as one produce payload."""
    payload = bytearray(b"".join(batches))
    return log.append_as_leader(
        payload, validate_batches(payload), leader_epoch=epoch, log_append_time_ms=lat
    )


def headers_of(data: bytes) -> list[tuple[int, int]]:
    """(base offset, last offset) of each whole batch in ``data``."""
    return [(h.base_offset, h.last_offset) for _, h in scan_batches(data, verify_crc=True)]


def values_of(data: bytes) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every record in ``data``."""
    out: list[tuple[int, bytes | None]] = []
    for pos, h in scan_batches(data, verify_crc=True):
        out += [(r.offset, r.value) for r in decode_records(data[pos : pos + h.size])]
    return out


def read_all(log: Log, start: int | None = None, max_bytes: int = 1 << 20) -> bytes:
    """Every batch from ``start`` (log start by default) to the log end."""
    offset = log.log_start_offset if start is None else start
    out = bytearray()
    while offset < log.log_end_offset:
        result = log.read(offset, max_bytes)
        assert result.data, f"no data at {offset} < {log.log_end_offset}"
        out += result.data
        offset = headers_of(result.data)[-1][1] + 1
    return bytes(out)


def batch_positions(log: Log) -> list[tuple[int, int]]:
    """(position, size) of every batch of the active segment, for tests that damage one."""
    segment = log.active_segment
    return [(pos, h.size) for pos, h in scan_batches(segment.read(0, segment.size))]


def poke(path: Path, position: int, data: bytes) -> None:
    """Overwrite bytes of a file in place (simulated disk damage)."""
    with open(path, "r+b") as f:
        f.seek(position)
        f.write(data)


def crash(log: Log) -> None:
    """Drop a log as a crash would: close its files, flush nothing, write no index."""
    for segment in log.segments:
        segment.close()
    log._closed = True  # so a later close() is a no-op


def batch_with_timestamps(timestamps: list[int]) -> bytearray:
    """One uncompressed batch whose records carry the given timestamps (in order).

    encode_batch stamps every record alike; ListOffsets must look at record deltas.
    """
    base = min(timestamps)
    body = bytearray()
    for delta, ts in enumerate(timestamps):
        value = f"r{delta}".encode()
        rec = b"\x00" + varint(ts - base) + varint(delta) + varint(-1)
        rec += varint(len(value)) + value + varint(0)
        body += varint(len(rec)) + rec
    tail = struct.pack(
        ">hiqqqhii", 0, len(timestamps) - 1, base, max(timestamps), -1, -1, -1, len(timestamps)
    ) + bytes(body)
    crc = crc32c.crc32c(tail)
    return bytearray(struct.pack(">qiibI", 0, 9 + len(tail), 0, 2, crc) + tail)

"""Producer-state snapshots in Kafka's `<offset>.snapshot` format.

Without snapshots a restart would replay every batch header of the log to rebuild the
idempotence state: startup cost growing with history. A snapshot taken at offset N holds
each producer's last batch; startup loads the newest snapshot at or below the log end and
replays only the batches after it.

Layout (big-endian), as Kafka's ProducerStateManager writes it (version 1)::

    version int16 | crc uint32 (CRC-32C of everything after it) | count int32 |
    count x (producer_id int64, epoch int16, last_sequence int32, last_offset int64,
             offset_delta int32, timestamp int64, coordinator_epoch int32,
             current_txn_first_offset int64)
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c

log = logging.getLogger(__name__)
VERSION = 1
SUFFIX = ".snapshot"
KEEP = 2
_HEAD = struct.Struct(">hI")
_COUNT = struct.Struct(">i")
_ENTRY = struct.Struct(">qhiqiqiq")


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    producer_id: int
    epoch: int
    last_sequence: int
    last_offset: int
    offset_delta: int
    timestamp: int
    coordinator_epoch: int = -1
    txn_first_offset: int = -1  # the open transaction's first offset; -1: none


def _path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SUFFIX}"


def snapshot_offsets(directory: Path) -> list[int]:
    offsets = []
    for entry in directory.glob(f"*{SUFFIX}"):
        stem = entry.name[: -len(SUFFIX)]
        if stem.isdigit():
            offsets.append(int(stem))
    return sorted(offsets)


def write(directory: Path, offset: int, entries: list[SnapshotEntry]) -> None:
    body = _COUNT.pack(len(entries)) + b"".join(
        _ENTRY.pack(e.producer_id, e.epoch, e.last_sequence, e.last_offset, e.offset_delta,
                    e.timestamp, e.coordinator_epoch, e.txn_first_offset)
        for e in entries
    )
    data = _HEAD.pack(VERSION, crc32c.crc32c(body)) + body
    target = _path(directory, offset)
    tmp = target.with_suffix(".snapshot.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    for old in snapshot_offsets(directory)[:-KEEP]:
        _path(directory, old).unlink(missing_ok=True)


def delete_all(directory: Path) -> None:
    """Forget every snapshot (the log was emptied and starts again elsewhere)."""
    for offset in snapshot_offsets(directory):
        _path(directory, offset).unlink(missing_ok=True)


def load_latest(directory: Path, max_offset: int) -> tuple[int, list[SnapshotEntry]] | None:
    """Newest valid snapshot at or below max_offset; later ones (a truncated log) are removed."""
    for offset in reversed(snapshot_offsets(directory)):
        path = _path(directory, offset)
        if offset > max_offset:
            path.unlink(missing_ok=True)
            continue
        entries = _read(path)
        if entries is not None:
            return offset, entries
        log.warning("ignoring corrupt producer snapshot %s", path)
        path.unlink(missing_ok=True)
    return None


def _read(path: Path) -> list[SnapshotEntry] | None:
    data = path.read_bytes()
    if len(data) < _HEAD.size + _COUNT.size:
        return None
    version, crc = _HEAD.unpack_from(data, 0)
    body = data[_HEAD.size :]
    if version != VERSION or crc32c.crc32c(body) != crc:
        return None
    (count,) = _COUNT.unpack_from(body, 0)
    if count < 0 or len(body) != _COUNT.size + count * _ENTRY.size:
        return None
    entries = []
    for i in range(count):
        pid, epoch, seq, last, delta, ts, coordinator_epoch, txn_first = _ENTRY.unpack_from(
            body, _COUNT.size + i * _ENTRY.size
        )
        entries.append(SnapshotEntry(pid, epoch, seq, last, delta, ts, coordinator_epoch,
                                     txn_first))
    return entries

"""Aborted transactions of a partition: what read_committed fetches are told to skip.

Kafka keeps one ``<base>.txnindex`` per segment; each entry (34 bytes, big-endian) is an
aborted transaction whose ABORT marker lies in that segment::

    version int16 (0) | producer_id int64 | first_offset int64 | last_offset int64 |
    last_stable_offset int64

``first_offset`` is the transaction's first record in this partition, ``last_offset`` its
marker, ``last_stable_offset`` the LSO once it was aborted. A read_committed Fetch answers
``aborted_transactions`` (producer id, first offset) for every entry overlapping the range
it returns, and the consumer drops those producers' records from each first offset up to
their ABORT marker.

``AbortedTransactions`` holds every entry of the partition in memory, ordered by marker
offset (a fetch looks them up without touching disk), and appends each new one to the
active segment's file. Files are not fsynced on write: a crash can lose the newest
entries, and the partition log replays markers after its producer snapshot to restore
them (``PartitionLog``), having fsynced the files before each snapshot it writes.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from strom.storage.files import TXN_INDEX_SUFFIX, segment_path

_ENTRY = struct.Struct(">hqqqq")
VERSION = 0


class AbortedTxn(NamedTuple):
    last_offset: int  # first field: entries sort by their marker
    producer_id: int
    first_offset: int
    last_stable_offset: int


def encode(entry: AbortedTxn) -> bytes:
    return _ENTRY.pack(VERSION, entry.producer_id, entry.first_offset, entry.last_offset,
                       entry.last_stable_offset)


def read_file(path: Path) -> list[AbortedTxn]:
    """Entries of one file; a torn last entry (a crash mid-write) is ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for at in range(0, len(data) - _ENTRY.size + 1, _ENTRY.size):
        version, pid, first, last, lso = _ENTRY.unpack_from(data, at)
        if version == VERSION and first <= last:
            out.append(AbortedTxn(last, pid, first, lso))
    return out


class AbortedTransactions:
    """Every aborted transaction of one partition directory (see module docstring)."""

    def __init__(self, directory: Path, segment_bases: Iterable[int]) -> None:
        self.directory = directory
        self._entries: list[AbortedTxn] = []
        self._seen: set[int] = set()  # marker offsets: replay after a crash must not repeat
        self.dirty: set[Path] = set()  # written since the last fsync
        self._dirty_lock = threading.Lock()  # sync runs in the fsync worker thread
        for base in segment_bases:
            for entry in read_file(segment_path(directory, base, TXN_INDEX_SUFFIX)):
                self._remember(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def _remember(self, entry: AbortedTxn) -> bool:
        if entry.last_offset in self._seen:
            return False
        self._seen.add(entry.last_offset)
        insort(self._entries, entry)
        return True

    def add(self, entry: AbortedTxn, segment_base: int) -> None:
        """A transaction aborted with its marker in the segment at ``segment_base``."""
        if not self._remember(entry):
            return
        path = segment_path(self.directory, segment_base, TXN_INDEX_SUFFIX)
        with open(path, "ab") as f:
            f.write(encode(entry))
        with self._dirty_lock:
            self.dirty.add(path)

    def overlapping(self, start: int, end: int) -> list[AbortedTxn]:
        """Entries a fetch of [start, end) must report: marker at or after ``start``, first
        record before ``end``."""
        at = bisect_left(self._entries, (start,))
        return [e for e in self._entries[at:] if e.first_offset < end]

    def in_range(self, start: int, end: int) -> Iterator[AbortedTxn]:
        """Entries whose marker lies in [start, end) (the log cleaner's question)."""
        at = bisect_left(self._entries, (start,))
        for entry in self._entries[at:]:
            if entry.last_offset >= end:
                return
            yield entry

    def truncate_from(self, offset: int, segment_bases: Iterable[int]) -> None:
        """Forget entries whose marker is at or after ``offset`` (the log was cut there);
        rewrite the files of the segments that remain."""
        if not self._entries or self._entries[-1].last_offset < offset:
            return
        self._entries = [e for e in self._entries if e.last_offset < offset]
        self._seen = {e.last_offset for e in self._entries}
        self._rewrite(segment_bases)

    def drop_below(self, offset: int) -> None:
        """The log start moved to ``offset``: entries wholly below it concern no record
        (their segment files went with their segments)."""
        keep = [e for e in self._entries if e.last_offset >= offset]
        if len(keep) != len(self._entries):
            self._entries = keep
            self._seen = {e.last_offset for e in keep}

    def _rewrite(self, segment_bases: Iterable[int]) -> None:
        bases = sorted(segment_bases)
        by_segment: dict[int, list[AbortedTxn]] = {b: [] for b in bases}
        for entry in self._entries:
            at = max(bisect_left(bases, entry.last_offset + 1) - 1, 0)
            if bases:
                by_segment[bases[at]].append(entry)
        for base, entries in by_segment.items():
            path = segment_path(self.directory, base, TXN_INDEX_SUFFIX)
            if not entries:
                path.unlink(missing_ok=True)
                continue
            path.write_bytes(b"".join(encode(e) for e in entries))
            with self._dirty_lock:
                self.dirty.add(path)

    def sync(self) -> None:
        """fsync the files written since the last sync (before a producer snapshot)."""
        with self._dirty_lock:
            dirty, self.dirty = self.dirty, set()
        for path in dirty:
            with contextlib.suppress(FileNotFoundError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

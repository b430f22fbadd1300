"""Sparse offset and time indexes of one segment, byte-compatible with Kafka's files.

Entries (big-endian, as Kafka writes them)::

    .index      int32 offset - segment base, int32 position of a batch in the .log
    .timeindex  int64 timestamp,             int32 offset - segment base

Why not Kafka's preallocated, writable mmap: Python cannot append to an mmap cheaply and a
preallocated file full of zeros must be trimmed on every roll and every clean close, or a
crash leaves zeros that look like entries. Instead the *active* segment keeps its entries
in a ``bytearray`` that holds exactly the bytes Kafka would have in the file:

* adding an entry is a ``bytearray`` extend, no syscall on the produce path;
* persisting is one ``pwrite`` of the new tail (on flush and on roll), and the file is
  always exactly as long as its entries, i.e. "trimmed";
* after a crash nothing is trusted anyway: recovery rebuilds the indexes of every segment
  from the recovery point on.

Rolled ("sealed") segments drop that buffer; their file is mmapped read-only on first use,
so memory does not grow with history and the page cache does the caching, as in Kafka.
Lookups binary-search either buffer in place, unpacking one field per probe (~20 probes
for a full index), with a shortcut for the last entry, which is where tail readers look.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import ClassVar

_Buffer = bytearray | bytes | mmap.mmap
_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")


class _Index:
    """Entries in a buffer, mirrored to a file; a subclass names the entry layout."""

    ENTRY: ClassVar[struct.Struct]

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._buf: _Buffer | None = None  # None: sealed and not mapped yet
        self.count = 0  # entries in the buffer (meaningful once loaded: see ``entries``)
        self._file_entries = 0  # entries of _buf known to be in the file
        self._damaged = False  # file was missing or not a whole number of entries
        self._file_stale = False  # file must be rewritten from _file_entries and cut
        self._unsynced = False  # written to the file but not fsynced

    # -- lifecycle ------------------------------------------------------------------

    def create(self) -> None:
        """Start an empty, writable index and an empty file next to the new segment."""
        with open(self.path, "wb"):
            pass
        self._set(bytearray(), 0)
        self._unsynced = True

    def load(self, *, writable: bool) -> None:
        """Read the file: into a bytearray for the active segment, else mmap it."""
        self.close()
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if writable:
                    buf: _Buffer = bytearray(f.read())
                elif size >= self.ENTRY.size:
                    buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                else:
                    buf = b""
        except FileNotFoundError:
            size, buf = 0, (bytearray() if writable else b"")
            self._damaged = True  # missing: the caller rebuilds it
        else:
            self._damaged = size % self.ENTRY.size != 0
        self._file_stale = self._damaged
        count = size // self.ENTRY.size
        if isinstance(buf, bytearray):
            del buf[count * self.ENTRY.size :]  # a torn last entry is not an entry
        self._set(buf, count)

    def _set(self, buf: _Buffer, count: int) -> None:
        self._buf = buf
        self.count = count
        self._file_entries = count

    @property
    def writable(self) -> bool:
        return isinstance(self._buf, bytearray)

    def reset(self) -> None:
        """Forget every entry (recovery rebuilds them); the file shrinks on persist."""
        self._buf = bytearray()
        self.count = 0
        self._file_entries = 0
        self._damaged = False
        self._file_stale = True

    def seal(self) -> None:
        """Write what is pending and let go of the buffer: it is mmapped when next used."""
        self.persist(fsync=False)
        self.close()

    def close(self) -> None:
        if isinstance(self._buf, mmap.mmap):
            self._buf.close()
        self._buf = None

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    # -- persistence ----------------------------------------------------------------

    def persist(self, *, fsync: bool) -> None:
        """Write entries not yet in the file and cut the file to the entry count."""
        buf = self._buf
        if isinstance(buf, bytearray) and (
            self._file_entries != self.count or self._file_stale
        ):
            count = self.count
            size = self.ENTRY.size
            # Copy under the GIL: the event loop may extend the bytearray meanwhile.
            tail = bytes(buf[self._file_entries * size : count * size])
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, tail, self._file_entries * size)
                os.ftruncate(fd, count * size)
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._file_entries = count
            self._file_stale = False
            self._unsynced = not fsync
        elif fsync and self._unsynced:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._unsynced = False

    # -- reading --------------------------------------------------------------------

    def _data(self) -> _Buffer:
        if self._buf is None:
            self.load(writable=False)
        assert self._buf is not None
        return self._buf

    @property
    def entries(self) -> int:
        self._data()
        return self.count

    @property
    def damaged(self) -> bool:
        """The file was missing or not a whole number of entries."""
        self._data()
        return self._damaged

    def _count_below(self, field: int, fmt: struct.Struct, target: int, *, inclusive: bool) -> int:
        """How many entries have ``field`` < ``target`` (``<=`` if inclusive): a bisect
        unpacking one field per probe, straight from the file-format bytes."""
        buf = self._data()
        unpack = fmt.unpack_from
        stride = self.ENTRY.size
        lo, hi = 0, self.count
        if inclusive:
            while lo < hi:
                mid = (lo + hi) >> 1
                if unpack(buf, mid * stride + field)[0] <= target:
                    lo = mid + 1
                else:
                    hi = mid
        else:
            while lo < hi:
                mid = (lo + hi) >> 1
                if unpack(buf, mid * stride + field)[0] < target:
                    lo = mid + 1
                else:
                    hi = mid
        return lo

    def _entry(self, i: int) -> tuple[int, int]:
        a, b = self.ENTRY.unpack_from(self._data(), i * self.ENTRY.size)
        return a, b

    def _append(self, a: int, b: int) -> None:
        buf = self._buf
        assert isinstance(buf, bytearray), "append to a sealed index"
        buf += self.ENTRY.pack(a, b)
        self.count += 1

    def _truncate_entries(self, count: int) -> None:
        buf = self._buf
        assert isinstance(buf, bytearray), "truncate a sealed index"
        if count < self.count:
            del buf[count * self.ENTRY.size :]
            self.count = count
            self._file_entries = min(self._file_entries, count)
            self._file_stale = True  # the file is longer: cut it on persist


class OffsetIndex(_Index):
    """Offset -> file position of the batch holding it (largest lower bound)."""

    ENTRY = struct.Struct(">ii")

    def append(self, offset: int, position: int) -> None:
        """Index the batch at ``position`` whose last offset is ``offset``."""
        self._append(offset - self.base_offset, position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry at or below ``offset``, else (base, 0).

        The batch holding ``offset`` starts at or after the returned position.
        """
        count = self.entries
        if count == 0:
            return self.base_offset, 0
        rel = offset - self.base_offset
        last_rel, last_pos = self._entry(count - 1)
        if rel >= last_rel:
            return self.base_offset + last_rel, last_pos
        slot = self._count_below(0, _INT, rel, inclusive=True) - 1
        if slot < 0:
            return self.base_offset, 0
        found_rel, position = self._entry(slot)
        return self.base_offset + found_rel, position

    def position_floor(self, position: int) -> int:
        """The last indexed batch position at or below ``position`` (0 if none)."""
        slot = self._count_below(4, _INT, position, inclusive=True) - 1
        return 0 if slot < 0 else self._entry(slot)[1]

    def last_position(self) -> int:
        count = self.entries
        return 0 if count == 0 else self._entry(count - 1)[1]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries for batches at or after ``position``."""
        self._truncate_entries(self._count_below(4, _INT, position, inclusive=False))

    def sane(self, log_size: int) -> bool:
        """Kafka's cheap sanity check: whole entries, first and last in range."""
        if self.damaged:
            return False
        count = self.count
        if count == 0:
            return True
        first_rel, first_pos = self._entry(0)
        last_rel, last_pos = self._entry(count - 1)
        return 0 <= first_rel <= last_rel and 0 <= first_pos <= last_pos < log_size


class TimeIndex(_Index):
    """Max timestamp so far -> offset of the batch that carried it; monotonic."""

    ENTRY = struct.Struct(">qi")

    def last_entry(self) -> tuple[int, int]:
        """(timestamp, offset) of the last entry, or (-1, base offset) when empty."""
        count = self.entries
        if count == 0:
            return -1, self.base_offset
        timestamp, rel = self._entry(count - 1)
        return timestamp, self.base_offset + rel

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add an entry only if the max timestamp grew (the index stays monotonic)."""
        last_ts, last_offset = self.last_entry()
        if timestamp > last_ts and offset >= last_offset:
            self._append(timestamp, offset - self.base_offset)

    def lookup_before(self, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the last entry with a timestamp below ``timestamp``.

        Every batch up to and including the one at that offset has a smaller max timestamp,
        so the first record at or after ``timestamp`` lies after it. (-1, base) if none.
        """
        slot = self._count_below(0, _LONG, timestamp, inclusive=False) - 1
        if slot < 0:
            return -1, self.base_offset
        found_ts, rel = self._entry(slot)
        return found_ts, self.base_offset + rel

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries pointing at ``offset`` or later."""
        rel = offset - self.base_offset
        self._truncate_entries(self._count_below(8, _INT, rel, inclusive=False))

    def sane(self) -> bool:
        if self.damaged:
            return False
        count = self.count
        if count == 0:
            return True
        first_ts, first_rel = self._entry(0)
        last_ts, last_rel = self._entry(count - 1)
        return first_ts <= last_ts and 0 <= first_rel <= last_rel

"""The sparse indexes on their own: Kafka's byte format, lookups, persistence, truncation."""

from __future__ import annotations

import struct
from pathlib import Path

from strom.storage.index import OffsetIndex, TimeIndex


def test_offset_index_format_and_lookup(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "00000000000000000100.index", 100)
    index.create()
    assert index.lookup(150) == (100, 0)
    for rel, pos in ((5, 400), (9, 900), (20, 2000)):
        index.append(100 + rel, pos)
    index.persist(fsync=True)
    assert index.path.read_bytes() == struct.pack(">iiiiii", 5, 400, 9, 900, 20, 2000)
    assert index.lookup(99) == (100, 0)
    assert index.lookup(104) == (100, 0)
    assert index.lookup(105) == (105, 400)
    assert index.lookup(108) == (105, 400)
    assert index.lookup(109) == (109, 900)
    assert index.lookup(10_000) == (120, 2000)
    assert index.position_floor(899) == 400
    assert index.position_floor(900) == 900
    assert index.position_floor(10) == 0
    assert index.last_position() == 2000


def test_sealed_index_is_mapped_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000000.index"
    entries = [v for i in range(1, 51) for v in (i * 3, i * 100)]
    path.write_bytes(struct.pack(">" + "ii" * 50, *entries))
    index = OffsetIndex(path, 0)
    assert not index.writable
    assert index.entries == 50
    for target in range(0, 160):
        expected_rel = min(target // 3 * 3, 150)
        expected = (expected_rel, expected_rel // 3 * 100) if target >= 3 else (0, 0)
        assert index.lookup(target) == expected
    assert index.sane(log_size=5001)
    assert not index.sane(log_size=5000)  # an entry pointing at or past the end
    index.close()


def test_incremental_persist_and_truncate(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "00000000000000000000.index", 0)
    index.create()
    for i in range(1, 6):
        index.append(i, i * 10)
    index.persist(fsync=False)
    index.append(6, 60)
    index.persist(fsync=False)
    entries = [v for i in range(1, 7) for v in (i, i * 10)]
    assert index.path.read_bytes() == struct.pack(">" + "ii" * 6, *entries)
    index.truncate_to_position(30)
    assert index.entries == 2
    index.append(3, 35)
    index.persist(fsync=False)
    assert index.path.read_bytes() == struct.pack(">iiiiii", 1, 10, 2, 20, 3, 35)
    index.load(writable=True)
    assert (index.entries, index.lookup(100)) == (3, (3, 35))


def test_damaged_files(tmp_path: Path) -> None:
    missing = OffsetIndex(tmp_path / "00000000000000000000.index", 0)
    assert missing.damaged
    partial = tmp_path / "00000000000000000001.index"
    partial.write_bytes(b"\x00" * 12)
    assert OffsetIndex(partial, 1).damaged
    reset = OffsetIndex(partial, 1)
    reset.reset()
    reset.persist(fsync=False)
    assert partial.read_bytes() == b""


def test_time_index_is_monotonic_and_looks_up_strictly_before(tmp_path: Path) -> None:
    index = TimeIndex(tmp_path / "00000000000000000010.timeindex", 10)
    index.create()
    assert index.last_entry() == (-1, 10)
    index.maybe_append(-1, 10)  # no timestamp: no entry
    index.maybe_append(500, 12)
    index.maybe_append(500, 15)  # did not grow
    index.maybe_append(400, 16)  # went back
    index.maybe_append(800, 20)
    index.persist(fsync=False)
    assert index.path.read_bytes() == struct.pack(">qiqi", 500, 2, 800, 10)
    assert index.last_entry() == (800, 20)
    assert index.lookup_before(500) == (-1, 10)
    assert index.lookup_before(501) == (500, 12)
    assert index.lookup_before(10**12) == (800, 20)
    index.truncate_to_offset(20)
    assert index.last_entry() == (500, 12)
    assert index.sane()

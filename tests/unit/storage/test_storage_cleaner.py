"""The log cleaner on real files: what survives a clean, tombstone horizons, transactions,
producer state, the checkpoint, and crash-safe replacement (every point of the swap)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_helpers import FakeClock, read_all

from strom.protocol.records import (
    Attr,
    Codec,
    decode_records,
    encode_batch,
    read_header,
    scan_batches,
    validate_batches,
)
from strom.storage import Log, LogConfig, LogManager
from strom.storage.cleaner import CleanerConfig
from strom.storage.cleaner_manager import CleanerManager
from strom.storage.files import SWAP_SUFFIX

DAY = 24 * 3600 * 1000
COMPACT = LogConfig(segment_bytes=600, compact=True, delete=False, min_cleanable_dirty_ratio=0.01,
                    delete_retention_ms=DAY)


@pytest.fixture
def manager(tmp_path: Path, clock: FakeClock) -> Iterator[LogManager]:
    logs = LogManager([tmp_path / "data"], clock=clock, broker_id=0, cluster_id="c")
    logs.load_all(lambda _topic: COMPACT)
    yield logs
    logs.close()


def put(log: Log, records: list[tuple[bytes | None, bytes | None]], *,
        codec: Codec = Codec.NONE, timestamp: int = 1000, **batch_fields: int) -> None:
    payload = bytearray(encode_batch(records, timestamp_ms=timestamp, codec=codec,
                                     **batch_fields))  # type: ignore[arg-type]
    log.append_as_leader(payload, validate_batches(payload), leader_epoch=0)


def records(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    data = read_all(log)
    out = []
    for pos, header in scan_batches(data, verify_crc=True):
        out += [(r.offset, r.key, r.value) for r in decode_records(data[pos : pos + header.size])]
    return out


def cleaned_part(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    active = log.active_segment.base_offset
    return [r for r in records(log) if r[0] < active]


def test_a_clean_keeps_the_latest_value_of_every_key(manager: LogManager,
                                                    clock: FakeClock) -> None:
    log = manager.get_or_create("t", 0, COMPACT)
    rng = random.Random(7)
    model: dict[bytes, bytes] = {}
    for i in range(300):
        key = b"k%d" % rng.randrange(20)
        codec = rng.choice([Codec.NONE, Codec.GZIP, Codec.ZSTD, Codec.LZ4, Codec.SNAPPY])
        batch = [(key, b"v%d" % i), (b"k%d" % rng.randrange(20), b"w%d" % i)]
        put(log, batch, codec=codec)
        model.update(batch)  # type: ignore[arg-type]
    log.roll()
    end = log.log_end_offset
    cleaner = CleanerManager(manager, CleanerConfig())
    assert cleaner.clean_once(clock.now) == ("t", 0)

    survivors = records(log)
    keys = [key for _, key, _ in survivors]
    assert len(keys) == len(set(keys)) == len(model)
    assert {key: value for _, key, value in survivors} == model
    offsets = [offset for offset, _, _ in survivors]
    assert offsets == sorted(offsets) and log.log_end_offset == end
    assert cleaner.checkpoints[("t", 0)] == log.active_segment.base_offset
    assert cleaner.state[("t", 0)].records_removed == 600 - len(model)
    assert log.size_bytes < 600 * 5
    # Reads at any offset, including inside the gaps, land on the next surviving batch.
    for offset in range(0, end, 37):
        data = log.read(offset, 1 << 20).data
        assert not data or read_header(data).last_offset >= offset


def test_the_active_segment_and_records_above_the_high_watermark_stay(
        manager: LogManager, clock: FakeClock) -> None:
    log = manager.get_or_create("t", 1, COMPACT)
    for i in range(40):
        put(log, [(b"same", b"%d" % i)])
    cleaner = CleanerManager(manager, CleanerConfig())
    segments = [s.base_offset for s in log.segments]
    hw = segments[2]
    assert cleaner.clean_once(clock.now, high_watermark=lambda _k: hw) == ("t", 1)
    survivors = records(log)
    assert [o for o, _, _ in survivors if o < hw] == [hw - 1]
    assert [o for o, _, _ in survivors if o >= hw] == list(range(hw, 40))


def test_tombstones_stay_for_delete_retention_then_go(manager: LogManager,
                                                      clock: FakeClock) -> None:
    log = manager.get_or_create("t", 2, COMPACT)
    for i in range(30):
        put(log, [(b"a", b"%d" % i), (b"b", b"%d" % i)])
    put(log, [(b"a", None)])
    for i in range(10):
        put(log, [(b"c", b"%d" % i)])
    log.roll()
    cleaner = CleanerManager(manager, CleanerConfig())
    assert cleaner.clean_once(clock.now) == ("t", 2)
    assert {k: v for _, k, v in records(log)} == {b"a": None, b"b": b"29", b"c": b"9"}
    horizon_batches = [h for _, h in scan_batches(read_all(log)) if h.attributes & Attr.DELETE_HORIZON]
    assert [h.base_timestamp for h in horizon_batches] == [clock.now + DAY]
    assert cleaner.state[("t", 2)].horizon_ms == clock.now + DAY

    clock.advance(DAY - 1)
    assert cleaner.clean_once(clock.now) is None, "nothing dirty and the horizon not reached"
    clock.advance(1)
    assert cleaner.clean_once(clock.now) == ("t", 2)
    assert {k: v for _, k, v in records(log)} == {b"b": b"29", b"c": b"9"}
    data = read_all(log)
    assert [r.timestamp for r in decode_records(data)][:1] == [1000]


def test_aborted_transactions_and_empty_markers_go(manager: LogManager, clock: FakeClock) -> None:
    log = manager.get_or_create("t", 3, COMPACT)
    txn = {"producer_id": 7, "producer_epoch": 0, "attributes": Attr.TRANSACTIONAL}
    put(log, [(b"x", b"committed")], base_sequence=0, **txn)
    put(log, [(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00")], producer_id=7,
        producer_epoch=0, attributes=Attr.TRANSACTIONAL | Attr.CONTROL)  # COMMIT
    put(log, [(b"x", b"aborted"), (b"y", b"aborted")], base_sequence=1, **txn)
    put(log, [(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")], producer_id=7,
        producer_epoch=0, attributes=Attr.TRANSACTIONAL | Attr.CONTROL)  # ABORT
    for i in range(12):
        put(log, [(b"z", b"%d" % i)])
    log.roll()
    cleaner = CleanerManager(manager, CleanerConfig())
    assert cleaner.clean_once(clock.now) == ("t", 3)
    data = read_all(log)
    values = [(k, v) for _, k, v in records(log)]
    assert (b"x", b"committed") in values and (b"y", b"aborted") not in values
    assert (b"x", b"aborted") not in values
    controls = [h for _, h in scan_batches(data) if h.is_control]
    assert len(controls) == 2, "markers stay until their horizon"
    clock.advance(DAY)
    assert cleaner.clean_once(clock.now) == ("t", 3)
    controls = [h for _, h in scan_batches(read_all(log)) if h.is_control]
    assert len(controls) == 1, "the aborted transaction's marker (no data left) went"


def test_the_last_batch_of_a_live_producer_stays_empty(manager: LogManager,
                                                      clock: FakeClock) -> None:
    log = manager.get_or_create("t", 4, COMPACT)
    put(log, [(b"k", b"old1"), (b"k", b"old2")], producer_id=5, producer_epoch=0,
        base_sequence=0)
    put(log, [(b"k", b"new")])
    for i in range(12):
        put(log, [(b"pad", b"%d" % i)])
    log.roll()
    cleaner = CleanerManager(manager, CleanerConfig())
    assert cleaner.clean_once(clock.now, producers=lambda _k: {5: 1}) == ("t", 4)
    first = next(h for _, h in scan_batches(read_all(log)))
    assert (first.producer_id, first.records_count, first.last_offset, first.base_sequence) == (
        5, 0, 1, 0)
    assert [v for _, k, v in records(log) if k == b"k"] == [b"new"]


def test_the_checkpoint_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    logs = LogManager([tmp_path / "d"], clock=clock, broker_id=0, cluster_id="c")
    logs.load_all(lambda _t: COMPACT)
    log = logs.get_or_create("t", 0, COMPACT)
    for i in range(30):
        put(log, [(b"k%d" % (i % 3), b"%d" % i)])
    log.roll()
    assert CleanerManager(logs, CleanerConfig()).clean_once(clock.now) == ("t", 0)
    logs.close()
    text = (tmp_path / "d" / "cleaner-offset-checkpoint").read_text().split("\n")
    assert text[:3] == ["0", "1", "t 0 30"]
    again = LogManager([tmp_path / "d"], clock=clock, broker_id=0, cluster_id="c")
    again.load_all(lambda _t: COMPACT)
    cleaner = CleanerManager(again, CleanerConfig())
    assert cleaner.checkpoints == {("t", 0): 30}
    assert cleaner.clean_once(clock.now) is None, "nothing new is dirty"
    again.close()


@pytest.mark.parametrize("crash_at", ["cleaned", "swap", "old-deleted", "indexes-renamed"])
def test_a_crash_at_any_step_of_the_swap_loses_nothing(tmp_path: Path, clock: FakeClock,
                                                      crash_at: str) -> None:
    logs = LogManager([tmp_path / "d"], clock=clock, broker_id=0, cluster_id="c")
    logs.load_all(lambda _t: COMPACT)
    log = logs.get_or_create("t", 0, COMPACT)
    model: dict[bytes, bytes] = {}
    for i in range(60):
        put(log, [(b"k%d" % (i % 7), b"%d" % i)])
        model[b"k%d" % (i % 7)] = b"%d" % i
    log.roll()
    log.flush()
    before = records(log)
    cleaner = CleanerManager(logs, CleanerConfig())
    chosen = cleaner.next_job(clock.now)
    assert chosen is not None
    _, job = chosen
    groups = job.run()
    group = groups[0]
    if crash_at != "cleaned":
        group.cleaned.change_suffix(SWAP_SUFFIX)
    if crash_at in ("old-deleted", "indexes-renamed"):
        for segment in reversed(group.old):
            segment.delete()
    if crash_at == "indexes-renamed":
        for index in (group.cleaned.index, group.cleaned.time_index):
            os.replace(index.path, str(index.path).removesuffix(SWAP_SUFFIX))
    for g in groups:
        g.cleaned.close()
    for segment in log.segments:  # the crash: nothing else is written
        segment.close()
    reopened = Log.open(log.dir, COMPACT, clock=clock, recovery_point=0)
    try:
        after = records(reopened)
        assert {k: v for _, k, v in after} == model
        if crash_at == "cleaned":
            assert after == before
        else:
            assert len(after) < len(before)
        leftovers = [n for n in os.listdir(log.dir) if n.endswith((".swap", ".cleaned"))]
        assert leftovers == []
        assert [o for o, _, _ in after] == sorted(o for o, _, _ in after)
    finally:
        reopened.close()


def test_the_throttler_sleeps_off_what_went_over_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from strom.storage import cleaner

    now = [100.0]
    slept: list[float] = []
    monkeypatch.setattr(cleaner.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(cleaner.time, "sleep", slept.append)
    throttle = cleaner.Throttler(1_000_000)
    throttle.account(250_000)
    now[0] += 0.05
    throttle.account(250_000)  # 500 kB after 50 ms at 1 MB/s: 450 ms ahead
    assert slept == [pytest.approx(0.25), pytest.approx(0.45)]
    unlimited = cleaner.Throttler(float("inf"))
    unlimited.account(10**9)
    assert len(slept) == 2


def test_no_clean_is_due_once_the_tombstones_are_gone(manager: LogManager,
                                                      clock: FakeClock) -> None:
    """A batch keeps its delete-horizon flag after its tombstones went; that must not make
    the log due again and again (the cleaner spun on it)."""
    log = manager.get_or_create("t", 5, COMPACT)
    put(log, [(b"a", b"1"), (b"b", b"1")])
    put(log, [(b"a", None), (b"b", b"2")])  # one batch: a tombstone beside a live value
    for i in range(12):
        put(log, [(b"pad", b"%d" % i)])
    log.roll()
    cleaner = CleanerManager(manager, CleanerConfig())
    assert cleaner.clean_once(clock.now) == ("t", 5)
    clock.advance(DAY)
    assert cleaner.clean_once(clock.now) == ("t", 5), "the horizon passed: clean"
    assert b"a" not in {k for _, k, _ in records(log)}
    assert cleaner.state[("t", 5)].horizon_ms is None
    clock.advance(DAY)
    assert cleaner.clean_once(clock.now) is None, "nothing left to expire"

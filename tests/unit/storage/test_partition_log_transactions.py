"""Transactions in one partition log: open transactions hold the last stable offset back,
markers end them, aborted ones are indexed in Kafka's .txnindex format and survive a
restart (from the files or, after a crash, from replaying markers), truncation and
retention; zombie producers and coordinators are fenced."""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import FakeClock, read_all

from strom.protocol.records import Attr, encode_batch, scan_batches, validate_batches
from strom.storage import Log, LogConfig
from strom.storage import markers as marker_batches
from strom.storage.partition_log import PartitionLog
from strom.storage.producer_state import SequenceError
from strom.storage.txn_index import read_file

SMALL = LogConfig(segment_bytes=400)


def open_log(tmp_path: Path, config: LogConfig = SMALL) -> PartitionLog:
    return PartitionLog(Log.open(tmp_path / "t-0", config, clock=FakeClock(),
                                 recovery_point=0))


def txn_batch(plog: PartitionLog, pid: int, seq: int, count: int = 2, epoch: int = 0) -> int:
    buf = bytearray(encode_batch([(b"k", b"v")] * count, timestamp_ms=1000, producer_id=pid,
                                 producer_epoch=epoch, base_sequence=seq,
                                 attributes=Attr.TRANSACTIONAL))
    info = plog.append_as_leader(buf, validate_batches(buf), leader_epoch=0)
    assert not isinstance(info, type(None))
    return info.first_offset  # type: ignore[union-attr]


def plain_batch(plog: PartitionLog) -> None:
    buf = bytearray(encode_batch([(b"k", b"plain")], timestamp_ms=1000))
    plog.append_as_leader(buf, validate_batches(buf), leader_epoch=0)


def marker(plog: PartitionLog, pid: int, committed: bool, epoch: int = 0,
           coordinator_epoch: int = 0) -> int:
    return plog.append_marker(pid, epoch, committed, coordinator_epoch, leader_epoch=0,
                              timestamp_ms=2000).first_offset


def test_open_transactions_hold_the_last_stable_offset(tmp_path: Path) -> None:
    plog = open_log(tmp_path)
    plain_batch(plog)
    first_a = txn_batch(plog, pid=1, seq=0)
    txn_batch(plog, pid=2, seq=0)
    txn_batch(plog, pid=1, seq=2)
    end = plog.log_end_offset
    assert plog.last_stable_offset(end) == first_a
    assert plog.last_stable_offset(0) == 0, "never above the high watermark"
    marker(plog, 1, committed=True)
    assert plog.last_stable_offset(plog.log_end_offset) == 3, "pid 2's transaction is open"
    marker(plog, 2, committed=False)
    assert plog.last_stable_offset(plog.log_end_offset) == plog.log_end_offset
    assert plog.aborted_transactions(0, plog.log_end_offset) == [(2, 3)]
    control = [h for _, h in scan_batches(read_all(plog.log)) if h.is_control]
    assert [(h.producer_id, h.is_transactional) for h in control] == [(1, True), (2, True)]


def test_aborted_transactions_are_indexed_and_survive_restarts(tmp_path: Path) -> None:
    plog = open_log(tmp_path)
    first = txn_batch(plog, pid=7, seq=0, count=3)
    abort_at = marker(plog, 7, committed=False)
    txn_batch(plog, pid=7, seq=3)
    commit_at = marker(plog, 7, committed=True)
    entries = [e for f in sorted(plog.log.dir.glob("*.txnindex")) for e in read_file(f)]
    assert [(e.producer_id, e.first_offset, e.last_offset) for e in entries] == [
        (7, first, abort_at)]
    assert commit_at > abort_at
    plog.log.close()

    again = open_log(tmp_path)  # from the files
    assert again.aborted_transactions(0, again.log_end_offset) == [(7, first)]
    assert again.aborted_transactions(abort_at + 1, again.log_end_offset) == []
    again.log.close()

    for f in again.log.dir.glob("*.txnindex"):  # a crash lost the unsynced index writes
        f.unlink()
    for f in again.log.dir.glob("*.snapshot"):
        f.unlink()
    replayed = open_log(tmp_path)
    assert replayed.aborted_transactions(0, replayed.log_end_offset) == [(7, first)]
    assert replayed.last_stable_offset(replayed.log_end_offset) == replayed.log_end_offset


def test_an_open_transaction_survives_a_snapshot_and_restart(tmp_path: Path) -> None:
    plog = open_log(tmp_path, LogConfig())
    plain_batch(plog)
    first = txn_batch(plog, pid=3, seq=0)
    writer = plog.producer_snapshot_writer()
    assert writer is not None
    writer()
    plog.log.close()
    again = open_log(tmp_path, LogConfig())
    assert again.last_stable_offset(again.log_end_offset) == first
    [view] = again.producer_states()
    assert (view.producer_id, view.current_txn_start_offset) == (3, first)
    marker(again, 3, committed=False)
    assert again.aborted_transactions(0, again.log_end_offset) == [(3, first)]


def test_truncation_reopens_a_transaction_and_forgets_its_abort(tmp_path: Path) -> None:
    plog = open_log(tmp_path)
    first = txn_batch(plog, pid=5, seq=0)
    abort_at = marker(plog, 5, committed=False)
    assert plog.aborted_transactions(0, 100) == [(5, first)]
    plog.truncate_to(abort_at)
    assert plog.aborted_transactions(0, 100) == []
    assert plog.last_stable_offset(plog.log_end_offset) == first
    assert not any(read_file(f) for f in plog.log.dir.glob("*.txnindex"))


def test_zombie_producers_and_coordinators_are_fenced(tmp_path: Path) -> None:
    plog = open_log(tmp_path)
    txn_batch(plog, pid=9, seq=0, epoch=2)
    with pytest.raises(SequenceError) as old_epoch:
        marker(plog, 9, committed=True, epoch=1)
    assert old_epoch.value.error.name == "invalid_producer_epoch"
    marker(plog, 9, committed=True, epoch=2, coordinator_epoch=4)
    txn_batch(plog, pid=9, seq=2, epoch=2)
    with pytest.raises(SequenceError) as old_coordinator:
        marker(plog, 9, committed=True, epoch=2, coordinator_epoch=3)
    assert old_coordinator.value.error.name == "transaction_coordinator_fenced"
    buf = bytearray(encode_batch([(b"k", b"v")], producer_id=9, producer_epoch=2,
                                 base_sequence=4))  # not transactional, mid-transaction
    with pytest.raises(SequenceError) as mixed:
        plog.append_as_leader(buf, validate_batches(buf), leader_epoch=0)
    assert mixed.value.error.name == "invalid_txn_state"


def test_followers_learn_transactions_from_the_batches(tmp_path: Path) -> None:
    leader = open_log(tmp_path / "leader")
    first = txn_batch(leader, pid=4, seq=0)
    marker(leader, 4, committed=False)
    txn_batch(leader, pid=4, seq=2)
    data = leader.read(0, 1 << 20, max_offset=None).data
    follower = open_log(tmp_path / "follower")
    while data:
        follower.append_as_follower(data)
        data = leader.read(follower.log_end_offset, 1 << 20, max_offset=None).data
    assert follower.aborted_transactions(0, 100) == [(4, first)]
    assert follower.last_stable_offset(follower.log_end_offset) == 3
    assert marker_batches.parse(marker_batches.build(4, 0, True, 6, 0)) == (True, 6)

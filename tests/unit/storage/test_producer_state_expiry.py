"""Producer-state expiry (`producer.id.expiration.ms`) without a broker."""

from __future__ import annotations

from pathlib import Path

from strom.protocol import records
from strom.storage.config import LogConfig
from strom.storage.log import Log
from strom.storage.partition_log import PartitionLog
from strom.storage.producer_state import ProducerStateManager

HOUR = 3_600_000


def header(pid: int, seq: int, timestamp: int) -> records.BatchHeader:
    batch = records.encode_batch([(None, b"v")], producer_id=pid, producer_epoch=0,
                                 base_sequence=seq, timestamp_ms=timestamp)
    return records.read_header(batch)


def test_only_producers_idle_for_the_expiration_are_removed() -> None:
    state = ProducerStateManager()
    state.record(header(1, 0, 1_000), 0, 1_000)
    state.record(header(2, 0, 5_000), 1, 5_000)
    assert state.remove_expired(now_ms=1_000 + HOUR - 1, expiration_ms=HOUR) == 0
    assert state.remove_expired(now_ms=1_000 + HOUR, expiration_ms=HOUR) == 1
    assert set(state.producers) == {2}
    # an expired producer is new again: any sequence is accepted
    assert state.check(header(1, 40, 2 * HOUR)) is None


def test_a_producer_with_an_open_transaction_is_kept() -> None:
    state = ProducerStateManager()
    state.record(header(1, 0, 0), 0, 0)
    state.producers[1].txn_first_offset = 0
    assert state.remove_expired(now_ms=10 * HOUR, expiration_ms=HOUR) == 0
    assert 1 in state.producers


def test_the_next_snapshot_leaves_expired_producers_out(tmp_path: Path) -> None:
    plog = PartitionLog(Log.open(tmp_path / "t-0", LogConfig()))
    for pid, ts in ((1, 0), (2, 10 * HOUR)):
        batch = bytearray(records.encode_batch([(None, b"v")], producer_id=pid,
                                               producer_epoch=0, base_sequence=0,
                                               timestamp_ms=ts))
        plog.append_as_leader(batch, [records.read_header(batch)], leader_epoch=0)
    writer = plog.producer_snapshot_writer()
    assert writer is not None
    writer()
    assert plog.producer_snapshot_writer() is None  # unchanged since
    assert plog.remove_expired_producers(now_ms=5 * HOUR, expiration_ms=HOUR) == 1
    writer = plog.producer_snapshot_writer()
    assert writer is not None  # expiry changed the state: a new snapshot follows
    writer()
    plog.log.close()
    reopened = PartitionLog(Log.open(tmp_path / "t-0", LogConfig()))
    assert set(reopened.producers.producers) == {2}
    reopened.log.close()

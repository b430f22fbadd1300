"""A PartitionLog rebuilds producer state from its log at open; no log content stops it."""

from __future__ import annotations

from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from strom.protocol import records
from strom.storage import Log, LogConfig
from strom.storage.partition_log import Duplicate, PartitionLog
from strom.storage.producer_state import SequenceError

NOW = 1_700_000_000_000


def _open(path: Path) -> Log:
    return Log.open(path / "orders-0", LogConfig(), clock=lambda: NOW)


def _partition(log: Log) -> PartitionLog:
    return PartitionLog(log)


def _append(plog: PartitionLog, batch: bytes) -> int | Duplicate:
    """Base offset of a fresh append, or the Duplicate a retry is answered with."""
    buf = bytearray(batch)
    outcome = plog.append_as_leader(buf, [records.read_header(buf)], leader_epoch=0)
    return outcome if isinstance(outcome, Duplicate) else outcome.first_offset


def _idempotent(seq: int, count: int = 2) -> bytes:
    return records.encode_batch([(b"k", b"v")] * count, timestamp_ms=NOW, producer_id=9,
                                producer_epoch=0, base_sequence=seq)


def test_sequences_are_rebuilt_from_the_log(tmp_path: Path) -> None:
    log = _open(tmp_path)
    first = _partition(log)
    assert _append(first, _idempotent(0)) == 0
    assert _append(first, _idempotent(2)) == 2
    log.close()
    again = _partition(_open(tmp_path))
    retry = _append(again, _idempotent(2))  # a retry: answered, not appended
    assert isinstance(retry, Duplicate) and retry.first_offset == 2
    assert again.log_end_offset == 4
    with pytest.raises(SequenceError) as info:
        _append(again, _idempotent(9))
    assert info.value.error == ErrorCode.out_of_order_sequence_number


def test_a_batch_whose_crc_fails_is_not_trusted_for_sequences(tmp_path: Path) -> None:
    log = _open(tmp_path)
    assert _append(_partition(log), _idempotent(0)) == 0
    segment = next(tmp_path.glob("orders-0/*.log"))
    log.close()
    data = bytearray(segment.read_bytes())
    data[55] ^= 0x7F  # base_sequence of the only batch: its CRC no longer matches
    segment.write_bytes(bytes(data))
    partition = _partition(_open(tmp_path))
    assert 9 not in partition.producers.producers or not partition.producers.producers[9].batches


def test_a_failing_rebuild_starts_without_producer_state(tmp_path: Path, monkeypatch) -> None:
    log = _open(tmp_path)
    assert _append(_partition(log), _idempotent(0)) == 0

    def broken(*_: object) -> None:
        raise RuntimeError("damaged snapshot")

    monkeypatch.setattr("strom.storage.producer_snapshot.load_latest", broken)
    partition = _partition(log)
    assert partition.producers.producers == {}
    assert _append(partition, _idempotent(0)) == 2  # a fresh producer is welcome

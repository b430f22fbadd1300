"""A partition's producer state is rebuilt from its log at start; no log content stops it."""

from __future__ import annotations

import uuid
from pathlib import Path

from strom.broker.partition import Partition, PartitionPolicy
from strom.protocol import records
from strom.storage import Log, LogConfig

NOW = 1_700_000_000_000


def _open(path: Path) -> Log:
    return Log.open(path / "orders-0", LogConfig(), clock=lambda: NOW)


def _partition(log: Log) -> Partition:
    return Partition("orders", 0, uuid.uuid4(), log, PartitionPolicy(), clock=lambda: NOW)


def _idempotent(seq: int, count: int = 2) -> bytes:
    return records.encode_batch([(b"k", b"v")] * count, timestamp_ms=NOW, producer_id=9,
                                producer_epoch=0, base_sequence=seq)


def test_sequences_are_rebuilt_from_the_log(tmp_path: Path) -> None:
    log = _open(tmp_path)
    first = _partition(log)
    assert first.append(_idempotent(0)).error == "none"
    assert first.append(_idempotent(2)).error == "none"
    log.close()
    again = _partition(_open(tmp_path))
    assert again.append(_idempotent(2)).base_offset == 2  # a retry: answered, not appended
    assert again.append(_idempotent(9)).error == "out_of_order_sequence_number"


def test_a_batch_whose_crc_fails_is_not_trusted_for_sequences(tmp_path: Path) -> None:
    log = _open(tmp_path)
    assert _partition(log).append(_idempotent(0)).error == "none"
    segment = next(tmp_path.glob("orders-0/*.log"))
    log.close()
    data = bytearray(segment.read_bytes())
    data[55] ^= 0x7F  # base_sequence of the only batch: its CRC no longer matches
    segment.write_bytes(bytes(data))
    partition = _partition(_open(tmp_path))
    assert 9 not in partition.producers.producers or not partition.producers.producers[9].batches


def test_a_failing_rebuild_starts_without_producer_state(tmp_path: Path, monkeypatch) -> None:
    log = _open(tmp_path)
    assert _partition(log).append(_idempotent(0)).error == "none"

    def broken(*_: object) -> None:
        raise RuntimeError("damaged snapshot")

    monkeypatch.setattr("strom.storage.producer_snapshot.load_latest", broken)
    partition = _partition(log)
    assert partition.producers.producers == {}
    assert partition.append(_idempotent(0)).error == "none"  # a fresh producer is welcome

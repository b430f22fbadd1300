"""The share coordinator's housekeeping on its shard, without sockets: which offset of a
`__share_group_state` partition is prunable after snapshots, updates and deletes, and
cold-partition snapshots written only for share-partitions whose latest record is an
update (Kafka's ShareCoordinatorShard)."""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from strom.coordinator.share_state.records import SNAPSHOT, StateBatch, decode
from strom.coordinator.share_state.shard import ShareCoordinatorShard

A = ("g", uuid.UUID(int=1), 0)
B = ("g", uuid.UUID(int=2), 0)
ACKED = 2


class _Log:
    """A partition log the shard's records go to, as the host appends them: the
    shard's cursor set to each append's first offset, then the records replayed."""

    def __init__(self, shard: ShareCoordinatorShard) -> None:
        self.shard = shard
        self.records: list[object] = []

    def run(self, result: object) -> object:
        self.shard.cursor = len(self.records)
        for record in result.records:  # type: ignore[attr-defined]
            self.records.append(record)
            self.shard.replay(decode(*record.entry()))
        return result.response  # type: ignore[attr-defined]

    @property
    def end(self) -> int:
        return len(self.records)


def _setup(every: int = 500) -> _Log:
    return _Log(ShareCoordinatorShard(lambda: 1_700_000_000_000, every))


def _ack(log: _Log, key: tuple[str, uuid.UUID, int], offset: int) -> None:
    assert log.run(log.shard.write(key, 1, 0, offset + 1, (
        StateBatch(offset, offset, ACKED, 1),))) == ErrorCode.none


def test_the_prunable_offset_is_the_oldest_latest_snapshot() -> None:
    log = _setup()
    assert log.shard.prunable_offset(log.end) is None  # nothing held
    log.run(log.shard.initialize(A, 1, 0))  # 0: A's snapshot
    log.run(log.shard.initialize(B, 1, 0))  # 1: B's snapshot
    _ack(log, A, 0)  # 2: an update of A
    _ack(log, B, 0)  # 3: an update of B
    assert log.shard.prunable_offset(log.end) == 0
    assert log.shard.prunable_offset(1) is None  # B's snapshot not replicated yet
    log.run(log.shard.initialize(A, 2, 5))  # 4: A's new snapshot (a new state epoch)
    assert log.shard.prunable_offset(log.end) == 1  # B's snapshot still needed
    log.run(log.shard.delete(B))  # 5: B's tombstone
    assert log.shard.prunable_offset(log.end) == 4


def test_cold_snapshots_only_where_the_latest_record_is_an_update() -> None:
    log = _setup()
    log.run(log.shard.initialize(A, 1, 0))
    log.run(log.shard.initialize(B, 1, 0))
    assert log.run(log.shard.snapshot_cold()) is None
    assert log.end == 2  # both latest records are snapshots: nothing written
    _ack(log, A, 0)
    _ack(log, A, 1)
    before = log.shard.read(A, 0).response
    log.run(log.shard.snapshot_cold())
    assert log.end == 5
    written = log.records[-1]
    assert written.kind == SNAPSHOT and written.key == A  # type: ignore[attr-defined]
    assert log.shard.read(A, 0).response == before  # the same state, now one record
    assert log.shard.prunable_offset(log.end) == 1  # B's snapshot is the oldest
    log.run(log.shard.snapshot_cold())
    assert log.end == 5  # already cold-snapshotted


def test_a_reload_of_the_pruned_log_has_the_same_state() -> None:
    log = _setup(every=1000)
    log.run(log.shard.initialize(A, 1, 0))
    log.run(log.shard.initialize(B, 1, 0))
    for offset in range(5):
        _ack(log, A, offset)
        _ack(log, B, offset)
    log.run(log.shard.snapshot_cold())
    low = log.shard.prunable_offset(log.end)
    assert low == log.end - 2  # the two cold snapshots
    reloaded = ShareCoordinatorShard(lambda: 0)
    for offset, record in enumerate(log.records[low:], start=low):
        reloaded.cursor = offset
        reloaded.replay(decode(*record.entry()))  # type: ignore[attr-defined]
    for key in (A, B):
        assert reloaded.read(key, 0).response == log.shard.read(key, 0).response
    assert reloaded.prunable_offset(log.end) == low

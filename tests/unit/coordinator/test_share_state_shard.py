"""The share coordinator's records and shard (`strom.coordinator.share_state`): Kafka's
ShareSnapshot/ShareUpdate bytes, the fold, fencing, snapshots every N updates, and the
coordinator key's partition as Kafka computes it."""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from strom.coordinator.share_state.config import coordinator_key, partition_for_key
from strom.coordinator.share_state.records import (
    SNAPSHOT,
    UPDATE,
    ShareRecord,
    ShareSnapshot,
    ShareUpdate,
    StateBatch,
    decode,
)
from strom.coordinator.share_state.shard import ShareCoordinatorShard, merge

TOPIC = uuid.UUID("00000000-0123-4567-890a-bcdef1234567")
KEY = ("g", TOPIC, 0)
AVAILABLE, ACKED, ARCHIVED = 0, 2, 4


def _shard(every: int = 500) -> ShareCoordinatorShard:
    return ShareCoordinatorShard(lambda: 1_700_000_000_000, every)


def _run(shard: ShareCoordinatorShard, result: object) -> object:
    """Apply a result as the runtime does: its records replayed, through their bytes."""
    for record in result.records:  # type: ignore[attr-defined]
        shard.replay(decode(*record.entry()))
    return result.response  # type: ignore[attr-defined]


def test_keys_and_values_round_trip_in_kafkas_layout() -> None:
    snap = ShareSnapshot(3, 2, 7, 100, 1, 2, (StateBatch(100, 104, ACKED, 1),), 5)
    record = ShareRecord(SNAPSHOT, KEY, snap)
    key, value = record.entry()
    assert key == b"\x00\x00\x00\x01g" + TOPIC.bytes + b"\x00\x00\x00\x00"
    assert value is not None and value[:2] == b"\x00\x00"  # value version 0
    assert value.endswith(b"\x01\x00\x04\x00\x00\x00\x05")  # tag 0: DeliveryCompleteCount
    assert decode(key, value) == record
    update = ShareRecord(UPDATE, KEY, ShareUpdate(3, -1, -1, (StateBatch(1, 2, ARCHIVED, 5),)))
    assert decode(*update.entry()) == update
    assert update.entry()[1].endswith(b"\x00")  # type: ignore[union-attr]  # no tags
    assert decode(key, None) == ShareRecord(SNAPSHOT, KEY, None)


def test_the_coordinator_key_maps_to_kafkas_partition() -> None:
    """Pairs computed by Kafka 4.4's own SharePartitionKey.asCoordinatorKey and
    Utils.abs(hashCode) % 50 (negative hashes included)."""
    assert coordinator_key("grp-0", TOPIC, 0) == "grp-0:AAAAAAEjRWeJCrze8SNFZw:0"
    for key, partition in (("grp-0:AAAAAAEjRWeJCrze8SNFbg:0", 31),
                           ("grp-1:AAAAAAJGis8SFXm94kaK1Q:1", 37),
                           ("grp-2:AAAAAANp0DabIDac02nQPA:2", 46),
                           ("grp-3:AAAAAASNFZ4kKvN7xI0Vow:3", 23),
                           ("grp-4:AAAAAAWwWwWtNbBatbBbCg:4", 26)):
        assert partition_for_key(key, 50) == partition


def test_merge_lays_new_batches_over_old_and_drops_below_the_start() -> None:
    old = [StateBatch(0, 9, AVAILABLE, 1)]
    new = [StateBatch(3, 4, ACKED, 1), StateBatch(8, 12, ARCHIVED, 2)]
    assert merge(old, new, 2) == (StateBatch(2, 2, AVAILABLE, 1), StateBatch(3, 4, ACKED, 1),
                                  StateBatch(5, 7, AVAILABLE, 1), StateBatch(8, 12, ARCHIVED, 2))
    assert merge([StateBatch(0, 1, ACKED, 1)], [StateBatch(2, 3, ACKED, 1)], 0) == (
        StateBatch(0, 3, ACKED, 1),)


def test_initialize_write_read_and_delete() -> None:
    shard = _shard()
    assert _run(shard, shard.read(KEY, 0)) == (ErrorCode.none, None)
    assert _run(shard, shard.initialize(KEY, 1, 10)) == ErrorCode.none
    assert _run(shard, shard.write(KEY, 1, 0, 10, (StateBatch(10, 12, ACKED, 1),))) == \
        ErrorCode.none
    assert _run(shard, shard.write(KEY, 1, 0, 13, (StateBatch(13, 14, AVAILABLE, 2),))) == \
        ErrorCode.none
    error, state = _run(shard, shard.read(KEY, 0))  # type: ignore[misc]
    assert error == ErrorCode.none
    assert (state.state_epoch, state.start_offset, state.batches) == (
        1, 13, (StateBatch(13, 14, AVAILABLE, 2),))
    summary = shard.summary(KEY)
    assert summary is not None and summary.start_offset == 13
    assert _run(shard, shard.delete(KEY)) == ErrorCode.none
    assert shard.summary(KEY) is None


def test_fencing_by_state_and_leader_epoch() -> None:
    shard = _shard()
    _run(shard, shard.initialize(KEY, 2, 0))
    assert _run(shard, shard.write(KEY, 1, 0, 0, ())) == ErrorCode.fenced_state_epoch
    assert _run(shard, shard.initialize(KEY, 1, 0)) == ErrorCode.fenced_state_epoch
    _run(shard, shard.read(KEY, 5))  # a new leader (epoch 5) loads it: recorded
    assert _run(shard, shard.write(KEY, 2, 4, 0, ())) == ErrorCode.fenced_leader_epoch
    assert _run(shard, shard.write(KEY, 2, 5, 1, ())) == ErrorCode.none
    assert _run(shard, shard.read(KEY, 4))[0] == ErrorCode.fenced_leader_epoch  # type: ignore[index]


def test_a_snapshot_follows_every_n_updates_and_a_reload_sees_the_same_state() -> None:
    shard = _shard(every=3)
    kinds = [shard.initialize(KEY, 1, 0).records[0].kind]
    _run(shard, shard.initialize(KEY, 1, 0))
    log = []
    for offset in range(7):
        result = shard.write(KEY, 1, 0, offset, (StateBatch(offset, offset, ACKED, 1),))
        kinds.append(result.records[0].kind)
        log += [r.entry() for r in result.records]
        _run(shard, result)
    assert kinds == [SNAPSHOT, UPDATE, UPDATE, SNAPSHOT, UPDATE, UPDATE, SNAPSHOT, UPDATE]
    reloaded = _shard(every=3)
    reloaded.replay(decode(*ShareRecord(SNAPSHOT, KEY, ShareSnapshot(
        0, 1, -1, 0, 1, 1, ())).entry()))
    for entry in log:
        reloaded.replay(decode(*entry))
    assert reloaded.summary(KEY) == shard.summary(KEY)
    assert reloaded.states[KEY].snapshot.batches == shard.states[KEY].snapshot.batches

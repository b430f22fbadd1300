"""Transaction coordinator rules (Kafka 4.4, transaction version 1), without sockets:
an in-memory `__transaction_state`, a manual clock and a recording marker writer."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from kio.schema.errors import ErrorCode as E

from strom.coordinator.transaction import codec, records
from strom.coordinator.transaction.config import TxnConfig
from strom.coordinator.transaction.coordinator import TransactionCoordinator
from strom.coordinator.transaction.model import TxnState

from .fakes import ManualScheduler, MemoryOffsetsLog

pytestmark = pytest.mark.timeout(20)
TXN = "tx-1"


class RecordingMarkers:
    """The `MarkerWriter` seam: records every marker; ``errors`` answers first."""

    def __init__(self) -> None:
        self.written: list[tuple[str, int, int, int, bool, int]] = []
        self.errors: list[E] = []
        self.gate: asyncio.Event | None = None

    async def write_marker(self, topic: str, partition: int, producer_id: int,
                           producer_epoch: int, committed: bool, coordinator_epoch: int) -> E:
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            return self.errors.pop(0)
        self.written.append((topic, partition, producer_id, producer_epoch, committed,
                             coordinator_epoch))
        return E.none


class Env:
    def __init__(self, max_timeout_ms: int = 900_000) -> None:
        self.log = MemoryOffsetsLog()
        self.scheduler = ManualScheduler()
        self.markers = RecordingMarkers()
        self.ids = itertools.count(1000)
        self.config = TxnConfig(num_partitions=1, max_timeout_ms=max_timeout_ms)
        self.coordinator = self.new()

    def clock(self) -> int:
        return 1_700_000_000_000 + int(self.scheduler.now * 1000)

    def new(self) -> TransactionCoordinator:
        coordinator = TransactionCoordinator(self.log, self.config, self.scheduler, self.clock,
                                             lambda: next(self.ids), self.markers,
                                             lambda topic, _: topic != "deleted")
        return coordinator

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    def state(self, txn_id: str = TXN) -> TxnState:
        error, meta = self.coordinator.describe(txn_id)
        assert error == E.none and meta is not None
        return meta.state


@pytest.fixture
async def env() -> Env:
    env = Env()
    env.coordinator.load(0, coordinator_epoch=7)
    return env


async def test_init_gives_a_new_id_then_bumps_the_epoch(env: Env) -> None:
    first = await env.coordinator.init_producer_id(TXN, 60_000, None)
    assert (first.error, first.producer_id, first.producer_epoch) == (E.none, 1000, 0)
    again = await env.coordinator.init_producer_id(TXN, 60_000, None)
    assert (again.error, again.producer_id, again.producer_epoch) == (E.none, 1000, 1)
    assert env.state() == TxnState.EMPTY


async def test_timeout_above_max_is_refused(env: Env) -> None:
    result = await env.coordinator.init_producer_id(TXN, 900_001, None)
    assert result.error == E.invalid_transaction_timeout
    assert (await env.coordinator.init_producer_id(TXN, 0, None)).error == \
        E.invalid_transaction_timeout


async def test_commit_writes_markers_then_complete(env: Env) -> None:
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    assert await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0), ("b", 1)]) == E.none
    assert env.state() == TxnState.ONGOING
    await env.coordinator.add_offsets(TXN, pid, epoch, "group-1")
    assert await env.coordinator.end_transaction(TXN, pid, epoch, True) == E.none
    await env.settle()
    topics = sorted((m[0], m[1]) for m in env.markers.written)
    assert topics[:2] == [("__consumer_offsets", topics[0][1]), ("a", 0)]
    assert all(m[2:] == (pid, epoch, True, 7) for m in env.markers.written)
    assert len(env.markers.written) == 3
    assert env.state() == TxnState.COMPLETE_COMMIT
    # an EndTxn retried after completion is answered as Kafka does
    assert await env.coordinator.end_transaction(TXN, pid, epoch, True) == E.none
    assert await env.coordinator.end_transaction(TXN, pid, epoch, False) == E.invalid_txn_state


async def test_requests_while_markers_are_pending(env: Env) -> None:
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)])
    env.markers.gate = asyncio.Event()
    assert await env.coordinator.end_transaction(TXN, pid, epoch, False) == E.none
    assert env.state() == TxnState.PREPARE_ABORT
    assert await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)]) == \
        E.concurrent_transactions
    assert await env.coordinator.end_transaction(TXN, pid, epoch, False) == \
        E.concurrent_transactions
    assert await env.coordinator.end_transaction(TXN, pid, epoch, True) == E.invalid_txn_state
    assert (await env.coordinator.init_producer_id(TXN, 60_000, None)).error == \
        E.concurrent_transactions
    env.markers.gate.set()
    await env.settle()
    assert env.state() == TxnState.COMPLETE_ABORT


async def test_wrong_producer_and_epoch(env: Env) -> None:
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    assert await env.coordinator.add_partitions(TXN, pid + 1, epoch, [("a", 0)]) == \
        E.invalid_producer_id_mapping
    assert await env.coordinator.add_partitions(TXN, pid, epoch + 1, [("a", 0)]) == \
        E.producer_fenced
    assert await env.coordinator.add_partitions("nobody", pid, epoch, [("a", 0)]) == \
        E.invalid_producer_id_mapping
    assert await env.coordinator.end_transaction(TXN, pid, epoch, True) == E.invalid_txn_state


async def test_a_new_instance_fences_the_zombie_and_aborts_its_transaction(env: Env) -> None:
    old = await env.coordinator.init_producer_id(TXN, 60_000, None)
    await env.coordinator.add_partitions(TXN, old.producer_id, old.producer_epoch, [("a", 0)])
    env.markers.gate = asyncio.Event()
    fenced = await env.coordinator.init_producer_id(TXN, 60_000, None)
    assert fenced.error == E.concurrent_transactions
    assert env.state() == TxnState.PREPARE_ABORT
    env.markers.gate.set()
    await env.settle()
    # the abort marker carries the bumped epoch, which fences the zombie at the partition
    assert env.markers.written == [("a", 0, old.producer_id, old.producer_epoch + 1, False, 7)]
    new = await env.coordinator.init_producer_id(TXN, 60_000, None)
    assert (new.error, new.producer_id, new.producer_epoch) == \
        (E.none, old.producer_id, old.producer_epoch + 2)
    # the zombie is fenced
    assert await env.coordinator.add_partitions(TXN, old.producer_id, old.producer_epoch,
                                                [("a", 0)]) == E.producer_fenced
    assert await env.coordinator.end_transaction(TXN, old.producer_id, old.producer_epoch,
                                                 True) == E.producer_fenced


async def test_kip360_recovery_and_retry(env: Env) -> None:
    first = await env.coordinator.init_producer_id(TXN, 60_000, None)
    current = (first.producer_id, first.producer_epoch)
    bumped = await env.coordinator.init_producer_id(TXN, 60_000, current)
    assert (bumped.producer_id, bumped.producer_epoch) == (first.producer_id, 1)
    # the answer was lost: the same request again gets the same epoch, no second bump
    retry = await env.coordinator.init_producer_id(TXN, 60_000, current)
    assert (retry.error, retry.producer_epoch) == (E.none, 1)
    stale = await env.coordinator.init_producer_id(TXN, 60_000, (first.producer_id + 5, 0))
    assert stale.error == E.producer_fenced


async def test_epoch_exhaustion_rotates_the_producer_id(env: Env) -> None:
    await env.coordinator.init_producer_id(TXN, 60_000, None)
    shard = env.coordinator.runtime.shards[0]
    shard.txns[TXN].producer_epoch = 32766
    rotated = await env.coordinator.init_producer_id(TXN, 60_000, None)
    assert (rotated.error, rotated.producer_id, rotated.producer_epoch) == (E.none, 1001, 0)


async def test_timed_out_transaction_is_aborted_with_an_epoch_bump(env: Env) -> None:
    init = await env.coordinator.init_producer_id(TXN, 15_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)])
    await env.scheduler.advance(10)  # first sweep: not expired yet
    assert env.state() == TxnState.ONGOING
    await env.scheduler.advance(10)
    await env.settle()
    assert env.state() == TxnState.COMPLETE_ABORT
    assert env.markers.written == [("a", 0, pid, epoch + 1, False, 7)]
    assert await env.coordinator.end_transaction(TXN, pid, epoch, True) == E.producer_fenced
    assert env.coordinator.timed_out == 1  # strom_transactions_timed_out


async def test_idle_transactional_id_expires(env: Env) -> None:
    env.config = TxnConfig(num_partitions=1, id_expiration_ms=1000,
                           remove_expired_interval_ms=5000)
    env.coordinator = env.new()
    env.coordinator.load(0, 1)
    await env.coordinator.init_producer_id(TXN, 60_000, None)
    await env.scheduler.advance(6)
    assert env.coordinator.describe(TXN)[0] == E.transactional_id_not_found
    assert env.log.partitions[0][-1][1] is None  # a tombstone


async def test_marker_retried_when_leader_moves_and_deleted_topic_dropped(env: Env) -> None:
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)])
    env.markers.errors = [E.not_leader_or_follower, E.not_enough_replicas]
    await env.coordinator.end_transaction(TXN, pid, epoch, True)
    await env.scheduler.advance(0)
    await asyncio.sleep(0.4)
    assert env.markers.written == [("a", 0, pid, epoch, True, 7)]
    assert env.state() == TxnState.COMPLETE_COMMIT
    await env.coordinator.add_partitions(TXN, pid, epoch, [("deleted", 0)])
    env.markers.errors = [E.unknown_topic_or_partition]
    await env.coordinator.end_transaction(TXN, pid, epoch, True)
    await env.settle()
    assert env.state() == TxnState.COMPLETE_COMMIT


async def test_reload_finishes_a_prepared_transaction(env: Env) -> None:
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)])
    env.markers.gate = asyncio.Event()
    await env.coordinator.end_transaction(TXN, pid, epoch, True)
    env.coordinator.unload(0)  # the coordinator moves before its markers are written
    await env.settle()
    env.markers.gate = None
    successor = env.new()
    successor.load(0, coordinator_epoch=8)
    env.coordinator = successor
    await env.settle()
    assert env.markers.written == [("a", 0, pid, epoch, True, 8)]
    assert env.state() == TxnState.COMPLETE_COMMIT


async def test_verify_only(env: Env) -> None:
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)])
    assert env.coordinator.verify(TXN, pid, epoch, [("a", 0), ("a", 1)]) == {
        ("a", 0): E.none, ("a", 1): E.transaction_abortable}
    assert env.coordinator.verify(TXN, pid, epoch - 1, [("a", 0)]) == {("a", 0): E.producer_fenced}
    env.markers.gate = asyncio.Event()
    await env.coordinator.end_transaction(TXN, pid, epoch, True)
    assert env.coordinator.verify(TXN, pid, epoch, [("a", 0)]) == {
        ("a", 0): E.concurrent_transactions}
    env.markers.gate.set()
    await env.settle()
    # the transaction ended: a late batch for it cannot start another (KAFKA-17754)
    assert env.coordinator.verify(TXN, pid, epoch, [("a", 0)]) == {
        ("a", 0): E.transaction_abortable}


async def test_not_loaded_partition_answers_not_coordinator() -> None:
    env = Env()
    assert (await env.coordinator.init_producer_id(TXN, 1000, None)).error == E.not_coordinator
    env.coordinator.loading = {0}
    assert (await env.coordinator.init_producer_id(TXN, 1000, None)).error == \
        E.coordinator_load_in_progress


def test_value_bytes_match_kafka_layout() -> None:
    value = codec.TxnValue(producer_id=5, producer_epoch=2, timeout_ms=60_000, status=1,
                           partitions=(("a", (0, 1)),), last_update_ms=10, start_ms=9)
    data = codec.encode_value(value)
    assert data == (b"\x00\x00" + (5).to_bytes(8, "big") + b"\x00\x02" +
                    (60_000).to_bytes(4, "big") + b"\x01" + b"\x00\x00\x00\x01" +
                    b"\x00\x01a" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x00\x00\x01" +
                    (10).to_bytes(8, "big") + (9).to_bytes(8, "big"))
    assert codec.decode_value(data) == value
    flexible = codec.encode_value(value, version=1)
    assert codec.decode_value(flexible) == value
    assert codec.encode_key("tx") == b"\x00\x00\x00\x02tx"
    assert codec.decode_key(b"\x00\x00\x00\x02tx") == "tx"
    empty = codec.TxnValue(1, 0, 100, 0, (), 1, -1)
    assert codec.encode_value(empty)[17:21] == b"\xff\xff\xff\xff"  # null partitions
    with pytest.raises(codec.CodecError):
        codec.decode_value(data[:-3])
    with pytest.raises(codec.UnknownRecordType):
        codec.decode_key(b"\x00\x01\x00\x00")


def test_record_round_trip() -> None:
    record = records.TxnRecord(TXN, codec.TxnValue(1, 0, 100, 0, (), 1, -1))
    key, value = records.serialize(record)
    assert codec.decode_key(key) == TXN and value is not None
    assert codec.decode_value(value) == record.value


async def test_markers_wait_until_the_prepare_record_is_replicated() -> None:
    """EndTxn answered with a replication timeout (a replica died, the ISR has not shrunk
    yet): its PrepareCommit is in the log, so the markers follow once it replicates."""
    env = Env()
    replicated = asyncio.Event()

    async def wait_durable(partition: int) -> E:
        return E.none if replicated.is_set() else E.coordinator_not_available

    env.coordinator.load(0, coordinator_epoch=7)
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)])
    env.log.wait_durable = wait_durable  # type: ignore[method-assign]
    assert await env.coordinator.end_transaction(TXN, pid, epoch, True) == E.not_coordinator
    await asyncio.sleep(0.05)
    assert env.markers.written == [] and env.state() == TxnState.PREPARE_COMMIT
    assert await env.coordinator.end_transaction(TXN, pid, epoch, True) == \
        E.concurrent_transactions  # the client's retry
    replicated.set()
    for _ in range(100):  # the marker task polls replication; wait for it to see it
        if env.state() == TxnState.COMPLETE_COMMIT:
            break
        await asyncio.sleep(0.05)
    assert env.markers.written == [("a", 0, pid, epoch, True, 7)]
    assert env.state() == TxnState.COMPLETE_COMMIT


async def test_transaction_version_2_bumps_the_epoch_at_every_end(env: Env) -> None:
    """KIP-890 part 2: EndTxn v5 bumps the epoch (markers carry it, so a late write of
    the ended transaction is fenced) and answers the epoch the producer goes on with; a
    retry with the epoch below is answered again; an abort with nothing added works."""
    init = await env.coordinator.init_producer_id(TXN, 60_000, None)
    pid, epoch = init.producer_id, init.producer_epoch
    await env.coordinator.add_partitions(TXN, pid, epoch, [("a", 0)])
    ended = await env.coordinator.end_transaction_v2(TXN, pid, epoch, True)
    assert (ended.error, ended.producer_id, ended.producer_epoch) == (E.none, pid, epoch + 1)
    await env.settle()
    assert env.markers.written == [("a", 0, pid, epoch + 1, True, 7)]
    assert env.state() == TxnState.COMPLETE_COMMIT
    retry = await env.coordinator.end_transaction_v2(TXN, pid, epoch, True)
    assert (retry.error, retry.producer_epoch) == (E.none, epoch + 1)
    assert (await env.coordinator.end_transaction_v2(TXN, pid, epoch, False)).error == \
        E.invalid_txn_state
    # the next transaction runs at the new epoch; an abort with nothing added bumps again
    aborted = await env.coordinator.end_transaction_v2(TXN, pid, epoch + 1, False)
    assert (aborted.error, aborted.producer_epoch) == (E.none, epoch + 2)
    await env.settle()
    assert env.state() == TxnState.COMPLETE_ABORT
    assert (await env.coordinator.end_transaction_v2(TXN, pid, epoch + 2, True)).error == \
        E.invalid_txn_state
    assert (await env.coordinator.end_transaction_v2(TXN, pid, epoch, True)).error == \
        E.producer_fenced
    _, value = env.log.partitions[0][-1]
    assert value is not None and value[:2] == b"\x00\x01"  # TransactionLogValue v1, as Kafka


async def test_transaction_version_2_past_an_exhausted_epoch(env: Env) -> None:
    await env.coordinator.init_producer_id(TXN, 60_000, None)
    shard = env.coordinator.runtime.shards[0]
    shard.txns[TXN].producer_epoch = 32766
    pid = shard.txns[TXN].producer_id
    await env.coordinator.add_partitions(TXN, pid, 32766, [("a", 0)])
    ended = await env.coordinator.end_transaction_v2(TXN, pid, 32766, True)
    assert (ended.error, ended.producer_id, ended.producer_epoch) == (E.none, 1001, 0)
    await env.settle()
    assert env.markers.written == [("a", 0, pid, 32767, True, 7)]
    assert env.coordinator.describe(TXN)[1].producer_id == 1001  # type: ignore[union-attr]
    retry = await env.coordinator.end_transaction_v2(TXN, pid, 32766, True)
    assert (retry.error, retry.producer_id, retry.producer_epoch) == (E.none, 1001, 0)

"""The share-partition state machine (KIP-932) and share sessions, without sockets: a
clock the test moves, members by name."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.share.manager import ShareManager, ShareSettings
from strom.broker.share.partition import Acquired, RecordState, SharePartition, StateBatch
from strom.broker.share.persister import CoordinatorPersister
from strom.coordinator.share_state.records import decode
from strom.coordinator.share_state.shard import ShareCoordinatorShard

ACCEPT, RELEASE, REJECT, RENEW = 1, 2, 3, 4


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


class ShardHost:
    """The share state host as the persister sees it, over one real coordinator shard
    (each result replayed through its record bytes, as the runtime does)."""

    def __init__(self) -> None:
        self.shard = ShareCoordinatorShard(lambda: 0)

    def _run(self, result: Any) -> Any:
        for record in result.records:
            self.shard.replay(decode(*record.entry()))
        return result.response

    async def read(self, key: Any, leader_epoch: int) -> Any:
        return self._run(self.shard.read(key, leader_epoch))

    async def write(self, key: Any, state_epoch: int, leader_epoch: int, start: int,
                    batches: Any) -> Any:
        return self._run(self.shard.write(key, state_epoch, leader_epoch, start, batches))

    async def initialize(self, key: Any, state_epoch: int, start: int) -> Any:
        return self._run(self.shard.initialize(key, state_epoch, start))

    async def delete(self, key: Any) -> Any:
        return self._run(self.shard.delete(key))

    async def summary(self, key: Any) -> Any:
        return ErrorCode.none, self.shard.summary(key)


def persister(host: ShardHost | None = None, topic_id: uuid.UUID | None = None
              ) -> CoordinatorPersister:
    topic = topic_id or uuid.uuid4()
    return CoordinatorPersister(host or ShardHost(), {"t": topic}.get)


def load(manager: ShareManager, key: tuple[str, str, int], start: int = 0,
         settings: ShareSettings | None = None, topic_id: uuid.UUID | None = None,
         leader_epoch: int = 0) -> SharePartition:
    error, share = asyncio.run(manager.load(key, settings or ShareSettings(),
                                            lambda _reset: start, topic_id, leader_epoch))
    assert error == ErrorCode.none and share is not None
    return share


def make(start: int = 0, **kwargs: int) -> tuple[SharePartition, Clock]:
    clock = Clock()
    return SharePartition(start, clock, **kwargs), clock


def test_records_are_acquired_by_one_member_at_a_time() -> None:
    share, _ = make()
    assert share.acquire("a", upto=10, max_records=4) == [Acquired(0, 3, 1)]
    assert share.acquire("b", upto=10, max_records=100) == [Acquired(4, 9, 1)]
    assert share.acquire("c", upto=10, max_records=100) == []
    assert share.end_offset == 10


def test_accepted_records_move_the_start_offset_and_are_never_acquired_again() -> None:
    share, _ = make()
    share.acquire("a", upto=5, max_records=5)
    assert share.acknowledge("a", [(0, 2, (ACCEPT,))]) == ErrorCode.none
    assert share.start_offset == 3
    assert share.acquire("b", upto=5, max_records=10) == []


def test_released_records_come_back_with_the_next_delivery_count() -> None:
    share, _ = make()
    share.acquire("a", upto=3, max_records=3)
    assert share.acknowledge("a", [(0, 2, (ACCEPT, RELEASE, ACCEPT))]) == ErrorCode.none
    assert share.next_fetch_offset() == 1
    assert share.acquire("b", upto=3, max_records=10) == [Acquired(1, 1, 2)]


def test_rejected_records_are_archived() -> None:
    share, _ = make()
    share.acquire("a", upto=2, max_records=2)
    share.acknowledge("a", [(0, 1, (REJECT,))])
    assert share.start_offset == 2 and not share.records


def test_only_the_member_holding_a_record_acknowledges_it() -> None:
    share, _ = make()
    share.acquire("a", upto=2, max_records=2)
    assert share.acknowledge("b", [(0, 0, (ACCEPT,))]) == ErrorCode.invalid_record_state
    assert share.acknowledge("a", [(0, 5, (ACCEPT,))]) == ErrorCode.invalid_record_state
    assert share.records[0].state == RecordState.ACQUIRED  # all or nothing
    assert share.acknowledge("a", [(1, 0, (ACCEPT,))]) == ErrorCode.invalid_request


def test_an_expired_lock_releases_the_records_and_a_late_ack_is_refused() -> None:
    share, clock = make(lock_ms=30_000)
    share.acquire("a", upto=3, max_records=3)
    clock.now += 29_999
    assert share.acquire("b", upto=3, max_records=3) == []
    clock.now += 1
    assert share.acquire("b", upto=3, max_records=3) == [Acquired(0, 2, 2)]
    assert share.acknowledge("a", [(0, 2, (ACCEPT,))]) == ErrorCode.invalid_record_state


def test_renew_extends_the_lock() -> None:
    share, clock = make(lock_ms=1000)
    share.acquire("a", upto=1, max_records=1)
    clock.now += 900
    assert share.acknowledge("a", [(0, 0, (RENEW,))]) == ErrorCode.none
    clock.now += 900
    assert share.expire_locks() == 0
    assert share.acknowledge("a", [(0, 0, (ACCEPT,))]) == ErrorCode.none


def test_renew_is_refused_when_the_group_disables_it() -> None:
    """share.renew.acknowledge.enable=false: INVALID_RECORD_STATE, the lock untouched
    and nothing else in the request applied (all or nothing)."""
    share, clock = make(lock_ms=1000)
    share.renew_enabled = False
    share.acquire("a", upto=2, max_records=2)
    clock.now += 900
    assert share.acknowledge("a", [(0, 0, (ACCEPT,)), (1, 1, (RENEW,))]) == \
        ErrorCode.invalid_record_state
    assert share.records[0].state == RecordState.ACQUIRED
    clock.now += 200
    assert share.expire_locks() == 2


def test_the_delivery_count_limit_archives_a_record() -> None:
    share, clock = make(delivery_limit=3, lock_ms=10)
    deliveries = []
    for _ in range(5):
        got = share.acquire("a", upto=1, max_records=1)
        deliveries += [g.delivery_count for g in got]
        clock.now += 10  # the lock expires: released (or archived at the limit)
    assert deliveries == [1, 2, 3]
    assert share.start_offset == 1


def test_the_in_flight_window_is_bounded() -> None:
    share, _ = make(max_in_flight=4)
    assert share.acquire("a", upto=100, max_records=100) == [Acquired(0, 3, 1)]
    share.acknowledge("a", [(0, 1, (ACCEPT,))])
    assert share.acquire("a", upto=100, max_records=100) == [Acquired(4, 5, 1)]


def test_a_closed_members_records_are_released_at_once() -> None:
    share, _ = make()
    share.acquire("a", upto=2, max_records=2)
    assert share.release_member("a") == 2
    assert share.acquire("b", upto=2, max_records=2) == [Acquired(0, 1, 2)]


def test_the_durable_form_restores_states_and_counts_without_locks() -> None:
    share, clock = make(start=10)
    share.acquire("a", upto=16, max_records=6)
    share.acknowledge("a", [(11, 11, (ACCEPT,)), (12, 12, (RELEASE,)), (13, 13, (REJECT,))])
    batches = share.state_batches()
    assert batches[0] == StateBatch(10, 10, RecordState.AVAILABLE, 1)  # acquired: not kept
    copy = SharePartition(0, clock)
    copy.restore(share.start_offset, batches)
    assert copy.start_offset == 10 and copy.end_offset == 16
    assert copy.acquire("b", upto=20, max_records=100) == [
        Acquired(10, 10, 2), Acquired(12, 12, 2), Acquired(14, 15, 2), Acquired(16, 19, 1)]


def test_share_session_epochs() -> None:
    manager = ShareManager(Clock())
    tp = (uuid.uuid4(), 0)
    assert manager.open("g", "m", 1, [tp], [], False)[0] == ErrorCode.share_session_not_found
    assert manager.open("g", "m", 0, [tp], [], True)[0] == ErrorCode.invalid_request
    error, session = manager.open("g", "m", 0, [tp], [], False)
    assert error == ErrorCode.none and session is not None and session.epoch == 1
    assert manager.open("g", "m", 2, [], [], False)[0] == ErrorCode.invalid_share_session_epoch
    assert manager.open("g", "m", 1, [], [tp], False)[1] is not None
    assert not session.partitions and session.epoch == 2
    assert manager.acknowledging("g", "m", 0) == ErrorCode.invalid_share_session_epoch
    assert manager.acknowledging("g", "m", 2) == ErrorCode.none
    assert manager.acknowledging("g", "m", -1) == ErrorCode.none
    manager.close("g", "m")
    assert manager.acknowledging("g", "m", 3) == ErrorCode.share_session_not_found


def test_a_closed_connection_ends_its_share_sessions_and_releases_their_records() -> None:
    manager = ShareManager(Clock())
    share = load(manager, ("g", "t", 0))
    manager.open("g", "a", 0, [], [], False, "10.0.0.1:5000")
    manager.open("g", "b", 0, [], [], False, "10.0.0.1:5001")
    manager.open("g", "b", 0, [], [], False, "10.0.0.1:5002")  # b moved to a new connection
    share.acquire("a", upto=3, max_records=3)
    share.acquire("b", upto=5, max_records=2)
    assert manager.disconnected("10.0.0.1:5001") == 0  # b's old connection: not its session
    assert manager.disconnected("10.0.0.1:5000") == 3
    assert ("g", "a") not in manager.sessions and ("g", "b") in manager.sessions
    assert share.acquired_by("a") == [] and share.acquired_by("b") == [3, 4]
    assert share.next_fetch_offset() == 0


def test_a_new_share_partition_starts_where_share_auto_offset_reset_says() -> None:
    manager = ShareManager(Clock())
    starts = {"latest": 42, "earliest": 7}
    latest = asyncio.run(manager.load(("g", "t", 0), ShareSettings(), starts.__getitem__))[1]
    earliest = asyncio.run(manager.load(("h", "t", 0), ShareSettings(auto_offset_reset="earliest"),
                                        starts.__getitem__))[1]
    assert latest is not None and earliest is not None
    assert (latest.start_offset, earliest.start_offset) == (42, 7)


def test_a_new_share_partition_is_initialized_at_the_coordinator() -> None:
    """A new leader (another manager, same coordinator) resumes where the first began,
    not at a later `latest`."""
    host = ShardHost()
    store = persister(host)
    load(ShareManager(Clock(), store), ("g", "t", 0), start=5)
    assert load(ShareManager(Clock(), store), ("g", "t", 0), start=99).start_offset == 5


def test_a_new_leader_does_not_deliver_acknowledged_records_again() -> None:
    clock = Clock()
    store = persister()
    before = ShareManager(clock, store)
    share = load(before, ("g", "t", 0))
    share.acquire("a", upto=4, max_records=4)
    share.acknowledge("a", [(0, 1, (ACCEPT,)), (3, 3, (ACCEPT,))])
    assert asyncio.run(before.persist(("g", "t", 0))) == ErrorCode.none
    after = load(ShareManager(clock, store), ("g", "t", 0), leader_epoch=1)
    assert after.acquire("b", upto=6, max_records=10) == [Acquired(2, 2, 2), Acquired(4, 5, 1)]
    # the deposed leader (epoch 0) can no longer overwrite the new leader's state
    assert asyncio.run(before.persist(("g", "t", 0))) == ErrorCode.fenced_leader_epoch


def test_forgetting_a_share_partition_drops_its_durable_state() -> None:
    host = ShardHost()
    manager = ShareManager(Clock(), persister(host))
    share = load(manager, ("g", "t", 0), start=5)
    share.acquire("a", upto=6, max_records=1)
    asyncio.run(manager.persist(("g", "t", 0)))
    assert host.shard.states
    asyncio.run(manager.forget_group("g"))
    assert not host.shard.states and not manager.partitions


def test_share_metrics_count_in_flight_records_by_state() -> None:
    from prometheus_client.core import Metric

    from strom.broker.share.manager import manager_of
    from strom.broker.share.metrics import collect

    class Broker:
        replicas = type("Replicas", (), {})()

    broker = Broker()
    made = manager_of(broker.replicas, lambda: ShareManager(Clock()))
    assert made is not None
    share = load(made, ("g", "t", 0))
    share.acquire("a", upto=3, max_records=3)
    share.acknowledge("a", [(1, 1, (RELEASE,))])
    families: dict[str, Metric] = {m.name: m for m in collect(broker)}
    by_state = {s.labels["state"]: s.value
                for s in families["strom_share_partition_records"].samples}
    assert (by_state["acquired"], by_state["available"]) == (2, 1)
    assert families["strom_share_partition_start_offset"].samples[0].value == 0


def test_share_auto_offset_reset_latest_earliest_and_by_duration() -> None:
    from strom.broker.share.offset_reset import duration_ms, start_offset

    class Log:
        high_watermark, log_start_offset = 100, 10

        def list_offset(self, timestamp: int, read_committed: bool = False) -> object:
            return type("Found", (), {"offset": 40 if timestamp >= 1_000 else 10})()

    assert (start_offset(Log(), "latest", lambda: 0), start_offset(Log(), "earliest", lambda: 0)
            ) == (100, 10)
    assert start_offset(Log(), "by_duration:PT1S", lambda: 3_000) == 40
    assert start_offset(Log(), "by_duration:P1D", lambda: 3_000) == 10
    assert (duration_ms("PT1H30M"), duration_ms("PT0.5S"), duration_ms("P"), duration_ms("x")
            ) == (5_400_000, 500, None, None)


def test_a_recreated_topic_gets_a_new_share_partition() -> None:
    manager = ShareManager(Clock())
    old, new = uuid.uuid4(), uuid.uuid4()
    first = load(manager, ("g", "t", 0), 50, topic_id=old)
    first.acquire("a", upto=60, max_records=10)
    assert load(manager, ("g", "t", 0), 0, topic_id=old) is first
    fresh = load(manager, ("g", "t", 0), 0, topic_id=new)
    assert fresh is not first and fresh.start_offset == 0 and not fresh.records


def test_share_sessions_are_limited() -> None:
    manager = ShareManager(Clock(), max_sessions=1)
    assert manager.open("g", "a", 0, [], [], False)[0] == ErrorCode.none
    assert manager.open("g", "b", 0, [], [], False)[0] == ErrorCode.share_session_limit_reached
    assert manager.open("g", "a", 0, [], [], False)[0] == ErrorCode.none  # its own replaced


def test_read_committed_skips_aborted_transactions_and_markers() -> None:
    from strom.broker.share.isolation import skipped_offsets
    from strom.protocol.records import Attr, encode_batch

    def batch(base: int, count: int, pid: int = -1, attributes: int = 0) -> bytes:
        return encode_batch([(None, b"x")] * count, base_offset=base, producer_id=pid,
                            producer_epoch=0 if pid >= 0 else -1, attributes=attributes)

    txn, ctl = Attr.TRANSACTIONAL, Attr.TRANSACTIONAL | Attr.CONTROL
    data = (batch(0, 2) + batch(2, 2, pid=7, attributes=txn) + batch(4, 1, pid=8, attributes=txn)
            + batch(5, 1, pid=7, attributes=ctl) + batch(6, 1, pid=8, attributes=ctl)
            + batch(7, 1, pid=7, attributes=txn))
    skipped = skipped_offsets(data, [(7, 2)])  # producer 7's first transaction aborted
    assert skipped == {2, 3, 5, 6}  # its records and both markers; 8 committed; 7 again
    share, _ = make()
    share.archive(skipped, upto=8)
    assert share.acquire("a", upto=8, max_records=10) == [Acquired(0, 1, 1), Acquired(4, 4, 1),
                                                         Acquired(7, 7, 1)]

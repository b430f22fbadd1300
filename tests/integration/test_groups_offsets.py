"""Committed offsets: they survive a broker restart exactly, and OffsetFetch returns what
was committed — offsets, metadata strings and leader epochs — for one group or several
in one request (v8+).

`gbroker` (tests/conftest.py): one broker per module, without the initial rebalance delay.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.clients import create_topic, end_offsets, produce_round_robin, unique_topic
from support.groups import (
    NO_DELAY,
    Commit,
    MemberProcess,
    balanced,
    commit,
    committed_by_partition,
    consume_in_group,
    describe_group,
    describe_members,
    fetched_offsets,
    find_coordinator,
    gaps,
    offset_fetch,
    processed_union,
    raw,
    stop_all,
    wait_until,
)

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PARTITIONS = 4


# --- commit, restart the broker, resume -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("restart", ["graceful", "sigkill"])
@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_consumers_resume_exactly_at_committed_offsets_after_broker_restart(
    broker_factory: Callable[..., BrokerProcess], client: str, restart: str
) -> None:
    """A group processes part of each partition and commits; the broker restarts (same
    data dir, same port); a new consumer of the group starts exactly at the committed
    offsets — no committed record delivered again, none skipped — and its own commits
    survive a second restart."""
    broker = broker_factory(NO_DELAY)
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique_topic(f"grp-resume-{client}"), PARTITIONS)
    group = f"g-resume-{client}-{uuid.uuid4().hex[:6]}"
    produce_round_robin(bootstrap, topic, 40 * PARTITIONS, PARTITIONS, linger_ms=5)
    first_stop = {p: 10 + 5 * p for p in range(PARTITIONS)}  # different on every partition

    def bounce() -> None:
        if restart == "sigkill":
            broker.kill(signal.SIGKILL)
            broker.start()
        else:
            assert broker.stop() == 0
            broker.start()

    done = consume_in_group(client, bootstrap, group, topic, first_stop)
    assert sorted(done) == [(p, o) for p in range(PARTITIONS) for o in range(first_stop[p])]
    assert committed_by_partition(bootstrap, group, topic, PARTITIONS) == first_stop

    bounce()
    assert committed_by_partition(bootstrap, group, topic, PARTITIONS) == first_stop
    produce_round_robin(bootstrap, topic, 10 * PARTITIONS, PARTITIONS, linger_ms=5)
    ends = end_offsets(bootstrap, topic, range(PARTITIONS))
    assert ends == {p: 50 for p in range(PARTITIONS)}

    resumed = consume_in_group(client, bootstrap, group, topic, ends)
    for p in range(PARTITIONS):
        offsets = [o for q, o in resumed if q == p]
        assert offsets == list(range(first_stop[p], ends[p])), (
            f"partition {p}: resumed at {offsets[:3]}, committed {first_stop[p]}")
    assert committed_by_partition(bootstrap, group, topic, PARTITIONS) == ends

    bounce()
    assert committed_by_partition(bootstrap, group, topic, PARTITIONS) == ends
    with raw(bootstrap) as c:
        find_coordinator(c, group)
        assert describe_group(c, group).group_state == "Empty"
    assert broker.is_alive()


@pytest.mark.slow
def test_running_members_keep_their_group_across_a_broker_restart(
    broker_factory: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    """Members that stay up while the broker restarts carry on: the group is reloaded
    from __consumer_offsets, they keep consuming from their committed offsets, and
    every record is processed."""
    broker = broker_factory(NO_DELAY)
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-survive"), PARTITIONS)
    group = f"g-survive-{uuid.uuid4().hex[:6]}"
    produce_round_robin(bootstrap, topic, 20 * PARTITIONS, PARTITIONS, linger_ms=5)
    members = [MemberProcess("confluent", bootstrap, group, topic, tmp_path, f"m{i}",
                             session_ms=10000, heartbeat_ms=1000) for i in range(2)]
    try:
        for m in members:
            m.start()
        wait_until(lambda: balanced(members, PARTITIONS), 60, "two members share the topic",
                   detail=lambda: describe_members(members))
        ends = end_offsets(bootstrap, topic, range(PARTITIONS))
        wait_until(lambda: not gaps(processed_union(m.log() for m in members), ends), 30,
                   "first records processed")
        wait_until(lambda: committed_by_partition(bootstrap, group, topic, PARTITIONS) == ends, 30,
                   "first commits")
        assert broker.stop() == 0
        broker.start()
        produce_round_robin(bootstrap, topic, 20 * PARTITIONS, PARTITIONS, linger_ms=5)
        ends = end_offsets(bootstrap, topic, range(PARTITIONS))
        wait_until(lambda: not gaps(processed_union(m.log() for m in members), ends), 60,
                   "records produced after the restart are processed",
                   detail=lambda: describe_members(members))
        wait_until(lambda: committed_by_partition(bootstrap, group, topic, PARTITIONS) == ends, 30,
                   "commits after restart")
        for m in members:
            assert m.alive(), m.stderr()
            recs = m.log().processed()
            assert len(recs) == len(set(recs)), f"{m.name} processed a record twice"
        assert all(m.close() == 0 for m in members)
    finally:
        stop_all(members)


# --- OffsetFetch: metadata, leader epochs, several groups ------------------------------------


def test_offset_fetch_returns_metadata_and_leader_epochs(gbroker: BrokerProcess) -> None:
    """Committed metadata strings (empty, null, unicode, exactly offset.metadata.max.bytes)
    and leader epochs come back from OffsetFetch at every version that carries them, and
    from a real client's committed()."""
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-meta"), 5)
    group = f"g-meta-{uuid.uuid4().hex[:6]}"
    big = "m" * 4096
    commits = [
        Commit(topic, 0, 11, "", 0),
        Commit(topic, 1, 22, None, 3),
        Commit(topic, 2, 33, "ünïcødé ✓ metadata", 7),
        Commit(topic, 3, 44, big, -1),
    ]
    with raw(bootstrap) as c:
        find_coordinator(c, group)
        assert set(commit(c, group, commits).values()) == {0}
        for version in (5, 6, 7):
            got = fetched_offsets(offset_fetch(c, group, {topic: [0, 1, 2, 3, 4]}, version))
            assert got == {
                (topic, 0): (11, 0, "", 0),
                (topic, 1): (22, 3, "", 0),
                (topic, 2): (33, 7, "ünïcødé ✓ metadata", 0),
                (topic, 3): (44, -1, big, 0),
                (topic, 4): (-1, -1, "", 0),
            }, version
        # v1 has neither leader epochs nor "all partitions"; metadata is there.
        got = fetched_offsets(offset_fetch(c, group, {topic: [2]}, 1))
        assert got == {(topic, 2): (33, -1, "ünïcødé ✓ metadata", 0)}
        # All committed offsets of the group (null topics, v2+).
        everything = fetched_offsets(offset_fetch(c, group, None, 7))
        assert sorted(everything) == [(topic, p) for p in range(4)]

    # A real client commits metadata and a leader epoch and reads them back.
    group2 = f"g-meta-client-{uuid.uuid4().hex[:6]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group2,
                         "enable.auto.commit": False, "socket.timeout.ms": 10000})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 1, 5, "client metadata", 2)],
                        asynchronous=False)
        [tp] = consumer.committed([TopicPartition(topic, 1)], timeout=15)
        assert (tp.offset, tp.metadata, tp.leader_epoch) == (5, "client metadata", 2)
    finally:
        consumer.close()


@pytest.mark.parametrize("version", [8, 9])
def test_offset_fetch_many_groups_in_one_request(gbroker: BrokerProcess, version: int) -> None:
    """OffsetFetch v8+ answers several groups at once: each with its own offsets, a group
    asking for all its offsets (null topics), and a group that never committed."""
    bootstrap = gbroker.bootstrap
    t1 = create_topic(bootstrap, unique_topic("grp-multi-a"), 3)
    t2 = create_topic(bootstrap, unique_topic("grp-multi-b"), 2)
    tag = uuid.uuid4().hex[:6]
    ga, gb, gc = f"g-multi-a-{tag}", f"g-multi-b-{tag}", f"g-multi-none-{tag}"
    with raw(bootstrap) as c:
        for g in (ga, gb, gc):
            find_coordinator(c, g)
        assert set(commit(c, ga, [Commit(t1, 0, 100, "a0", 1), Commit(t1, 1, 101, "a1", 2),
                                  Commit(t2, 0, 7, "a-t2", 4)]).values()) == {0}
        assert set(commit(c, gb, [Commit(t1, 2, 200, "b2", 5), Commit(t2, 1, 9, None, -1)]
                          ).values()) == {0}
        body = c.request(9, version, require_stable=False, groups=[
            {"group_id": ga, "topics": [{"name": t1, "partition_indexes": [0, 1, 2]},
                                        {"name": t2, "partition_indexes": [0]}]},
            {"group_id": gb, "topics": None},
            {"group_id": gc, "topics": [{"name": t1, "partition_indexes": [0]}]},
        ]).body
        by_group = {g.group_id: g for g in body.groups}
        assert list(by_group) == [ga, gb, gc]
        assert all(g.error_code == ErrorCode.none for g in body.groups)
        assert fetched_offsets(by_group[ga]) == {
            (t1, 0): (100, 1, "a0", 0), (t1, 1): (101, 2, "a1", 0), (t1, 2): (-1, -1, "", 0),
            (t2, 0): (7, 4, "a-t2", 0),
        }
        assert fetched_offsets(by_group[gb]) == {(t1, 2): (200, 5, "b2", 0),
                                                 (t2, 1): (9, -1, "", 0)}
        assert fetched_offsets(by_group[gc]) == {(t1, 0): (-1, -1, "", 0)}

        # The same through kafka-python's admin, which batches groups into one v8+ request.
        from kafka import TopicPartition as KTP
        from kafka.admin import KafkaAdminClient

        kadmin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        try:
            result = kadmin.list_group_offsets({ga: None, gb: [KTP(t1, 2)]})
        finally:
            kadmin.close()
        flat = {g: {(tp.topic, tp.partition): (om.offset, om.metadata) for tp, om in offs.items()}
                for g, offs in result.items()}
        assert flat[ga] == {(t1, 0): (100, "a0"), (t1, 1): (101, "a1"), (t2, 0): (7, "a-t2")}
        assert flat[gb] == {(t1, 2): (200, "b2")}


def test_simple_commits_by_a_standalone_consumer(gbroker: BrokerProcess) -> None:
    """A consumer that assigns partitions itself (no subscription) commits with generation
    -1 and no member id; the offsets are kept and the group stays Empty."""
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-simple"), 2)
    group = f"g-simple-{uuid.uuid4().hex[:6]}"
    produce_round_robin(bootstrap, topic, 5 * 2, 2, linger_ms=5)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "socket.timeout.ms": 10000,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        seen: list[Any] = []
        deadline_polls = 200
        while len(seen) < 10 and deadline_polls:
            deadline_polls -= 1
            m = consumer.poll(0.1)
            if m is not None and m.error() is None:
                seen.append(m)
        assert len(seen) == 10
        consumer.commit(asynchronous=False)
        got = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=15)
        assert [tp.offset for tp in got] == [5, 5]
    finally:
        consumer.close()
    with raw(bootstrap) as c:
        described = describe_group(c, group)
        assert described.group_state == "Empty"
        got = fetched_offsets(offset_fetch(c, group, None))
        assert sorted(got) == [(topic, 0), (topic, 1)]
        for offset, epoch, metadata, error in got.values():
            # librdkafka sends the leader epoch of the last consumed record (0 here).
            assert (offset, metadata, error) == (5, "", 0) and epoch in (-1, 0)


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7, 8, 9])
def test_commit_and_fetch_at_every_version(gbroker: BrokerProcess, version: int) -> None:
    """OffsetCommit v2-v9 (the ones we serve) store what OffsetFetch v1-v9 read back."""
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic(f"grp-commit-v{version}"), 1)
    group = f"g-commit-v{version}-{uuid.uuid4().hex[:6]}"
    epoch = 4 if version >= 6 else -1  # committed_leader_epoch exists from v6
    with raw(bootstrap) as c:
        find_coordinator(c, group)
        assert commit(c, group, [Commit(topic, 0, 40 + version, f"v{version}", epoch)],
                      version=version) == {(topic, 0): ErrorCode.none}
        for fetch_version in (1, 3, 5, 7):
            got = fetched_offsets(offset_fetch(c, group, {topic: [0]}, fetch_version))
            want_epoch = epoch if fetch_version >= 5 else -1
            assert got == {(topic, 0): (40 + version, want_epoch, f"v{version}", 0)}, fetch_version


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_find_coordinator_for_a_group(gbroker: BrokerProcess, version: int) -> None:
    group = f"g-find-v{version}-{uuid.uuid4().hex[:6]}"
    with raw(gbroker.bootstrap) as c:
        if version >= 4:
            body = c.request(10, version, key_type=0, coordinator_keys=[group, group + "-b"]).body
            entries = list(body.coordinators)
            assert [e.key for e in entries] == [group, group + "-b"]
        else:
            entries = [c.request(10, version, key=group, key_type=0).body]
        for e in entries:
            assert e.error_code == ErrorCode.none
            assert (e.node_id, e.host, e.port) == (0, "127.0.0.1", gbroker.port)

"""Group administration through real admin clients: list (with a states filter),
describe, delete, and list/alter/delete committed offsets, against live and empty groups.

`gbroker` (tests/conftest.py): one broker per module, without the initial rebalance delay.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from kafka import TopicPartition as KTP
from kafka import errors as kerrors
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.clients import admin, create_topic, produce_round_robin, unique_topic
from support.groups import (
    NO_DELAY,
    Commit,
    MemberProcess,
    balanced,
    commit,
    committed_offsets,
    describe_group,
    describe_members,
    fetched_offsets,
    find_coordinator,
    offset_fetch,
    raw,
    stop_all,
    wait_until,
)

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PARTITIONS = 4
TIMEOUT = 30


def kadmin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)


def error_of(future: object) -> int | None:
    try:
        future.result(TIMEOUT)  # type: ignore[attr-defined]
    except KafkaException as exc:
        return int(exc.args[0].code())
    return None


def start_group(bootstrap: str, group: str, topic: str, tmp_path: Path, n: int = 2,
                name: str = "m") -> list[MemberProcess]:
    members = [MemberProcess("confluent", bootstrap, group, topic, tmp_path, f"{name}{i}",
                             session_ms=10000, heartbeat_ms=1000).start() for i in range(n)]
    wait_until(lambda: balanced(members, PARTITIONS), 60, f"group {group} is formed",
               detail=lambda: describe_members(members))
    return members


# --- list, describe, delete -------------------------------------------------------------------


@pytest.mark.slow
def test_list_describe_delete_groups(broker_factory: Callable[..., BrokerProcess],
                                     tmp_path: Path) -> None:
    broker = broker_factory(NO_DELAY)
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-admin"), PARTITIONS)
    other_topic = create_topic(bootstrap, unique_topic("grp-admin-other"), 2)
    produce_round_robin(bootstrap, topic, 5 * PARTITIONS, PARTITIONS, value_prefix=b"x")
    tag = uuid.uuid4().hex[:6]
    live, idle, ghost = f"g-live-{tag}", f"g-idle-{tag}", f"g-ghost-{tag}"
    client = admin(bootstrap)
    members = start_group(bootstrap, live, topic, tmp_path)
    try:
        with raw(bootstrap) as c:
            find_coordinator(c, idle)
            assert set(commit(c, idle, [Commit(topic, 0, 3, "idle"),
                                        Commit(other_topic, 1, 1)]).values()) == {0}

        # ListGroups, unfiltered and filtered by state (KIP-518).
        listed = client.list_consumer_groups(request_timeout=15).result(TIMEOUT)
        assert not listed.errors
        states = {g.group_id: g.state for g in listed.valid}
        assert states[live] == ConsumerGroupState.STABLE
        assert states[idle] == ConsumerGroupState.EMPTY
        assert ghost not in states
        assert not next(g for g in listed.valid if g.group_id == live).is_simple_consumer_group
        stable = client.list_consumer_groups(states={ConsumerGroupState.STABLE},
                                             request_timeout=15).result(TIMEOUT)
        assert live in {g.group_id for g in stable.valid}
        assert idle not in {g.group_id for g in stable.valid}
        empty = client.list_consumer_groups(states={ConsumerGroupState.EMPTY},
                                            request_timeout=15).result(TIMEOUT)
        assert idle in {g.group_id for g in empty.valid}
        assert live not in {g.group_id for g in empty.valid}
        both = client.list_consumer_groups(
            states={ConsumerGroupState.EMPTY, ConsumerGroupState.STABLE},
            request_timeout=15).result(TIMEOUT)
        assert {live, idle} <= {g.group_id for g in both.valid}
        ka = kadmin(bootstrap)
        try:
            k_stable = {g["group_id"]: g for g in ka.list_groups(states_filter=["Stable"])}
            assert live in k_stable and idle not in k_stable
            assert k_stable[live]["protocol_type"] == "consumer"
        finally:
            ka.close()

        # DescribeGroups: members with their assignments, state, assignor.
        futures = client.describe_consumer_groups([live, idle, ghost], request_timeout=15)
        desc = futures[live].result(TIMEOUT)
        assert desc.state == ConsumerGroupState.STABLE
        assert desc.partition_assignor == "range"
        assert not desc.is_simple_consumer_group
        assert len(desc.members) == 2
        assigned = sorted(tp.partition for m in desc.members
                          for tp in m.assignment.topic_partitions if tp.topic == topic)
        assert assigned == list(range(PARTITIONS))
        by_logs = sorted(sorted(m.log().assignment()) for m in members)
        by_desc = sorted(sorted(tp.partition for tp in m.assignment.topic_partitions)
                         for m in desc.members)
        assert by_desc == by_logs
        for m in desc.members:
            assert m.member_id.startswith(m.client_id)  # rdkafka ids are <client.id>-<uuid>
            assert m.host.lstrip("/") == "127.0.0.1"
        idle_desc = futures[idle].result(TIMEOUT)
        assert idle_desc.state == ConsumerGroupState.EMPTY
        assert idle_desc.members == []
        ghost_desc = futures[ghost].result(TIMEOUT)
        assert ghost_desc.state == ConsumerGroupState.DEAD
        assert ghost_desc.members == []

        # DeleteGroups: a live group is refused, an empty one goes with its offsets.
        deleted = client.delete_consumer_groups([live, idle, ghost], request_timeout=15)
        assert error_of(deleted[live]) == KafkaError.NON_EMPTY_GROUP
        assert error_of(deleted[idle]) is None
        assert error_of(deleted[ghost]) == KafkaError.GROUP_ID_NOT_FOUND
        assert committed_offsets(bootstrap, idle, [TopicPartition(topic, 0)]) == {(topic, 0): -1001}
        with raw(bootstrap) as c:
            assert fetched_offsets(offset_fetch(c, idle, None)) == {}
            assert describe_group(c, idle).group_state == "Dead"
            assert describe_group(c, live).group_state == "Stable"  # untouched
        listed = client.list_consumer_groups(request_timeout=15).result(TIMEOUT)
        assert idle not in {g.group_id for g in listed.valid}
        assert all(m.alive() for m in members)

        # Once its members leave, the live group can be deleted too.
        assert all(m.close() == 0 for m in members)
        with raw(bootstrap) as c:
            assert describe_group(c, live).group_state == "Empty"
        live_offsets = committed_offsets(bootstrap, live, [TopicPartition(topic, p)
                                                      for p in range(PARTITIONS)])
        assert set(live_offsets.values()) == {5}  # the members committed what they read
        assert error_of(client.delete_consumer_groups([live], request_timeout=15)[live]) is None

        # Deletions are durable: tombstones in __consumer_offsets replay on restart.
        assert broker.stop() == 0
        broker.start()
        with raw(bootstrap) as c:
            for g in (live, idle):
                find_coordinator(c, g)
                assert fetched_offsets(offset_fetch(c, g, None)) == {}, g
                assert describe_group(c, g).group_state == "Dead"
        client = admin(bootstrap)
        listed = client.list_consumer_groups(request_timeout=15).result(TIMEOUT)
        assert not {live, idle} & {g.group_id for g in listed.valid}
    finally:
        stop_all(members)


# --- committed offsets: list, alter, delete ------------------------------------------------------


def test_alter_and_list_offsets_of_an_empty_group(gbroker: BrokerProcess) -> None:
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-alter"), PARTITIONS)
    produce_round_robin(bootstrap, topic, 5 * PARTITIONS, PARTITIONS, value_prefix=b"x")
    group = f"g-alter-{uuid.uuid4().hex[:6]}"
    client = admin(bootstrap)
    request = ConsumerGroupTopicPartitions(group, [
        TopicPartition(topic, 0, 1), TopicPartition(topic, 1, 4),
        TopicPartition(topic, 2, 0, "with metadata")])
    result = client.alter_consumer_group_offsets([request], request_timeout=15)[group]
    altered = result.result(TIMEOUT)
    assert all(tp.error is None for tp in altered.topic_partitions), altered.topic_partitions
    assert committed_offsets(bootstrap, group) == {(topic, 0): 1, (topic, 1): 4, (topic, 2): 0}
    all_parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    assert committed_offsets(bootstrap, group, all_parts) == {
        (topic, 0): 1, (topic, 1): 4, (topic, 2): 0, (topic, 3): -1001}
    stable = client.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, all_parts[:1])], require_stable=True,
        request_timeout=15)[group].result(TIMEOUT)
    assert [(tp.partition, tp.offset) for tp in stable.topic_partitions] == [(0, 1)]
    with raw(bootstrap) as c:
        # confluent-kafka sends metadata with its C string terminator; it is kept as sent.
        metadata = fetched_offsets(offset_fetch(c, group, {topic: [2]}))[(topic, 2)][2]
        assert metadata in ("with metadata", "with metadata\x00")
        assert describe_group(c, group).group_state == "Empty"

    # kafka-python's admin alters and reads back the same way.
    ka = kadmin(bootstrap)
    try:
        errors = ka.alter_group_offsets(group, {KTP(topic, 3): OffsetAndMetadata(2, "kp", -1)})
        assert errors == {KTP(topic, 3): kerrors.NoError}
        offsets = ka.list_group_offsets({group: None})[group]
        assert {tp.partition: om.offset for tp, om in offsets.items()} == {0: 1, 1: 4, 2: 0, 3: 2}
    finally:
        ka.close()


@pytest.mark.slow
def test_offsets_of_a_live_group(gbroker: BrokerProcess, tmp_path: Path) -> None:
    """A group with members: altering offsets is refused (UNKNOWN_MEMBER_ID: the admin is
    no member); deleting offsets of a topic the members subscribe to is refused with
    GROUP_SUBSCRIBED_TO_TOPIC, of another topic allowed; once the group is empty,
    deleting works for every topic."""
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-live-offsets"), PARTITIONS)
    other = create_topic(bootstrap, unique_topic("grp-live-other"), 2)
    produce_round_robin(bootstrap, topic, 5 * PARTITIONS, PARTITIONS, value_prefix=b"x")
    group = f"g-live-offsets-{uuid.uuid4().hex[:6]}"
    with raw(bootstrap) as c:
        find_coordinator(c, group)
        assert set(commit(c, group, [Commit(other, 0, 1), Commit(other, 1, 1)]).values()) == {0}
    members = start_group(bootstrap, group, topic, tmp_path)
    try:
        wait_until(lambda: all(o == 5 for o in committed_offsets(
            bootstrap, group, [TopicPartition(topic, p) for p in range(PARTITIONS)]).values()),
            TIMEOUT, "members commit what they read")
        client = admin(bootstrap)
        result = client.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])],
            request_timeout=15)[group]
        try:  # the error comes either raised or per partition, depending on the client
            error = result.result(TIMEOUT).topic_partitions[0].error
            code = None if error is None else error.code()
        except KafkaException as exc:
            code = exc.args[0].code()
        assert code == KafkaError.UNKNOWN_MEMBER_ID
        assert committed_offsets(bootstrap, group, [TopicPartition(topic, 0)]) == {(topic, 0): 5}

        ka = kadmin(bootstrap)
        try:
            errors = ka.delete_group_offsets(group, [KTP(topic, 0), KTP(topic, 1), KTP(other, 0)])
            assert errors == {KTP(topic, 0): kerrors.GroupSubscribedToTopicError,
                              KTP(topic, 1): kerrors.GroupSubscribedToTopicError,
                              KTP(other, 0): kerrors.NoError}
            left = ka.list_group_offsets({group: None})[group]
            assert {(tp.topic, tp.partition) for tp in left} == (
                {(topic, p) for p in range(PARTITIONS)} | {(other, 1)})
            assert all(m.alive() for m in members)
            with raw(bootstrap) as c:
                assert describe_group(c, group).group_state == "Stable"

            assert all(m.close() == 0 for m in members)
            errors = ka.delete_group_offsets(group, [KTP(topic, 0), KTP(topic, 1), KTP(other, 1)])
            assert set(errors.values()) == {kerrors.NoError}
            left = ka.list_group_offsets({group: None})[group]
            assert {(tp.topic, tp.partition) for tp in left} == {(topic, 2), (topic, 3)}
            with pytest.raises(kerrors.GroupIdNotFoundError):
                ka.delete_group_offsets(f"g-never-{uuid.uuid4().hex[:6]}", [KTP(topic, 0)])
        finally:
            ka.close()
        with raw(bootstrap) as c:
            body = c.request(47, 0, group_id=group, topics=[
                {"name": topic, "partitions": [{"partition_index": 2}]}]).body
            assert body.error_code == ErrorCode.none
            assert body.topics[0].partitions[0].error_code == ErrorCode.none
            left_now = fetched_offsets(offset_fetch(c, group, None))
            assert list(left_now) == [(topic, 3)]
            assert left_now[(topic, 3)][0] == 5
    finally:
        stop_all(members)


@pytest.mark.slow
def test_remove_static_member_with_admin(gbroker: BrokerProcess, tmp_path: Path) -> None:
    """A static member that closed stays in the group until its (long) session expires;
    LeaveGroup by group.instance.id through kafka-python's admin removes it at once and
    the remaining member takes over its partitions."""
    from kafka.admin import MemberToRemove

    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-remove"), PARTITIONS)
    group = f"g-remove-{uuid.uuid4().hex[:6]}"
    session_ms = 120_000
    members = [MemberProcess("confluent", bootstrap, group, topic, tmp_path, f"s{i}",
                             session_ms=session_ms, heartbeat_ms=1000,
                             instance_id=f"inst-{i}").start() for i in range(2)]
    try:
        wait_until(lambda: balanced(members, PARTITIONS), 60, "two static members",
                   detail=lambda: describe_members(members))
        gone, stays = members
        assert gone.close() == 0
        with raw(bootstrap) as c:
            described = describe_group(c, group)
            assert described.group_state == "Stable"
            assert sorted(m.group_instance_id for m in described.members) == ["inst-0", "inst-1"]
        ka = kadmin(bootstrap)
        try:
            result = ka.remove_group_members(group, [MemberToRemove(group_instance_id="inst-0")])
            assert list(result.values()) == [kerrors.NoError]
            wait_until(lambda: stays.log().assignment() == set(range(PARTITIONS)),
                       session_ms / 4000, "the remaining member takes every partition",
                       detail=lambda: describe_members(members))
            with raw(bootstrap) as c:
                described = describe_group(c, group)
                assert [m.group_instance_id for m in described.members] == ["inst-1"]
            again = ka.remove_group_members(group, [MemberToRemove(group_instance_id="inst-0")])
            assert list(again.values()) == [kerrors.UnknownMemberIdError]
        finally:
            ka.close()
        assert stays.alive()
        assert stays.close() == 0
    finally:
        stop_all(members)

"""The group coordinator refuses bad input with Kafka's error codes and carries on.

Real clients never send most of this, so these tests speak the protocol directly
(`support.raw_client` through `support.groups`). After each refusal the broker must be
up and the group exactly as it was: same state, members and generation, and heartbeats
and commits of the real members still accepted.

`gbroker` (tests/conftest.py): one broker per module, without the initial rebalance delay.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.clients import create_topic, unique_topic
from support.groups import (
    NO_DELAY,
    Commit,
    assert_intact,
    close_members,
    commit,
    current_generation,
    describe_group,
    fetched_offsets,
    find_coordinator,
    form_group,
    heartbeat,
    join,
    leave,
    new_group,
    offset_fetch,
    raw,
    subscription,
    sync,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

E = ErrorCode


@pytest.fixture(scope="module")
def topic(gbroker: BrokerProcess) -> str:
    return create_topic(gbroker.bootstrap, unique_topic("grp-err"), 3)


# --- JoinGroup ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 5, 7, 9])
def test_join_without_member_id_gets_member_id_required(gbroker: BrokerProcess, topic: str,
                                                        version: int) -> None:
    group = new_group("mid")
    with raw(gbroker.bootstrap) as c:
        find_coordinator(c, group)
        first = join(c, group, topics=[topic], version=version)
        assert first.error_code == E.member_id_required
        assert first.member_id.startswith("strom-raw-test-")
        assert first.generation_id == -1
        assert first.members == ()
        assert describe_group(c, group).members == ()  # pending, not yet a member
        second = join(c, group, member_id=first.member_id, topics=[topic], version=version)
        assert second.error_code == E.none
        assert (second.member_id, second.leader, second.generation_id) == (
            first.member_id, first.member_id, 1)
        assert [(m.member_id, bytes(m.metadata)) for m in second.members] == [
            (first.member_id, subscription([topic]))]
        assert second.protocol_name == "range"
        # A made-up member id is refused; the group is not disturbed.
        bogus = join(c, group, member_id="never-issued", topics=[topic], version=version)
        assert bogus.error_code == E.unknown_member_id
        assert describe_group(c, group).group_state == "CompletingRebalance"
        synced = sync(c, group, 1, first.member_id, {first.member_id: b"a"})
        assert (synced.error_code, bytes(synced.assignment)) == (E.none, b"a")
        assert heartbeat(c, group, 1, first.member_id) == E.none


@pytest.mark.parametrize("version", [0, 1, 3])
def test_join_before_v4_needs_no_member_id(gbroker: BrokerProcess, topic: str,
                                           version: int) -> None:
    group = new_group("oldjoin")
    with raw(gbroker.bootstrap) as c:
        find_coordinator(c, group)
        joined = join(c, group, topics=[topic], version=version)
        assert joined.error_code == E.none
        assert joined.member_id and joined.leader == joined.member_id
        assert joined.generation_id == 1


@pytest.mark.parametrize("session_ms", [0, 5999, 1_800_001])
def test_session_timeout_out_of_range(gbroker: BrokerProcess, topic: str,
                                      session_ms: int) -> None:
    """group.min.session.timeout.ms (6000) and group.max.session.timeout.ms (1800000)
    bound a joiner's session timeout: INVALID_SESSION_TIMEOUT, for a new group and for a
    joiner of an existing one, which stays as it was."""
    group = new_group("session")
    with raw(gbroker.bootstrap) as c:
        find_coordinator(c, group)
        lone = join(c, group, topics=[topic], session_ms=session_ms)
        assert lone.error_code == E.invalid_session_timeout
        assert describe_group(c, group).group_state == "Dead"  # nothing was created
    members = form_group(gbroker.bootstrap, group, topic)
    with raw(gbroker.bootstrap) as c:
        for member_id in ("", members[1].member_id):
            refused = join(c, group, member_id=member_id, topics=[topic], session_ms=session_ms)
            assert refused.error_code == E.invalid_session_timeout
    assert_intact(gbroker, group, members)
    with raw(gbroker.bootstrap) as c:  # the bounds themselves are allowed
        for ok_ms in (6000, 1_800_000):
            assert join(c, new_group("session-ok"), topics=[topic],
                        session_ms=ok_ms).error_code == E.member_id_required
    close_members(group, members)


def test_join_with_inconsistent_protocols(gbroker: BrokerProcess, topic: str) -> None:
    group = new_group("proto")
    members = form_group(gbroker.bootstrap, group, topic)
    with raw(gbroker.bootstrap) as c:
        other_type = join(c, group, topics=[topic], protocol_type="connect")
        assert other_type.error_code == E.inconsistent_group_protocol
        no_common = join(c, group, protocols=[("roundrobin-only", subscription([topic]))])
        assert no_common.error_code == E.inconsistent_group_protocol
        none_at_all = join(c, new_group("proto-empty"), protocols=[])
        assert none_at_all.error_code == E.inconsistent_group_protocol
        empty_id = join(c, "", topics=[topic])
        assert empty_id.error_code == E.invalid_group_id
    assert_intact(gbroker, group, members)
    close_members(group, members)


# --- SyncGroup ----------------------------------------------------------------------------------


def test_malformed_assignments_are_stored_opaquely(
    broker_factory: Callable[..., BrokerProcess], topic: str
) -> None:
    """The leader hands out random bytes (and nothing at all to one member): each member
    gets exactly its bytes back, DescribeGroups shows them, the group carries on, and a
    broker restart reloads them unchanged."""
    broker = broker_factory(NO_DELAY)
    t = create_topic(broker.bootstrap, unique_topic("grp-junk"), 3)
    group = new_group("junk")
    junk = {0: os.urandom(1000), 1: b"\xff\xff\xff\xff\x00", 2: b""}

    def plan(member_ids: list[str]) -> dict[str, bytes]:
        out = {mid: junk[k] for k, mid in enumerate(member_ids)}
        out.pop(member_ids[-1], None)  # the last member is left out of the assignment
        out["not-a-member"] = b"ignored"
        return out

    members = form_group(broker.bootstrap, group, t, n=3, assignments=plan)
    assert [m.assignment for m in members] == [junk[0], junk[1], b""]
    assert_intact(broker, group, members)
    for m in members:
        result = commit(m.client, group, [Commit(t, 0, 7, m.member_id[-8:])],
                        generation=m.generation, member_id=m.member_id)
        assert result == {(t, 0): E.none}
    # A follower's SyncGroup with assignments of its own changes nothing.
    again = sync(members[1].client, group, members[1].generation, members[1].member_id,
                 {members[1].member_id: b"mine now"})
    assert (again.error_code, bytes(again.assignment)) == (E.none, junk[1])
    assert_intact(broker, group, members)
    with raw(broker.bootstrap) as c:
        ids = {m.member_id for m in describe_group(c, group).members}

    for m in members:
        m.client.close()
    assert broker.stop() == 0
    broker.start()
    with raw(broker.bootstrap) as c:
        find_coordinator(c, group)
        described = describe_group(c, group)
        assert described.group_state == "Stable"
        assert {m.member_id for m in described.members} == ids
        assert {m.member_id: bytes(m.member_assignment) for m in described.members} == {
            m.member_id: m.assignment for m in members}
        assert current_generation(c, group, members[0].member_id) == members[0].generation
        assert fetched_offsets(offset_fetch(c, group, {t: [0]}))[(t, 0)][0] == 7


def test_garbage_subscription_metadata(gbroker: BrokerProcess, topic: str) -> None:
    """Random bytes as a member's protocol metadata: the leader receives them verbatim,
    and OffsetDelete, unable to tell which topics the group reads, refuses to delete
    (GROUP_SUBSCRIBED_TO_TOPIC) as Kafka does."""
    group = new_group("junk-sub")
    blob = b"\x00\x00\x7f\xff\xff\xff" + os.urandom(300)  # claims 2**31-1 topics
    members = form_group(gbroker.bootstrap, group, topic, n=2,
                         protocols=[[("range", subscription([topic]))], [("range", blob)]])
    with raw(gbroker.bootstrap) as c:
        m0 = members[0]
        assert commit(c, group, [Commit(topic, 1, 3)], generation=m0.generation,
                      member_id=m0.member_id) == {(topic, 1): E.none}
        body = c.request(47, 0, group_id=group, topics=[
            {"name": topic, "partitions": [{"partition_index": 1}]}]).body
        assert body.error_code == E.none
        assert body.topics[0].partitions[0].error_code == E.group_subscribed_to_topic
        assert fetched_offsets(offset_fetch(c, group, {topic: [1]}))[(topic, 1)][0] == 3
    assert_intact(gbroker, group, members)
    close_members(group, members)


def test_sync_group_errors(gbroker: BrokerProcess, topic: str) -> None:
    group = new_group("sync")
    members = form_group(gbroker.bootstrap, group, topic)
    m0 = members[0]
    with raw(gbroker.bootstrap) as c:
        assert sync(c, group, m0.generation, "not-a-member").error_code == E.unknown_member_id
        assert sync(c, group, m0.generation + 1, m0.member_id).error_code == E.illegal_generation
        assert sync(c, group, m0.generation, m0.member_id,
                    protocol_name="roundrobin").error_code == E.inconsistent_group_protocol
        assert sync(c, new_group("sync-none"), 1, "x").error_code == E.unknown_member_id
        assert heartbeat(c, group, m0.generation, "not-a-member") == E.unknown_member_id
        assert heartbeat(c, group, m0.generation - 1, m0.member_id) == E.illegal_generation
        left = leave(c, group, "not-a-member")
        assert [m.error_code for m in left.members] == [E.unknown_member_id]
    assert_intact(gbroker, group, members)
    close_members(group, members)


# --- OffsetCommit ----------------------------------------------------------------------------


def test_commits_from_non_members(gbroker: BrokerProcess, topic: str) -> None:
    """Only members of the current generation commit to a live group: others get
    UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION and the stored offsets do not move."""
    group = new_group("nonmember")
    members = form_group(gbroker.bootstrap, group, topic)
    m0, m1 = members
    good = commit(m0.client, group, [Commit(topic, 0, 10, "good")], generation=m0.generation,
                  member_id=m0.member_id)
    assert good == {(topic, 0): E.none}
    attempt = [Commit(topic, 0, 99, "bad")]
    with raw(gbroker.bootstrap) as c:
        for version in (2, 5, 7, 9):
            assert commit(c, group, attempt, generation=m0.generation, member_id="intruder",
                          version=version) == {(topic, 0): E.unknown_member_id}, version
            assert commit(c, group, attempt, generation=m0.generation + 1,
                          member_id=m0.member_id, version=version) == {
                (topic, 0): E.illegal_generation}, version
            assert commit(c, group, attempt, generation=0, member_id=m1.member_id,
                          version=version) == {(topic, 0): E.illegal_generation}, version
            # An "admin" commit (no member, no generation) to a live group.
            assert commit(c, group, attempt, version=version) == {
                (topic, 0): E.unknown_member_id}, version
        # A generation for a group that does not exist.
        assert commit(c, new_group("nonmember-none"), attempt, generation=3,
                      member_id="someone") == {(topic, 0): E.illegal_generation}
        assert fetched_offsets(offset_fetch(c, group, {topic: [0]})) == {
            (topic, 0): (10, -1, "good", 0)}
    assert_intact(gbroker, group, members)
    close_members(group, members)


def test_commit_to_unknown_topic_or_partition(gbroker: BrokerProcess, topic: str) -> None:
    group = new_group("unknown-topic")
    ghost = f"no-such-topic-{uuid.uuid4().hex[:6]}"
    members = form_group(gbroker.bootstrap, group, topic)
    m0 = members[0]
    batch = [Commit(ghost, 0, 5), Commit(topic, 3, 5), Commit(topic, 2, 5), Commit(topic, -1, 5)]
    as_member = commit(m0.client, group, batch, generation=m0.generation, member_id=m0.member_id)
    assert as_member == {(ghost, 0): E.unknown_topic_or_partition,
                         (topic, 3): E.unknown_topic_or_partition,
                         (topic, 2): E.none,
                         (topic, -1): E.unknown_topic_or_partition}
    with raw(gbroker.bootstrap) as c:
        simple_group = new_group("unknown-topic-simple")
        find_coordinator(c, simple_group)
        assert commit(c, simple_group, batch) == as_member
        for g in (group, simple_group):
            assert fetched_offsets(offset_fetch(c, g, None)) == {(topic, 2): (5, -1, "", 0)}
        # Nothing was created by the attempt.
        meta = c.request(3, 12, topics=[{"name": ghost}], allow_auto_topic_creation=False).body
        assert meta.topics[0].error_code == E.unknown_topic_or_partition
    assert_intact(gbroker, group, members)
    close_members(group, members)


def test_oversized_commit_metadata(gbroker: BrokerProcess, topic: str) -> None:
    """offset.metadata.max.bytes (4096) bounds commit metadata, counted as Kafka counts it
    (Java String.length(): UTF-16 code units); longer is OFFSET_METADATA_TOO_LARGE for that
    partition only, and the stored offset stays."""
    group = new_group("bigmeta")
    members = form_group(gbroker.bootstrap, group, topic)
    m0 = members[0]

    def commit_one(partition: int, metadata: str, offset: int = 1) -> int:
        return commit(m0.client, group, [Commit(topic, partition, offset, metadata)],
                      generation=m0.generation, member_id=m0.member_id)[(topic, partition)]

    assert commit_one(0, "x" * 4096) == E.none
    assert commit_one(0, "y" * 4097, offset=2) == E.offset_metadata_too_large
    assert commit_one(1, "é" * 4096) == E.none  # 4096 chars, 8192 bytes of UTF-8
    assert commit_one(1, "é" * 4097, offset=2) == E.offset_metadata_too_large
    assert commit_one(2, "\U0001d11e" * 2048) == E.none  # 2 UTF-16 units each
    assert commit_one(2, "\U0001d11e" * 2049, offset=2) == E.offset_metadata_too_large
    mixed = commit(m0.client, group, [Commit(topic, 0, 3, "z" * 5000), Commit(topic, 1, 3, "ok")],
                   generation=m0.generation, member_id=m0.member_id)
    assert mixed == {(topic, 0): E.offset_metadata_too_large, (topic, 1): E.none}
    with raw(gbroker.bootstrap) as c:
        got = fetched_offsets(offset_fetch(c, group, {topic: [0, 1, 2]}))
        assert got == {(topic, 0): (1, -1, "x" * 4096, 0), (topic, 1): (3, -1, "ok", 0),
                       (topic, 2): (1, -1, "\U0001d11e" * 2048, 0)}
    assert_intact(gbroker, group, members)
    close_members(group, members)


# --- static members --------------------------------------------------------------------------


def test_static_member_joins_without_member_id_required(gbroker: BrokerProcess,
                                                         topic: str) -> None:
    """KIP-345: a static member's first JoinGroup (v5+) is accepted at once; it does not
    go through MEMBER_ID_REQUIRED."""
    group = new_group("static-first")
    with raw(gbroker.bootstrap) as c:
        find_coordinator(c, group)
        joined = join(c, group, instance_id="only-one", topics=[topic])
        assert joined.error_code == E.none
        assert joined.member_id and joined.leader == joined.member_id
        described = describe_group(c, group)
        assert [(m.member_id, m.group_instance_id) for m in described.members] == [
            (joined.member_id, "only-one")]


def test_static_member_replacement(gbroker: BrokerProcess, topic: str) -> None:
    """A new process joins with a static member's instance id: it takes the old member's
    place and assignment without a rebalance; the old member id is fenced. When the
    replaced member was the leader, the answer names the previous leader and lists no
    members, so the newcomer does not compute an assignment a Stable group would never
    hand out (Kafka's rule)."""
    group = new_group("static")
    members = form_group(gbroker.bootstrap, group, topic, instance_ids=["i-0", "i-1"])
    leader, follower = members
    for old, is_leader in ((follower, False), (leader, True)):
        with raw(gbroker.bootstrap) as c:
            rejoined = join(c, group, instance_id=old.instance_id, topics=[topic])
            assert rejoined.error_code == E.none
            assert rejoined.generation_id == old.generation
            assert rejoined.member_id != old.member_id
            assert rejoined.members == ()
            assert rejoined.leader == (old.member_id if is_leader else leader.member_id)
            synced = sync(c, group, rejoined.generation_id, rejoined.member_id,
                          instance_id=old.instance_id)
            assert (synced.error_code, bytes(synced.assignment)) == (E.none, old.assignment)
            assert heartbeat(c, group, old.generation, old.member_id,
                             old.instance_id) == E.fenced_instance_id
            assert commit(c, group, [Commit(topic, 0, 1)], generation=old.generation,
                          member_id=old.member_id, instance_id=old.instance_id) == {
                (topic, 0): E.fenced_instance_id}
            # The old process (a zombie) is told to stop, not to rejoin: with
            # UNKNOWN_MEMBER_ID it would rejoin and fence the new process instead.
            zombie_join = join(old.client, group, member_id=old.member_id,
                               instance_id=old.instance_id, topics=[topic])
            assert zombie_join.error_code == E.fenced_instance_id
            zombie_sync = sync(old.client, group, old.generation, old.member_id,
                               instance_id=old.instance_id)
            assert zombie_sync.error_code == E.fenced_instance_id
            assert leave(old.client, group, old.member_id, old.instance_id).members[
                0].error_code == E.fenced_instance_id
            old.client.close()
            old.client = raw(gbroker.bootstrap)
            old.member_id = rejoined.member_id
            assert_intact(gbroker, group, members)
    close_members(group, members)

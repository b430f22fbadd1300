"""The group shard as a pure state machine: records in -> state; operation -> records + response.

No runtime, no asyncio: `ShardHarness` applies results as the runtime would, and time
moves only when a test advances it.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from strom.coordinator.group import codec, records
from strom.coordinator.group.membership import JoinRequest
from strom.coordinator.group.model import GroupState, JoinResult, SyncResult
from strom.coordinator.group.offsets import OffsetCommit
from strom.coordinator.runtime import Pending

from .fakes import ShardHarness

S = GroupState
SUBSCRIPTION = b"\x00\x01\x00\x00\x00\x01\x00\x06orders"
PROTOCOLS = [("range", SUBSCRIPTION), ("roundrobin", SUBSCRIPTION)]


def join_req(member_id: str = "", instance: str | None = None, client: str = "c",
             protocols: list[tuple[str, bytes]] | None = None) -> JoinRequest:
    return JoinRequest("g", member_id, instance, client, "/10.0.0.1", 10_000, 20_000, "consumer",
                       protocols or PROTOCOLS, require_known_member_id=True)


def offset_value(offset: int) -> codec.OffsetValue:
    return codec.OffsetValue(offset, 3, "meta", 1_000)


def member_value(member_id: str, instance: str | None = None, assignment: bytes = b"",
                 rebalance_timeout: int = 20_000) -> codec.MemberValue:
    return codec.MemberValue(member_id, instance, "c", "/h", rebalance_timeout, 10_000,
                             SUBSCRIPTION, assignment)


def group_value(generation: int, *members: codec.MemberValue, leader: str | None = None,
                ts: int = 7) -> codec.GroupValue:
    return codec.GroupValue("consumer", generation, "range" if members else None,
                            leader if leader is not None else (members[0].member_id
                                                               if members else None),
                            ts, tuple(members))


def stable_pair(h: ShardHarness) -> tuple[str, str]:
    """Two dynamic members through MEMBER_ID_REQUIRED, join and sync: (leader, follower)."""
    ids = [h.run(h.shard.join(join_req(client=c))).member_id for c in ("a", "b")]
    pending = [h.run(h.shard.join(join_req(mid))) for mid in ids]
    joined = [h.answer(p) for p in pending]
    assert all(isinstance(j, JoinResult) and j.generation_id == 1 for j in joined)
    leader = joined[0].leader
    follower = next(i for i in ids if i != leader)
    follower_sync = h.run(h.shard.sync("g", 1, follower, None, None, None, {}))
    leader_sync = h.run(h.shard.sync("g", 1, leader, None, None, None,
                                     {leader: b"L", follower: b"F"}))
    assert h.answer(leader_sync) == SyncResult(protocol_type="consumer", protocol_name="range",
                                               assignment=b"L")
    assert h.answer(follower_sync).assignment == b"F"
    return leader, follower


# --- records in -> state ----------------------------------------------------------------


def test_an_offset_record_makes_a_simple_group_and_its_tombstone_removes_the_offset() -> None:
    h = ShardHarness()
    h.shard.replay(records.OffsetRecord(codec.OffsetKey("g", "orders", 0), offset_value(5)))
    group = h.shard.groups["g"]
    assert group.state is S.EMPTY and group.protocol_type is None
    assert group.offsets[("orders", 0)].offset == 5
    h.shard.replay(records.OffsetRecord(codec.OffsetKey("g", "orders", 0), None))
    assert group.offsets == {}


def test_group_metadata_rebuilds_a_stable_group_and_keeps_its_offsets() -> None:
    h = ShardHarness()
    h.shard.replay(records.OffsetRecord(codec.OffsetKey("g", "orders", 0), offset_value(5)))
    h.shard.replay(records.GroupRecord(codec.GroupKey("g"), group_value(
        4, member_value("m1", "i1", b"A"), member_value("m2", assignment=b"B"), leader="m2")))
    group = h.shard.groups["g"]
    assert (group.state, group.generation_id, group.leader_id) == (S.STABLE, 4, "m2")
    assert group.protocol_name == "range" and group.protocol_type == "consumer"
    assert group.static_members == {"i1": "m1"} and group.state_timestamp == 7
    assert [m.assignment for m in group.members.values()] == [b"A", b"B"]
    assert group.members["m1"].protocols == [("range", SUBSCRIPTION)]
    assert group.offsets[("orders", 0)].offset == 5


def test_a_later_generation_replaces_the_members_and_an_empty_one_empties_the_group() -> None:
    h = ShardHarness()
    key = codec.GroupKey("g")
    h.shard.replay(records.GroupRecord(key, group_value(1, member_value("m1", "i1"),
                                                        member_value("m2"))))
    h.shard.replay(records.GroupRecord(key, group_value(2, member_value("m2"),
                                                        member_value("m3", "i1"))))
    group = h.shard.groups["g"]
    assert list(group.members) == ["m2", "m3"] and group.static_members == {"i1": "m3"}
    h.shard.replay(records.GroupRecord(key, group_value(3)))
    assert group.state is S.EMPTY and group.members == {} and group.leader_id is None


def test_a_group_tombstone_removes_the_group_but_not_offsets_written_after_it() -> None:
    h = ShardHarness()
    key = codec.GroupKey("g")
    h.shard.replay(records.GroupRecord(key, group_value(1, member_value("m1"))))
    h.shard.replay(records.GroupRecord(key, None))
    assert "g" not in h.shard.groups
    h.shard.replay(records.OffsetRecord(codec.OffsetKey("g", "orders", 1), offset_value(9)))
    h.shard.replay(records.GroupRecord(key, None))  # offsets outlive the metadata
    group = h.shard.groups["g"]
    assert group.generation_id == 0 and group.offsets[("orders", 1)].offset == 9


def test_a_v0_member_without_rebalance_timeout_uses_its_session_timeout() -> None:
    h = ShardHarness()
    h.shard.replay(records.GroupRecord(codec.GroupKey("g"), group_value(
        1, member_value("m1", rebalance_timeout=-1))))
    assert h.shard.groups["g"].members["m1"].rebalance_timeout_ms == 10_000


def test_on_loaded_drops_vacant_groups_and_starts_every_session_timer() -> None:
    h = ShardHarness()
    h.shard.replay(records.OffsetRecord(codec.OffsetKey("gone", "orders", 0), offset_value(1)))
    h.shard.replay(records.OffsetRecord(codec.OffsetKey("gone", "orders", 0), None))
    h.shard.replay(records.GroupRecord(codec.GroupKey("g"), group_value(1, member_value("m1"))))
    h.shard.on_loaded()
    assert set(h.shard.groups) == {"g"}
    assert set(h.timer.ops) == {"heartbeat:g:m1"}
    h.advance(10)  # nobody heartbeats: the member expires and the group rebalances
    assert h.shard.groups["g"].state is S.EMPTY
    assert h.log[-1] == records.group_metadata(h.shard.groups["g"])


# --- operation -> records + response ----------------------------------------------------


def test_a_first_join_answers_member_id_required_and_writes_nothing() -> None:
    h = ShardHarness()
    result = h.shard.join(join_req())
    assert result.records == () and result.response == JoinResult(ErrorCode.member_id_required,
                                                                   member_id="c-1")
    assert h.shard.groups["g"].pending_members == {"c-1"}


def test_a_join_waits_for_the_rebalance_and_is_answered_by_a_completion() -> None:
    h = ShardHarness(delay_ms=3000)
    member_id = h.run(h.shard.join(join_req())).member_id
    result = h.shard.join(join_req(member_id))
    assert isinstance(result.response, Pending) and result.completions == ()
    h.run(result)
    assert h.shard.groups["g"].members[member_id].join_waiter == result.response.token
    h.advance(3)  # the initial delay
    answer = h.answers[result.response.token]
    assert (answer.error, answer.generation_id, answer.leader) == (ErrorCode.none, 1, member_id)
    assert h.shard.groups["g"].members[member_id].join_waiter is None


def test_the_leaders_sync_writes_the_assignment_and_stabilizes_after_the_write() -> None:
    h = ShardHarness()
    member_id = h.run(h.shard.join(join_req())).member_id
    h.run(h.shard.join(join_req(member_id)))
    result = h.shard.sync("g", 1, member_id, None, None, None, {member_id: b"A"})
    assert result.records == (records.group_metadata(h.shard.groups["g"]),)
    assert result.records[0].value is not None
    assert result.records[0].value.members[0].assignment == b"A"
    assert isinstance(result.response, Pending) and result.then is not None
    assert h.shard.groups["g"].state is S.COMPLETING_REBALANCE  # not before the write
    h.run(result)
    assert h.shard.groups["g"].state is S.STABLE
    assert h.answers[result.response.token].assignment == b"A"


def test_a_failed_assignment_write_fails_the_syncs_and_rebalances() -> None:
    h = ShardHarness()
    member_id = h.run(h.shard.join(join_req())).member_id
    h.run(h.shard.join(join_req(member_id)))
    h.fail_with = ErrorCode.coordinator_not_available
    response = h.run(h.shard.sync("g", 1, member_id, None, None, None, {member_id: b"A"}))
    assert h.answer(response) == SyncResult(ErrorCode.coordinator_not_available)
    assert h.shard.groups["g"].state is S.PREPARING_REBALANCE and h.log == []


def test_a_commit_writes_offset_records_and_answers_after_the_write() -> None:
    h = ShardHarness()
    result = h.shard.commit("simple", -1, "", None, [OffsetCommit("orders", 0, 42, 1, "m"),
                                                     OffsetCommit("nope", 0, 1, -1, None)])
    assert [r.key for r in result.records] == [codec.OffsetKey("simple", "orders", 0)]
    assert "simple" not in h.shard.groups  # the record makes the group, when replayed
    assert result.then is not None
    assert result.then(ErrorCode.coordinator_not_available).response == (
        ErrorCode.none, {("orders", 0): ErrorCode.coordinator_not_available,
                 ("nope", 0): ErrorCode.unknown_topic_or_partition})
    assert h.run(result) == (ErrorCode.none, {("orders", 0): ErrorCode.none,
                                      ("nope", 0): ErrorCode.unknown_topic_or_partition})
    assert h.shard.fetch("simple", None)[("orders", 0)].offset == 42


def test_a_commit_nothing_accepts_writes_nothing() -> None:
    h = ShardHarness()
    result = h.shard.commit("simple", -1, "", None, [OffsetCommit("nope", 0, 1, -1, None)])
    assert result.records == () and result.then is None
    assert result.response == (ErrorCode.none, {("nope", 0): ErrorCode.unknown_topic_or_partition})


def test_deleting_a_group_tombstones_its_offsets_and_metadata() -> None:
    h = ShardHarness()
    h.run(h.shard.commit("g", -1, "", None, [OffsetCommit("orders", 0, 1, -1, None)]))
    assert h.shard.delete_group("nope").response == ErrorCode.group_id_not_found
    result = h.shard.delete_group("g")
    assert result.records == (records.offset_tombstone("g", ("orders", 0)),
                              records.group_tombstone("g"))
    assert h.run(result) == ErrorCode.none and "g" not in h.shard.groups


def test_a_non_empty_group_cannot_be_deleted_and_keeps_its_state() -> None:
    h = ShardHarness()
    stable_pair(h)
    result = h.shard.delete_group("g")
    assert result.records == () and result.response == ErrorCode.non_empty_group


def test_expiry_tombstones_stale_offsets_of_empty_groups_only() -> None:
    h = ShardHarness()
    h.run(h.shard.commit("old", -1, "", None, [OffsetCommit("orders", 0, 1, -1, None)]))
    stable_pair(h)
    leader = h.shard.groups["g"].leader_id
    assert leader is not None
    h.run(h.shard.commit("g", 1, leader, None, [OffsetCommit("orders", 1, 1, -1, None)]))
    h.timer.now += h.config.offsets_retention_ms / 1000
    for member_id in list(h.shard.groups["g"].members):  # keep the live group alive
        h.run(h.shard.heartbeat("g", 1, member_id, None))
    result = h.shard.expire_offsets()
    assert result.response == 1
    assert result.records == (records.offset_tombstone("old", ("orders", 0)),
                              records.group_tombstone("old"))
    h.run(result)
    assert set(h.shard.groups) == {"g"}


def test_a_heartbeat_writes_nothing_and_keeps_the_member() -> None:
    h = ShardHarness()
    leader, _ = stable_pair(h)
    result = h.shard.heartbeat("g", 1, leader, None)
    assert result.records == () and result.response == ErrorCode.none
    assert h.shard.heartbeat("g", 0, leader, None).response == ErrorCode.illegal_generation


def test_an_empty_group_after_the_last_leave_is_written() -> None:
    h = ShardHarness()
    leader, follower = stable_pair(h)
    h.run(h.shard.leave("g", [(follower, None)]))
    result = h.shard.leave("g", [(leader, None)])
    assert result.response == (ErrorCode.none, [ErrorCode.none])
    assert result.records == (records.group_metadata(h.shard.groups["g"]),)
    assert h.shard.groups["g"].state is S.EMPTY and h.shard.groups["g"].generation_id == 2


# --- waiting requests ----------------------------------------------------------------------


def test_an_abandoned_join_no_longer_counts_as_joined() -> None:
    h = ShardHarness()
    leader, follower = stable_pair(h)
    rejoin = h.run(h.shard.join(join_req(leader)))  # the leader rejoins: a rebalance
    assert isinstance(rejoin, Pending)
    h.shard.abandon(rejoin.token)  # its connection closed
    assert not h.shard.groups["g"].members[leader].awaiting_join
    follower_rejoin = h.run(h.shard.join(join_req(follower)))
    assert h.answer(follower_rejoin) is None  # still waiting for the leader
    h.advance(10.5)  # not waiting, the leader expires with its session
    assert list(h.shard.groups["g"].members) == [follower]
    assert h.answer(follower_rejoin).generation_id == 2


def test_unloading_answers_every_waiting_request() -> None:
    h = ShardHarness(delay_ms=3000)
    member_id = h.run(h.shard.join(join_req())).member_id
    pending = h.run(h.shard.join(join_req(member_id)))
    result = h.shard.on_unloaded()
    assert result.completions == ((pending.token, JoinResult(ErrorCode.not_coordinator,
                                                             member_id=member_id)),)


def test_a_static_member_whose_replacement_cannot_be_written_keeps_its_old_incarnation() -> None:
    h = ShardHarness()
    first = h.run(h.shard.join(join_req(instance="i")))
    assert isinstance(first, Pending)
    old_id = h.answer(first).member_id
    h.run(h.shard.sync("g", 1, old_id, "i", None, None, {old_id: b"A"}))
    h.fail_with = ErrorCode.not_coordinator
    again = h.run(h.shard.join(join_req(instance="i")))
    assert again.error == ErrorCode.not_coordinator
    group = h.shard.groups["g"]
    assert list(group.members) == [old_id] and group.static_members == {"i": old_id}
    assert group.leader_id == old_id and f"heartbeat:g:{old_id}" in h.timer.ops

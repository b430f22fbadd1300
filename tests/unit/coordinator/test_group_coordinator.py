"""Group coordinator rules, driven without sockets and with a manual clock."""

from __future__ import annotations

import asyncio

import pytest
from kio.schema.errors import ErrorCode

from strom.coordinator.group.coordinator import OffsetCommit
from strom.coordinator.group.membership import JoinRequest
from strom.coordinator.group.model import GroupState

from .fakes import make_coordinator

pytestmark = pytest.mark.timeout(20)

PROTOCOLS = [("range", b"\x00\x01\x00\x00\x00\x01\x00\x06orders")]


def join_req(member_id: str = "", instance: str | None = None, session_ms: int = 10_000,
             protocols: list[tuple[str, bytes]] | None = None) -> JoinRequest:
    return JoinRequest("g", member_id, instance, "client", "/127.0.0.1", session_ms, 20_000,
                       "consumer", protocols or PROTOCOLS, require_known_member_id=True)


async def join_new(coordinator, **kwargs):
    first = await coordinator.join(join_req(**kwargs))
    if first.error == ErrorCode.member_id_required:
        return asyncio.ensure_future(coordinator.join(join_req(first.member_id, **{
            k: v for k, v in kwargs.items() if k != "member_id"})))
    return first


async def stable_group_of_two(coordinator, scheduler):
    a = await join_new(coordinator)
    b = await join_new(coordinator)
    await scheduler.advance(7)  # the initial delay, extended once for the second member
    ra, rb = await a, await b
    assert ra.error == rb.error == ErrorCode.none
    assert ra.generation_id == rb.generation_id == 1
    leader = ra if ra.member_id == ra.leader else rb
    follower = rb if leader is ra else ra
    assert len(leader.members) == 2 and follower.members == []
    sync_f = asyncio.ensure_future(coordinator.sync("g", 1, follower.member_id, None, None, None, {}))
    sync_l = await coordinator.sync("g", 1, leader.member_id, None, "consumer", "range",
                                    {leader.member_id: b"L", follower.member_id: b"F"})
    assert sync_l.assignment == b"L"
    assert (await sync_f).assignment == b"F"
    return leader, follower


async def test_first_join_requires_a_member_id():
    coordinator, _, _ = make_coordinator()
    result = await coordinator.join(join_req())
    assert result.error == ErrorCode.member_id_required and result.member_id.startswith("client-")


async def test_two_members_rebalance_and_get_their_assignments():
    coordinator, log, scheduler = make_coordinator(delay_ms=3000)
    await stable_group_of_two(coordinator, scheduler)
    assert coordinator.groups["g"].state is GroupState.STABLE
    assert log.partitions, "the assignment must be persisted"


async def test_session_timeout_expires_a_silent_member_and_rebalances():
    coordinator, _, scheduler = make_coordinator(delay_ms=3000)
    leader, follower = await stable_group_of_two(coordinator, scheduler)
    for _ in range(2):
        await scheduler.advance(4)
        assert coordinator.heartbeat("g", 1, leader.member_id, None) == ErrorCode.none
    await scheduler.advance(4)  # the follower's 10 s session has now passed
    group = coordinator.groups["g"]
    assert follower.member_id not in group.members
    assert group.state is GroupState.PREPARING_REBALANCE
    assert coordinator.heartbeat("g", 1, leader.member_id, None) == ErrorCode.rebalance_in_progress
    rejoin = await coordinator.join(join_req(leader.member_id))
    assert rejoin.generation_id == 2 and [m[0] for m in rejoin.members] == [leader.member_id]


async def test_generation_and_membership_fencing():
    coordinator, _, scheduler = make_coordinator(delay_ms=3000)
    leader, _ = await stable_group_of_two(coordinator, scheduler)
    assert coordinator.heartbeat("g", 0, leader.member_id, None) == ErrorCode.illegal_generation
    assert coordinator.heartbeat("g", 1, "stranger", None) == ErrorCode.unknown_member_id
    offset = OffsetCommit("orders", 0, 5, -1, "meta")

    async def commit(generation: int, member: str) -> str:
        _, results = await coordinator.commit("g", generation, member, None, [offset])
        return results[("orders", 0)]

    assert await commit(0, leader.member_id) == ErrorCode.illegal_generation
    assert await commit(1, "stranger") == ErrorCode.unknown_member_id
    assert await commit(1, leader.member_id) == ErrorCode.none


async def test_commit_validation_per_partition():
    coordinator, _, _ = make_coordinator()
    commits = [OffsetCommit("orders", 0, 1, 3, "m"), OffsetCommit("nope", 0, 1, -1, None),
               OffsetCommit("orders", 1, 1, -1, "x" * 5000)]
    _, results = await coordinator.commit("simple", -1, "", None, commits)
    assert results == {("orders", 0): ErrorCode.none, ("nope", 0): ErrorCode.unknown_topic_or_partition,
                       ("orders", 1): ErrorCode.offset_metadata_too_large}
    _, offsets = coordinator.fetch("simple", [("orders", [0, 1])])
    assert offsets[("orders", 0)].offset == 1 and offsets[("orders", 0)].leader_epoch == 3
    assert offsets[("orders", 0)].metadata == "m" and offsets[("orders", 1)] is None


async def test_state_survives_reload_from_the_log():
    coordinator, log, scheduler = make_coordinator(delay_ms=3000)
    leader, follower = await stable_group_of_two(coordinator, scheduler)
    await coordinator.commit("g", 1, leader.member_id, None, [OffsetCommit("orders", 2, 42, 1, "x")])
    reloaded, _, _ = make_coordinator(log=log)
    group = reloaded.groups["g"]
    assert group.state is GroupState.STABLE and group.generation_id == 1
    assert group.members[follower.member_id].assignment == b"F"
    assert reloaded.fetch("g", None)[1][("orders", 2)].offset == 42
    assert reloaded.heartbeat("g", 1, follower.member_id, None) == ErrorCode.none


async def test_static_member_rejoin_keeps_the_group_stable():
    coordinator, _, scheduler = make_coordinator(delay_ms=3000)
    a_future = asyncio.ensure_future(coordinator.join(join_req(instance="a")))
    b_future = asyncio.ensure_future(coordinator.join(join_req(instance="b")))
    await scheduler.advance(7)
    ra_gen, rb = await a_future, await b_future
    leader = ra_gen if ra_gen.member_id == ra_gen.leader else rb
    other = rb if leader is ra_gen else ra_gen
    sync_o = asyncio.ensure_future(coordinator.sync("g", 1, other.member_id, None, None, None, {}))
    await coordinator.sync("g", 1, leader.member_id, None, None, None,
                           {leader.member_id: b"1", other.member_id: b"2"})
    await sync_o
    instance = coordinator.groups["g"].members[other.member_id].group_instance_id
    again = await coordinator.join(join_req(instance=instance))
    group = coordinator.groups["g"]
    assert again.error == ErrorCode.none and again.generation_id == 1
    assert group.state is GroupState.STABLE
    assert group.members[again.member_id].assignment == b"2"
    assert coordinator.heartbeat("g", 1, other.member_id, instance) == ErrorCode.fenced_instance_id


async def test_initial_delay_collects_members_into_one_generation():
    coordinator, _, scheduler = make_coordinator(delay_ms=3000)
    a = await join_new(coordinator)
    await scheduler.advance(1)
    b = await join_new(coordinator)
    await scheduler.advance(1)
    assert not a.done() and not b.done()
    await scheduler.advance(5)
    ra, rb = await a, await b
    assert ra.generation_id == rb.generation_id == 1


async def test_delete_group_requires_empty():
    coordinator, _, scheduler = make_coordinator(delay_ms=3000)
    leader, follower = await stable_group_of_two(coordinator, scheduler)
    assert await coordinator.delete_group("g") == ErrorCode.non_empty_group
    await coordinator.leave("g", [(follower.member_id, None)])
    await coordinator.leave("g", [(leader.member_id, None)])
    await scheduler.advance(0)
    assert coordinator.groups["g"].state is GroupState.EMPTY
    assert await coordinator.delete_group("g") == ErrorCode.none
    assert await coordinator.delete_group("g") == ErrorCode.group_id_not_found


async def test_failed_persist_fails_sync_without_corrupting_state():
    coordinator, log, scheduler = make_coordinator()
    a = await join_new(coordinator)
    await scheduler.advance(0.1)
    ra = await a
    log.fail_with = ErrorCode.coordinator_not_available
    result = await coordinator.sync("g", 1, ra.member_id, None, None, None, {ra.member_id: b"x"})
    assert result.error == ErrorCode.coordinator_not_available
    assert coordinator.groups["g"].state is GroupState.PREPARING_REBALANCE


@pytest.mark.parametrize("session_ms", [10, 10_000_000])
async def test_session_timeout_bounds(session_ms):
    coordinator, _, _ = make_coordinator()
    result = await coordinator.join(join_req(session_ms=session_ms))
    assert result.error == ErrorCode.invalid_session_timeout

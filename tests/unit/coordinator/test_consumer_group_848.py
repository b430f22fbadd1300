"""KIP-848 consumer groups on the group shard, without sockets: the record formats, the
fold (a reload through the bytes rebuilds the same groups), the heartbeat state machine
(join, incremental reconciliation, leave, static leave, session timeout) and the
assignors."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from typing import Any

from kio.schema.errors import ErrorCode
from tests.unit.coordinator.fakes import FakeTimer, ShardHarness

from strom.coordinator.group import assignors
from strom.coordinator.group import records_848 as r848
from strom.coordinator.group.consumer_group import (
    HeartbeatRequest,
    HeartbeatResult,
    MemberState,
)
from strom.coordinator.group.offsets import OffsetCommit
from strom.coordinator.group.shard import GroupCoordinatorShard

ORDERS = uuid.UUID(int=7)
AUDIT = uuid.UUID(int=9)


class Harness(ShardHarness):
    """The shard harness with a topic view: orders (4 partitions), audit (2)."""

    def __init__(self) -> None:
        self.topic_view = {"orders": (ORDERS, 4), "audit": (AUDIT, 2)}
        self._member_ids = itertools.count(1)
        super().__init__()

    def new_shard(self, timer: FakeTimer | None = None) -> GroupCoordinatorShard:
        shard = GroupCoordinatorShard(0, self.config, timer or self.timer, self.clock,
                                      lambda topic, _: topic in self.topic_view,
                                      itertools.count(1), topics=lambda: self.topic_view)
        shard.consumer.mint_member_id = lambda: f"m{next(self._member_ids)}"
        return shard

    def beat(self, member_id: str = "", epoch: int = 0, owned: Any = None,
             topics: tuple[str, ...] | None = None, **kw: Any) -> HeartbeatResult:
        if epoch == 0 and topics is None:
            topics = ("orders",)
        response = self.run(self.shard.consumer_heartbeat(HeartbeatRequest(
            "g", member_id, epoch, rebalance_timeout_ms=30_000, subscribed_topics=topics,
            owned=owned, **kw)))
        assert isinstance(response, HeartbeatResult)
        return response


def _parts(assignment: Any) -> set[int]:
    return set(assignment.get(ORDERS, frozenset())) if assignment is not None else set()


def _no_partition_twice(h: Harness) -> None:
    held: list[tuple[uuid.UUID, int]] = []
    for member in h.shard.consumer.groups["g"].members.values():
        for assignment in (member.assigned, member.pending_revocation):
            held += [(t, p) for t, ps in assignment.items() for p in ps]
    assert len(held) == len(set(held))


def test_records_round_trip_in_kafka_layout() -> None:
    samples = [
        r848.ConsumerRecord(r848.GROUP_METADATA, "g", None, r848.GroupMetadataValue(3)),
        r848.ConsumerRecord(r848.MEMBER_METADATA, "g", "m", r848.MemberMetadataValue(
            "i", None, "c", "/h", ("a", "b"), None, 30_000, "uniform")),
        r848.ConsumerRecord(r848.TARGET_METADATA, "g", None, r848.TargetMetadataValue(3)),
        r848.ConsumerRecord(r848.TARGET_MEMBER, "g", "m",
                            r848.TargetMemberValue({ORDERS: frozenset({0, 2})})),
        r848.ConsumerRecord(r848.CURRENT_ASSIGNMENT, "g", "m", r848.CurrentAssignmentValue(
            3, 2, 1, {ORDERS: frozenset({0})}, {AUDIT: frozenset({1})})),
        r848.ConsumerRecord(r848.CURRENT_ASSIGNMENT, "g", "m", None),
        r848.ConsumerRecord(r848.REGEX, "g", "aud.*",
                            r848.RegexValue(("audit", "auditlog"), 7, 1_700_000_000_000)),
        r848.ConsumerRecord(r848.REGEX, "g", "aud.*", None),
    ]
    for record in samples:
        key, value = r848.serialize(record)
        assert int.from_bytes(key[:2], "big") == record.type
        assert r848.decode(key, value) == record
    key, value = r848.serialize(samples[0])
    assert key == b"\x00\x03\x00\x01g"
    assert value == b"\x00\x00" + (3).to_bytes(4, "big") + b"\x00"  # version 0, no tags
    key, value = r848.serialize(samples[-2])  # type 16: group and regex; topics, version, time
    assert key == b"\x00\x10\x00\x01g\x00\x05aud.*"
    assert value == (b"\x00\x00\x03\x06audit\x09auditlog" + (7).to_bytes(8, "big")
                     + (1_700_000_000_000).to_bytes(8, "big") + b"\x00")


def test_metadata_hash_tag_written_by_kafka_is_read() -> None:
    value = b"\x00\x00" + (5).to_bytes(4, "big") + b"\x01\x00\x08" + (42).to_bytes(8, "big")
    record = r848.decode(b"\x00\x03\x00\x01g", value)
    assert record.value == r848.GroupMetadataValue(5, 42)


def test_first_member_gets_everything_at_epoch_one() -> None:
    h = Harness()
    first = h.beat()
    assert first.error == ErrorCode.none
    assert (first.member_id, first.member_epoch, _parts(first.assignment)) == ("m1", 1, {0, 1, 2, 3})
    assert h.shard.consumer.groups["g"].state == "Stable"
    current = [r for r in h.log if isinstance(r, r848.ConsumerRecord)
               and r.type == r848.CURRENT_ASSIGNMENT][-1]
    _, value = r848.serialize(current)
    assert value is not None and value[10] == 0  # Kafka's MemberState.STABLE byte
    again = h.beat("m1", 1)
    assert again.member_epoch == 1 and again.assignment is None  # nothing changed


def test_partitions_move_only_after_the_previous_owner_revoked_them() -> None:
    h = Harness()
    h.beat()
    second = h.beat()
    assert (second.member_id, second.member_epoch, _parts(second.assignment)) == ("m2", 2, set())
    group = h.shard.consumer.groups["g"]
    assert group.members["m2"].state == MemberState.UNRELEASED_PARTITIONS
    # m1 learns to revoke two partitions, keeping its epoch until it has.
    revoke = h.beat("m1", 1)
    kept = _parts(revoke.assignment)
    assert revoke.member_epoch == 1 and len(kept) == 2
    _no_partition_twice(h)
    assert _parts(h.beat("m2", 2).assignment) == set()  # still held by m1
    done = h.beat("m1", 1, owned={ORDERS: frozenset(kept)})
    assert done.member_epoch == 2
    got = h.beat("m2", 2)
    assert _parts(got.assignment) == {0, 1, 2, 3} - kept
    _no_partition_twice(h)
    assert group.state == "Stable"


def test_leave_hands_partitions_to_the_rest() -> None:
    h = Harness()
    h.beat()
    h.beat()
    kept = _parts(h.beat("m1", 1).assignment)
    h.beat("m1", 1, owned={ORDERS: frozenset(kept)})
    h.beat("m2", 2)
    left = h.beat("m2", -1, topics=None)
    assert (left.error, left.member_epoch) == (ErrorCode.none, -1)
    back = h.beat("m1", 2)
    assert (back.member_epoch, _parts(back.assignment)) == (3, {0, 1, 2, 3})


def test_session_timeout_removes_a_silent_member() -> None:
    h = Harness()
    h.beat()
    h.beat()
    h.advance(30)
    h.beat("m2", 2)  # m2 keeps heartbeating, m1 does not
    h.advance(20)
    group = h.shard.consumer.groups["g"]
    assert set(group.members) == {"m2"}
    assert _parts(h.beat("m2", 2).assignment) == {0, 1, 2, 3}


def test_fencing_and_unknown_members() -> None:
    h = Harness()
    h.beat()
    assert h.beat("m1", 7).error == ErrorCode.fenced_member_epoch
    assert h.beat("nobody", 1).error == ErrorCode.unknown_member_id
    assert h.beat(topics=()).error == ErrorCode.invalid_request
    assert h.beat(server_assignor="sticky").error == ErrorCode.unsupported_assignor


def test_static_member_comes_back_with_its_partitions() -> None:
    h = Harness()
    h.beat(instance_id="pod-1")
    h.beat("m1", -2, topics=None, instance_id="pod-1")
    assert h.beat(instance_id="pod-1").error == ErrorCode.none  # m2 replaces m1
    group = h.shard.consumer.groups["g"]
    assert set(group.members) == {"m2"}
    assert _parts(group.members["m2"].assigned) == {0, 1, 2, 3}
    assert group.epoch == 1  # no rebalance
    other = h.beat(instance_id="pod-2")
    assert other.error == ErrorCode.none
    assert h.beat(instance_id="pod-2").error == ErrorCode.unreleased_instance_id


def test_new_partitions_are_noticed() -> None:
    h = Harness()
    h.beat()
    h.topic_view["orders"] = (ORDERS, 6)
    grown = h.beat("m1", 1)
    assert (grown.member_epoch, _parts(grown.assignment)) == (2, set(range(6)))


def test_reload_through_the_bytes_rebuilds_the_groups() -> None:
    h = Harness()
    h.beat()
    h.beat(topics=("orders", "audit"))
    h.beat("m1", 1)
    before = h.shard.consumer.groups["g"]
    after = h.reload().consumer.groups["g"]
    assert (after.epoch, after.assignment_epoch, after.target) == (
        before.epoch, before.assignment_epoch, before.target)
    assert after.members == before.members


def test_an_unknown_group_is_not_found_as_kafka_answers() -> None:
    """Kafka 4.4 (asked directly): GROUP_ID_NOT_FOUND, "Consumer group g not found." for a
    heartbeat, "Group g not found." for a leave; an unknown member of a known group is
    UNKNOWN_MEMBER_ID with neither id nor epoch in the answer."""
    h = Harness()
    beat = h.beat("m1", 5)
    assert (beat.error, beat.message) == (ErrorCode.group_id_not_found,
                                          "Consumer group g not found.")
    leave = h.beat("m1", -1)
    assert (leave.error, leave.message) == (ErrorCode.group_id_not_found, "Group g not found.")
    h.beat()
    leave = h.beat("zzzz", -1)
    assert (leave.error, leave.message, leave.member_id, leave.member_epoch) == (
        ErrorCode.unknown_member_id, "Member zzzz is not a member of group g.", None, 0)


def test_a_groups_own_session_timeout_and_heartbeat_interval_apply() -> None:
    """Group configs (`consumer.session.timeout.ms`, `consumer.heartbeat.interval.ms`)
    read on every heartbeat: a change reaches a live member at its next heartbeat."""
    h = Harness()
    timeouts = {"g": (50_000, 7_000)}
    h.shard.consumer.config = replace(h.shard.consumer.config,
                                      per_group=lambda g: timeouts.get(g, (45_000, 5_000)))
    joined = h.beat()
    assert joined.heartbeat_interval_ms == 7_000
    assert h.timer.ops["consumer-session/g/m1"][0] == 50.0
    timeouts["g"] = (46_000, 6_000)
    assert h.beat("m1", 1).heartbeat_interval_ms == 6_000
    assert h.timer.ops["consumer-session/g/m1"][0] == 46.0


def test_offset_commit_checks_the_member_epoch() -> None:
    h = Harness()
    h.beat()
    commit = [OffsetCommit("orders", 0, 5, -1, "")]
    error, _ = h.run(h.shard.commit("g", 0, "m1", None, commit))
    assert error == ErrorCode.stale_member_epoch
    error, _ = h.run(h.shard.commit("g", 1, "ghost", None, commit))
    assert error == ErrorCode.unknown_member_id
    error, per = h.run(h.shard.commit("g", 1, "m1", None, commit))
    assert error == ErrorCode.none and set(per.values()) == {ErrorCode.none}
    assert h.shard.fetch("g", None)[("orders", 0)].offset == 5


def test_classic_join_refused_on_a_consumer_group() -> None:
    from strom.coordinator.group.membership import JoinRequest

    h = Harness()
    h.beat()
    result = h.run(h.shard.join(JoinRequest("g", "", None, "c", "/h", 10_000, 10_000,
                                            "consumer", [("range", b"")], True)))
    assert result.error == ErrorCode.inconsistent_group_protocol


def test_uniform_is_balanced_and_sticky() -> None:
    subs = {m: frozenset({ORDERS}) for m in ("a", "b", "c")}
    first = assignors.uniform(subs, {ORDERS: 7}, {})
    sizes = sorted(len(a[ORDERS]) for a in first.values())
    assert sizes == [2, 2, 3]
    subs["d"] = frozenset({ORDERS})
    second = assignors.uniform(subs, {ORDERS: 7}, first)
    assert sorted(len(a.get(ORDERS, ())) for a in second.values()) == [1, 2, 2, 2]
    for member in ("a", "b", "c"):  # nobody lost more than it had to
        assert len(second[member][ORDERS] & first[member][ORDERS]) >= 1


def test_range_gives_consecutive_ranges() -> None:
    subs = {"a": frozenset({ORDERS}), "b": frozenset({ORDERS})}
    out = assignors.range_(subs, {ORDERS: 5}, {})
    assert out["a"][ORDERS] == {0, 1, 2} and out["b"][ORDERS] == {3, 4}


def test_offsets_of_a_group_with_members_do_not_expire() -> None:
    h = Harness()
    h.beat()
    h.run(h.shard.commit("g", 1, "m1", None, [OffsetCommit("orders", 0, 5, -1, "")]))
    h.run(h.shard.commit("solo", -1, "", None, [OffsetCommit("orders", 0, 3, -1, "")]))
    h.timer.now += h.config.offsets_retention_ms / 1000 + 1
    assert h.run(h.shard.expire_offsets()) == 1  # the simple group's only
    assert h.shard.fetch("g", None)[("orders", 0)].offset == 5


def test_a_regex_subscription_follows_the_topics() -> None:
    h = Harness()
    first = h.beat(topics=(), subscribed_regex="aud.*")
    assert set(first.assignment or {}) == {AUDIT}
    h.topic_view["auditlog"] = (uuid.UUID(int=11), 1)
    grown = h.beat("m1", 1)
    assert set(grown.assignment or {}) == {AUDIT, uuid.UUID(int=11)}
    assert h.beat(topics=(), subscribed_regex="(").error == ErrorCode.invalid_regular_expression


def test_resolved_regexes_are_records_folded_and_dropped() -> None:
    """Kafka's record 16: what a regex matched is written, rebuilt by a load (the new
    coordinator assigns from it), and tombstoned once no member subscribes with it."""
    h = Harness()
    h.beat(topics=(), subscribed_regex="aud.*")
    h.topic_view["auditlog"] = (uuid.UUID(int=11), 1)
    h.beat("m1", 1)
    assert h.shard.consumer.groups["g"].regexes == {"aud.*": ("audit", "auditlog")}
    reloaded = h.reload().consumer.groups["g"]
    assert reloaded.regexes == {"aud.*": ("audit", "auditlog")}
    h.beat("m1", -1, topics=None)
    assert h.shard.consumer.groups["g"].regexes == {}
    assert h.reload().consumer.groups["g"].regexes == {}


def test_offset_fetch_of_a_member_checks_its_epoch() -> None:
    h = Harness()
    h.beat()
    consumer = h.shard.consumer
    assert consumer.fetch_error("g", "m1", 1) == ErrorCode.none
    assert consumer.fetch_error("g", "m1", 0) == ErrorCode.stale_member_epoch
    assert consumer.fetch_error("g", "ghost", 1) == ErrorCode.unknown_member_id
    assert consumer.fetch_error("g", "", -1) == ErrorCode.none  # an admin tool
    assert consumer.fetch_error("classic", "x", 3) == ErrorCode.none


def test_delete_and_list_know_consumer_groups() -> None:
    h = Harness()
    h.beat()
    h.run(h.shard.commit("g", 1, "m1", None, [OffsetCommit("orders", 0, 5, -1, "")]))
    assert [g.group_id for g in h.shard.consumer.listed({"stable"})] == ["g"]
    assert all(g.group_id != "g" for g in h.shard.list_groups(set()))  # not twice
    assert h.run(h.shard.delete_group("g")) == ErrorCode.non_empty_group
    h.beat("m1", -1, topics=None)
    assert [g.state for g in h.shard.consumer.listed(set())] == ["Empty"]
    assert h.run(h.shard.delete_group("g")) == ErrorCode.none
    assert "g" not in h.shard.consumer.groups and h.shard.fetch("g", None) == {}
    assert "g" not in h.reload().consumer.groups
    assert h.run(h.shard.delete_group("g")) == ErrorCode.group_id_not_found


def test_a_member_that_does_not_revoke_in_time_is_removed() -> None:
    h = Harness()
    h.beat()
    h.beat()
    h.beat("m1", 1)  # told to revoke two partitions
    group = h.shard.consumer.groups["g"]
    assert group.members["m1"].state == MemberState.UNREVOKED_PARTITIONS
    for _ in range(4):  # both keep heartbeating; m1 never confirms the revocation
        h.advance(10)
        h.beat("m1", 1)
        h.beat("m2", 2)
    assert set(group.members) == {"m2"}
    assert _parts(group.members["m2"].assigned) == {0, 1, 2, 3}


def test_session_timers_start_again_after_a_load() -> None:
    h = Harness()
    h.beat()
    h.shard = h.reload()
    h.timer = h.shard.consumer.timer  # type: ignore[assignment]
    h.advance(46)
    assert not h.shard.consumer.groups["g"].members


def test_describe_groups_does_not_show_a_consumer_group() -> None:
    h = Harness()
    h.beat()
    h.run(h.shard.commit("g", 1, "m1", None, [OffsetCommit("orders", 0, 5, -1, "")]))
    assert h.shard.describe("g") is None


def test_empty_groups_change_protocol_as_kafka_converts_them() -> None:
    from strom.coordinator.group.membership import JoinRequest

    h = Harness()
    h.beat()
    h.run(h.shard.commit("g", 1, "m1", None, [OffsetCommit("orders", 0, 5, -1, "")]))
    h.beat("m1", -1, topics=None)
    pending = h.run(h.shard.join(JoinRequest("g", "", None, "c", "/h", 10_000, 10_000,
                                             "consumer", [("range", b"")], False)))
    h.advance(1)
    classic = h.answer(pending)
    assert classic.error == ErrorCode.none
    assert "g" not in h.shard.consumer.groups and h.shard.describe("g") is not None
    assert h.shard.fetch("g", None)[("orders", 0)].offset == 5
    assert "g" not in h.reload().consumer.groups
    h.run(h.shard.leave("g", [(classic.member_id, None)]))
    back = h.beat()
    assert back.error == ErrorCode.none and h.shard.consumer.groups["g"].members
    assert h.shard.describe("g") is None  # the classic metadata went
    assert h.reload().describe("g") is None
    assert h.shard.fetch("g", None)[("orders", 0)].offset == 5


def test_members_choose_the_range_assignor() -> None:
    h = Harness()
    h.topic_view["orders"] = (ORDERS, 5)
    h.beat(server_assignor="range")
    h.beat(server_assignor="range")
    group = h.shard.consumer.groups["g"]
    assert group.assignor("uniform") == "range"
    assert group.target == {"m1": {ORDERS: frozenset({0, 1, 2})},
                            "m2": {ORDERS: frozenset({3, 4})}}

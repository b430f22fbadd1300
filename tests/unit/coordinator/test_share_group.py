"""Share group membership (KIP-932) on a coordinator shard, without sockets."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from strom.coordinator.share import records
from strom.coordinator.share.group import ShareGroups, ShareHeartbeat, simple_assign

TOPIC = uuid.uuid4()


class Timer:
    def __init__(self) -> None:
        self.scheduled: dict[str, Callable[[], Any]] = {}

    def schedule(self, key: str, delay_s: float, operation: Callable[[], Any]) -> None:
        self.scheduled[key] = operation

    def cancel(self, key: str) -> None:
        self.scheduled.pop(key, None)

    def time(self) -> float:
        return 0.0


def beat(groups: ShareGroups, member: str, epoch: int, topics: tuple[str, ...] | None = ("t",)
         ) -> Any:
    return groups.heartbeat(ShareHeartbeat("g", member, epoch, subscribed_topics=topics)).response


def test_members_join_and_share_a_single_partition() -> None:
    groups = ShareGroups(Timer(), lambda: {"t": (TOPIC, 1)})
    a = beat(groups, "a", 0)
    assert a.error == ErrorCode.none and a.member_epoch == 1 and a.assignment == {TOPIC: {0}}
    b = beat(groups, "b", 0)
    assert b.member_epoch == 2 and b.assignment == {TOPIC: {0}}  # both consume partition 0
    assert beat(groups, "a", 1, None).member_epoch == 2
    assert groups.groups["g"].state == "Stable"


def test_fencing_unknown_members_and_leaving() -> None:
    timer = Timer()
    groups = ShareGroups(timer, lambda: {"t": (TOPIC, 2)})
    beat(groups, "a", 0)
    assert beat(groups, "a", 7, None).error == ErrorCode.fenced_member_epoch
    assert beat(groups, "x", 1, None).error == ErrorCode.unknown_member_id
    assert beat(groups, "a", 0, None).error == ErrorCode.invalid_request
    assert beat(groups, "a", -1, None).member_epoch == -1
    assert groups.groups["g"].state == "Empty" and not timer.scheduled
    assert groups.delete("g").response == ErrorCode.none


def test_a_member_that_stops_heartbeating_is_removed() -> None:
    timer = Timer()
    groups = ShareGroups(timer, lambda: {"t": (TOPIC, 2)})
    beat(groups, "a", 0)
    beat(groups, "b", 0)
    timer.scheduled.pop("share-session-g-b")()
    assert set(groups.groups["g"].members) == {"a"}
    assert groups.delete("g").response == ErrorCode.non_empty_group


def test_the_simple_assignor_spreads_partitions_or_shares_them() -> None:
    parts = [(TOPIC, p) for p in range(4)]
    spread = simple_assign(["a", "b"], parts)
    assert spread == {"a": {TOPIC: frozenset({0, 2})}, "b": {TOPIC: frozenset({1, 3})}}
    shared = simple_assign(["a", "b", "c"], parts[:2])
    assert shared == {"a": {TOPIC: frozenset({0})}, "b": {TOPIC: frozenset({1})},
                      "c": {TOPIC: frozenset({0})}}


def test_the_records_written_fold_back_into_the_same_groups() -> None:
    """What a coordinator that loads the partition sees: `replay` of every record the
    operations wrote, through their bytes, gives the same groups, members and epochs."""
    live = ShareGroups(Timer(), lambda: {"t": (TOPIC, 3)})
    written: list[Any] = []
    for member, epoch in (("a", 0), ("b", 0), ("c", 0), ("a", 3), ("c", -1)):
        written += live.heartbeat(ShareHeartbeat("g", member, epoch, subscribed_topics=(
            ("t",) if epoch == 0 else None), client_id=f"client-{member}")).records
    loaded = ShareGroups(Timer(), lambda: {"t": (TOPIC, 3)})
    for record in written:
        loaded.replay(records.decode(*records.serialize(record)))
    (group,) = loaded.groups.values()
    assert (group.epoch, group.assignment_epoch) == (live.groups["g"].epoch,
                                                     live.groups["g"].assignment_epoch)
    assert {m: (x.member_epoch, x.assigned, x.client_id, x.subscribed_topics)
            for m, x in group.members.items()} == {
        m: (x.member_epoch, x.assigned, x.client_id, x.subscribed_topics)
        for m, x in live.groups["g"].members.items()}
    done = live.delete("g")
    assert done.response == ErrorCode.non_empty_group


def test_share_group_record_bytes_follow_kafkas_layout() -> None:
    key, value = records.serialize(records.ShareRecord(
        records.GROUP_METADATA, "g", None, records.GroupMetadataValue(7, 9)))
    assert key == b"\x00\x0b\x00\x01g"
    assert value == b"\x00\x00" + (7).to_bytes(4, "big") + (9).to_bytes(8, "big") + b"\x00"
    member = records.ShareRecord(records.MEMBER_METADATA, "g", "m", records.MemberMetadataValue(
        None, "c", "/h", ("t",)))
    key, value = records.serialize(member)
    assert key == b"\x00\x0a\x00\x01g\x00\x01m"
    assert value == b"\x00\x00" + b"\x00" + b"\x02c" + b"\x03/h" + b"\x02\x02t" + b"\x00"
    assert records.decode(key, value) == member


def test_leaving_and_timed_out_members_are_reported() -> None:
    timer = Timer()
    groups = ShareGroups(timer, lambda: {"t": (TOPIC, 1)})
    removed: list[tuple[str, str]] = []
    groups.on_removed = lambda g, m: removed.append((g, m))
    beat(groups, "a", 0)
    beat(groups, "b", 0)
    beat(groups, "a", -1, None)
    timer.scheduled.pop("share-session-g-b")()
    assert removed == [("g", "a"), ("g", "b")]

"""Mixed groups (KIP-848 migration, `group.consumer.migration.policy` bidirectional):
the sequence below is what a Kafka 4.4 broker answered to the same requests.

A classic group of one member owning both partitions of `orders` is upgraded when a
consumer-protocol member joins: the group epoch moves past the classic generation, the
new member gets nothing until the classic member gives a partition up. The classic
member's Heartbeat is REBALANCE_IN_PROGRESS; its rejoin (still owning both) keeps its
generation and its SyncGroup hands it one partition; its next rejoin (owning only that
one) moves it to the new epoch. When the consumer-protocol member leaves, the group goes
back to the classic protocol, rebalancing, and the classic member is told to rejoin.
"""

from __future__ import annotations

import struct

from kio.schema.errors import ErrorCode
from tests.unit.coordinator.test_consumer_group_848 import Harness

from strom.coordinator.group import records_848 as r848
from strom.coordinator.group.consumer_protocol import read_assignment
from strom.coordinator.group.membership import JoinRequest
from strom.coordinator.group.model import GroupState, JoinResult


def subscription(owned: list[int] | None) -> bytes:
    """ConsumerProtocolSubscription of `orders`: v0 without owned partitions, else v1."""
    data = struct.pack(">hih", 0 if owned is None else 1, 1, 6) + b"orders" + struct.pack(">i", -1)
    if owned is not None:
        data += struct.pack(">ih", 1, 6) + b"orders" + struct.pack(">i", len(owned))
        data += b"".join(struct.pack(">i", p) for p in owned)
    return data


def assignment(parts: list[int]) -> bytes:
    return (struct.pack(">hih", 0, 1, 6) + b"orders" + struct.pack(">i", len(parts))
            + b"".join(struct.pack(">i", p) for p in parts) + struct.pack(">i", -1))


def join(h: Harness, member_id: str, owned: list[int] | None = None) -> JoinResult:
    result = h.run(h.shard.join(JoinRequest(
        "g", member_id, None, "classic", "/h", 30_000, 30_000, "consumer",
        [("range", subscription(owned)), ("roundrobin", subscription(owned))],
        require_known_member_id=True)))
    answered = h.answer(result)
    assert isinstance(answered, JoinResult)
    return answered


def classic_member(h: Harness) -> tuple[str, int]:
    """One classic member owning orders-0..3 at generation 1."""
    member_id = join(h, "").member_id
    joined = join(h, member_id)
    assert (joined.error, joined.generation_id) == (ErrorCode.none, 1)
    h.run(h.shard.sync("g", 1, member_id, None, "consumer", "range",
                       {member_id: assignment([0, 1, 2, 3])}))
    return member_id, 1


def test_upgrade_reconcile_and_downgrade_as_kafka() -> None:
    h = Harness()
    classic, generation = classic_member(h)
    new = h.beat(topics=("orders",))  # a consumer-protocol member joins the classic group
    assert new.error == ErrorCode.none and new.member_epoch == 2
    assert not new.assignment  # everything is still the classic member's
    group = h.shard.consumer.groups["g"]
    assert group.members[classic].member_epoch == generation
    assert group.members[classic].classic is not None
    assert "g" not in h.shard.groups  # the classic group's metadata is gone
    assert h.run(h.shard.heartbeat("g", 1, classic, None)) == ErrorCode.rebalance_in_progress
    rejoined = join(h, classic, owned=[0, 1, 2, 3])  # still owns everything
    assert (rejoined.generation_id, rejoined.protocol_type, rejoined.protocol_name,
            rejoined.leader, rejoined.members) == (1, "consumer", "range", "", [])
    synced = h.answer(h.run(h.shard.sync("g", 1, classic, None, "consumer", "range", {})))
    kept = read_assignment(synced.assignment)["orders"]
    assert synced.assignment[:2] == b"\x00\x01" and len(kept) == 2  # version 1, half of it
    assert h.run(h.shard.heartbeat("g", 1, classic, None)) == ErrorCode.rebalance_in_progress
    moved = join(h, classic, owned=sorted(kept))
    assert moved.generation_id == 2
    assert h.run(h.shard.heartbeat("g", 2, classic, None)) == ErrorCode.none
    consumer = h.beat(new.member_id, 2)
    assert {p for ps in (consumer.assignment or {}).values() for p in ps} == {0, 1, 2, 3} - kept
    reloaded = h.reload().consumer.groups["g"]  # the classic member's metadata: tag 0
    assert reloaded.members[classic].classic == group.members[classic].classic
    left = h.beat(new.member_id, -1, topics=None)
    assert left.error == ErrorCode.none
    assert "g" not in h.shard.consumer.groups
    downgraded = h.shard.groups["g"]
    assert downgraded.state == GroupState.PREPARING_REBALANCE
    assert set(downgraded.members) == {classic}
    assert h.run(h.shard.heartbeat("g", 2, classic, None)) == ErrorCode.rebalance_in_progress


def test_the_records_of_an_upgrade_rebuild_the_group() -> None:
    h = Harness()
    classic, _ = classic_member(h)
    h.beat(topics=("orders",))
    kinds = [r.type for r in h.log if isinstance(r, r848.ConsumerRecord)]
    assert r848.MEMBER_METADATA in kinds and r848.CURRENT_ASSIGNMENT in kinds
    again = h.reload()
    assert set(again.consumer.groups["g"].members) == set(h.shard.consumer.groups["g"].members)
    assert classic in again.consumer.groups["g"].members
    assert again.groups.get("g") is None or not again.groups["g"].members


def test_a_classic_members_metadata_is_written_byte_for_byte_as_kafka() -> None:
    """Tag 0 of record 5, a nullable struct; the bytes are what Kafka 4.4's own
    ConsumerGroupMemberMetadataValue writes for the same value."""
    value = r848.MemberMetadataValue("i", None, "c", "/h", ("a",), "", 30000, "",
                                     r848.ClassicMetadata(45000, (("range", b"\x00\x01xyz"),
                                                                  ("rr", b""))))
    record = r848.ConsumerRecord(r848.MEMBER_METADATA, "g", "m", value)
    key, data = r848.serialize(record)
    assert data is not None and data.hex() == (
        "00000269000263032f68020261010000753001010019010000afc8030672616e6765060001"
        "78797a00037272010000")
    assert r848.decode(key, data) == record


def test_the_migration_policy_can_forbid_the_upgrade() -> None:
    """group.consumer.migration.policy=disabled (or downgrade): a consumer-protocol member
    is refused by a classic group with members, which stays as it is."""
    from dataclasses import replace

    h = Harness()
    h.shard.consumer.config = replace(h.shard.consumer.config, migration_policy="downgrade")
    classic, _ = classic_member(h)
    refused = h.beat(topics=("orders",))
    assert refused.error == ErrorCode.group_id_not_found
    assert "g" not in h.shard.consumer.groups and classic in h.shard.groups["g"].members

"""Elections and reassignments an admin asks for (ElectLeaders, AlterPartitionReassignments):
the decisions `strom.cluster` makes, checked without a broker or a store."""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from strom.cluster import reassignment
from strom.cluster.controller import ElectionType, elect_requested, requested_election
from strom.cluster.image import PartitionInfo, TopicInfo

PREFERRED, UNCLEAN = ElectionType.PREFERRED, ElectionType.UNCLEAN


def part(leader: int, isr: tuple[int, ...], replicas: tuple[int, ...] = (1, 2, 3),
         index: int = 0) -> PartitionInfo:
    return PartitionInfo(index, leader=leader, leader_epoch=5, replicas=replicas, isr=isr,
                         partition_epoch=9)


def topic(*partitions: PartitionInfo) -> TopicInfo:
    return TopicInfo("t", uuid.uuid4(), {p.partition: p for p in partitions})


def test_preferred_election_moves_leadership_to_the_first_replica_with_a_new_epoch() -> None:
    new, error = requested_election(part(2, (1, 2, 3)), PREFERRED, {1, 2, 3})
    assert error == ErrorCode.none
    assert new is not None and (new.leader, new.leader_epoch, new.partition_epoch) == (1, 6, 10)


def test_preferred_election_is_not_needed_when_the_preferred_replica_leads() -> None:
    assert requested_election(part(1, (1, 2)), PREFERRED, {1, 2}) == (
        None, ErrorCode.election_not_needed)


def test_preferred_election_refuses_a_preferred_replica_that_is_dead_or_out_of_sync() -> None:
    expected = (None, ErrorCode.preferred_leader_not_available)
    assert requested_election(part(2, (1, 2)), PREFERRED, {2, 3}) == expected
    assert requested_election(part(2, (2, 3)), PREFERRED, {1, 2, 3}) == expected


def test_unclean_election_is_not_needed_while_the_leader_lives() -> None:
    assert requested_election(part(2, (2,)), UNCLEAN, {2, 3}) == (
        None, ErrorCode.election_not_needed)


def test_unclean_election_takes_a_live_replica_outside_the_isr() -> None:
    new, error = requested_election(part(1, (1,)), UNCLEAN, {3})
    assert error == ErrorCode.none
    assert new is not None and (new.leader, new.isr, new.leader_epoch) == (3, (3,), 6)


def test_unclean_election_with_no_live_replica_has_no_eligible_leader() -> None:
    new, error = requested_election(part(1, (1,)), UNCLEAN, {7})
    assert error == ErrorCode.eligible_leaders_not_available
    assert new is not None and new.leader == -1  # marked offline, as the controller would


def test_elect_requested_answers_each_partition_and_writes_only_changes() -> None:
    t = topic(part(2, (1, 2, 3), index=0), part(1, (1, 2, 3), index=1))
    updated, outcome = elect_requested(t, [0, 1, 9], PREFERRED, {1, 2, 3})
    assert outcome == {0: ErrorCode.none, 1: ErrorCode.election_not_needed,
                       9: ErrorCode.unknown_topic_or_partition}
    assert updated is not None and updated.partitions[0].leader == 1
    assert updated.partitions[1] is t.partitions[1]
    assert elect_requested(t, [1], PREFERRED, {1, 2, 3}) == (
        None, {1: ErrorCode.election_not_needed})


def test_alter_starts_and_cancels_reassignments_and_reports_refusals() -> None:
    moving = reassignment.start(part(1, (1, 2, 3), index=1), (1, 2, 4), {1, 2, 3, 4})
    t = topic(part(1, (1, 2, 3), index=0), moving)
    updated, outcome = reassignment.alter(
        t, {0: (2, 3, 4), 1: None, 2: (1,)}, {1, 2, 3, 4})
    assert outcome[0] == (ErrorCode.none, None)
    assert outcome[1] == (ErrorCode.none, None)
    assert outcome[2] == (ErrorCode.unknown_topic_or_partition, None)
    assert updated is not None
    assert (updated.partitions[0].adding, updated.partitions[0].removing) == ((4,), (1,))
    assert updated.partitions[1].replicas == (1, 2, 3) and not updated.partitions[1].reassigning


def test_alter_refuses_dead_targets_and_cancelling_nothing_without_writing() -> None:
    t = topic(part(1, (1, 2, 3), index=0), part(1, (1, 2, 3), index=1))
    updated, outcome = reassignment.alter(t, {0: (1, 9), 1: None}, {1, 2, 3})
    assert updated is None
    assert outcome[0][0] == ErrorCode.invalid_replica_assignment
    assert outcome[1][0] == ErrorCode.no_reassignment_in_progress
    assert all(message for _, message in outcome.values())

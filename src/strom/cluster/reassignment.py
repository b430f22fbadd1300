"""Moving replicas (AlterPartitionReassignments), as Kafka's controller does it.

A reassignment from replicas O to target T first *adds*: the replica set becomes
T + (O - T), with `adding` = T - O and `removing` = O - T. The new replicas create
their logs and follow the leader. Once every added replica is in the ISR, the
controller *completes* it: replicas = T, ISR = ISR ∩ T, and if the leader is being
removed, leadership moves to the first in-sync replica of T (a new leader epoch).
Cancelling reverts to O. Nothing is removed before its replacement is in sync, so the
replication factor never dips below min(|O|, |T|) during the move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from kio.schema.errors import ErrorCode

from strom.cluster.image import PartitionInfo, TopicInfo


class ReassignmentError(Exception):
    """A refused reassignment of one partition, with the error code Kafka answers."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


Outcome = tuple[ErrorCode, str | None]  # a partition's answer: error code and message


def alter(topic: TopicInfo, targets: Mapping[int, tuple[int, ...] | None],
          live: set[int]) -> tuple[TopicInfo | None, dict[int, Outcome]]:
    """AlterPartitionReassignments on one topic: each partition's target replicas (None
    cancels). Returns the topic to write (None when nothing changes) and each partition's
    answer; pure, so a store may run it again on a newer version of the topic."""
    updated = dict(topic.partitions)
    outcome: dict[int, Outcome] = {}
    for index, target in targets.items():
        p = topic.partitions.get(index)
        if p is None:
            outcome[index] = (ErrorCode.unknown_topic_or_partition, None)
            continue
        try:
            updated[index] = cancel(p) if target is None else start(p, target, live)
        except ReassignmentError as exc:
            outcome[index] = (exc.error, str(exc))
        else:
            outcome[index] = (ErrorCode.none, None)
    changed = updated != topic.partitions
    return (replace(topic, partitions=updated) if changed else None), outcome


def original_replicas(p: PartitionInfo) -> tuple[int, ...]:
    return tuple(r for r in p.replicas if r not in p.adding)


def start(p: PartitionInfo, target: tuple[int, ...], live: set[int]) -> PartitionInfo:
    if not target or len(set(target)) != len(target):
        raise ReassignmentError(ErrorCode.invalid_replica_assignment,
                                "The target replica set is empty or has duplicates")
    unknown = [r for r in target if r not in live]
    if unknown:
        raise ReassignmentError(ErrorCode.invalid_replica_assignment,
                                f"Brokers {unknown} in the target replica set are not live")
    original = original_replicas(p)
    if tuple(target) == original:
        return cancel(p) if p.reassigning else p
    replicas = tuple(target) + tuple(r for r in original if r not in target)
    return replace(p, replicas=replicas,
                   adding=tuple(r for r in target if r not in original),
                   removing=tuple(r for r in original if r not in target),
                   partition_epoch=p.partition_epoch + 1)


def cancel(p: PartitionInfo) -> PartitionInfo:
    if not p.reassigning:
        raise ReassignmentError(ErrorCode.no_reassignment_in_progress,
                                "There is no reassignment in progress for this partition")
    original = original_replicas(p)
    isr = tuple(r for r in p.isr if r in original) or (original[0],)
    leader, epoch = p.leader, p.leader_epoch
    if leader not in original:
        leader, epoch = isr[0], epoch + 1
    return replace(p, replicas=original, isr=isr, leader=leader, leader_epoch=epoch,
                   adding=(), removing=(), partition_epoch=p.partition_epoch + 1)


def maybe_complete(p: PartitionInfo) -> PartitionInfo | None:
    """The finished state once every added replica is in sync; None while waiting."""
    if not p.reassigning or any(r not in p.isr for r in p.adding):
        return None
    target = tuple(r for r in p.replicas if r not in p.removing)
    isr = tuple(r for r in p.isr if r in target)
    leader, epoch = p.leader, p.leader_epoch
    if leader not in target:
        if not isr:
            return None
        leader, epoch = isr[0], epoch + 1
    return replace(p, replicas=target, isr=isr, leader=leader, leader_epoch=epoch,
                   adding=(), removing=(), partition_epoch=p.partition_epoch + 1)

"""The controller: leader election when brokers come and go.

Election rules (Kafka's OfflinePartitionLeaderElectionStrategy):

* A partition whose leader is not live gets, as new leader, the first replica in the
  assignment order that is both live and in the ISR. Only an in-sync replica has every
  committed record, so electing anyone else can lose acknowledged writes.
* With `unclean.leader.election.enable` (topic or broker config), a live replica outside
  the ISR may be elected when no in-sync one is live; data loss is then accepted.
* With no candidate the partition goes offline (leader -1) and keeps its ISR, so the
  last in-sync replica can take over the moment it returns.
* A dead follower is dropped from the ISR of a live leader at once, so `acks=all`
  produce does not stall for `replica.lag.time.max.ms` waiting for it.

Every change bumps the partition epoch, a leader change also the leader epoch, and all
of them are version-checked writes fenced by the controller epoch (the store's
`update_topic_as_controller`): a deposed controller, e.g. one paused past its ZooKeeper
session that wakes up still believing it leads, has its first write refused, and then
stops acting until it wins a new election.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from enum import IntEnum
from typing import Protocol

from kio.schema.errors import ErrorCode

from strom.cluster import reassignment
from strom.cluster.image import PartitionInfo, TopicInfo
from strom.cluster.store import ControllerMovedError

log = logging.getLogger(__name__)


def elect(partition: PartitionInfo, live: set[int], unclean: bool) -> PartitionInfo | None:
    """The partition's next state given the live brokers, or None when nothing changes."""
    isr_live = [r for r in partition.isr if r in live]
    if partition.leader in live:
        if set(isr_live) == set(partition.isr):
            return None
        return replace(partition, isr=tuple(r for r in partition.isr if r in live),
                       partition_epoch=partition.partition_epoch + 1)
    candidates = [r for r in partition.replicas if r in isr_live]
    if candidates:
        leader = candidates[0]
        isr = tuple(r for r in partition.isr if r in live)
    elif unclean:
        live_replicas = [r for r in partition.replicas if r in live]
        if not live_replicas:
            return _offline(partition)
        leader = live_replicas[0]
        isr = (leader,)
        log.warning("unclean election of %d as leader of partition %d: records may be lost",
                    leader, partition.partition)
    else:
        return _offline(partition)
    return replace(partition, leader=leader, leader_epoch=partition.leader_epoch + 1, isr=isr,
                   partition_epoch=partition.partition_epoch + 1)


def _offline(partition: PartitionInfo) -> PartitionInfo | None:
    if partition.leader == -1:
        return None
    return replace(partition, leader=-1, leader_epoch=partition.leader_epoch + 1,
                   partition_epoch=partition.partition_epoch + 1)


def preferred(partition: PartitionInfo, live: set[int]) -> PartitionInfo | None:
    """Move leadership back to the first replica if it is live and in sync."""
    first = partition.replicas[0]
    if partition.leader == first or first not in live or first not in partition.isr:
        return None
    return replace(partition, leader=first, leader_epoch=partition.leader_epoch + 1,
                   partition_epoch=partition.partition_epoch + 1)


def next_state(p: PartitionInfo, live: set[int], unclean: bool,
               rebalance: bool = False) -> PartitionInfo | None:
    """One controller step for a partition: failover, reassignment, preferred leader."""
    current = elect(p, live, unclean) or p
    current = reassignment.maybe_complete(current) or current
    if rebalance and not current.reassigning:
        current = preferred(current, live) or current
    return None if current == p else current


class ElectionType(IntEnum):
    """ElectLeaders' `election_type` (KIP-460)."""

    PREFERRED = 0
    UNCLEAN = 1


def requested_election(p: PartitionInfo, kind: ElectionType,
                       live: set[int]) -> tuple[PartitionInfo | None, ErrorCode]:
    """An election an admin asked for (ElectLeaders): the new state, or None, and the
    partition's answer. Kafka answers ELECTION_NOT_NEEDED when the preferred replica
    already leads (preferred) or the leader is alive (unclean), and refuses rather than
    leave a partition without a leader."""
    if kind is ElectionType.PREFERRED:
        if p.leader == p.replicas[0]:
            return None, ErrorCode.election_not_needed
        new = preferred(p, live)
        return new, ErrorCode.none if new else ErrorCode.preferred_leader_not_available
    if p.leader in live:
        return None, ErrorCode.election_not_needed
    new = elect(p, live, unclean=True)
    ok = new is not None and new.leader != -1
    return new, ErrorCode.none if ok else ErrorCode.eligible_leaders_not_available


def elect_requested(topic: TopicInfo, wanted: Iterable[int], kind: ElectionType,
                    live: set[int]) -> tuple[TopicInfo | None, dict[int, ErrorCode]]:
    """`requested_election` over some partitions of a topic: the topic to write (None when
    nothing changes) and each wanted partition's answer. Pure, so a store may run it again
    on a newer version of the topic when its version-checked write loses a race."""
    updated = dict(topic.partitions)
    outcome: dict[int, ErrorCode] = {}
    for index in wanted:
        p = topic.partitions.get(index)
        if p is None:
            outcome[index] = ErrorCode.unknown_topic_or_partition
            continue
        new, outcome[index] = requested_election(p, kind, live)
        if new is not None:
            updated[index] = new
    changed = updated != topic.partitions
    return (replace(topic, partitions=updated) if changed else None), outcome


class ControllerStore(Protocol):
    def image(self) -> object: ...

    def update_topic_as_controller(self, name: str,
                                   change: Callable[[TopicInfo], TopicInfo | None]
                                   ) -> TopicInfo | None:
        """A write fenced by the controller epoch; ControllerMovedError once superseded."""
        ...


class Controller:
    """Runs elections on a worker thread whenever the live broker set changes."""

    def __init__(self, store: ControllerStore, unclean_default: bool,
                 live_brokers: Callable[[], set[int]], topics: Callable[[], list[TopicInfo]],
                 rebalance_interval_s: float | None = None) -> None:
        self.store = store
        self.unclean_default = unclean_default
        self.live_brokers = live_brokers
        self.topics = topics
        self.active = False
        self.rebalance_interval_s = rebalance_interval_s
        self._work: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="strom-controller", daemon=True)
        self._thread.start()

    def on_controller_change(self, is_controller: bool) -> None:
        self.active = is_controller
        if is_controller:
            self._work.put("elect")

    def trigger(self) -> None:
        if self.active:
            self._work.put("elect")

    def stop(self) -> None:
        self._work.put("stop")

    def _run(self) -> None:
        while True:
            try:
                item = self._work.get(timeout=self.rebalance_interval_s)
            except queue.Empty:
                item = "rebalance"
            if item == "stop":
                return
            while not self._work.empty():  # coalesce a burst of changes into one pass
                if self._work.get() == "stop":
                    return
            if self.active:
                try:
                    self.elect_all(rebalance=item == "rebalance")
                except ControllerMovedError as exc:
                    self.active = False  # a newer controller decides now; wait to be elected
                    log.error("controller pass stopped: %s", exc)
                except Exception:  # e.g. ZooKeeper connection loss: the trigger must not be lost
                    log.exception("controller election pass failed; retrying in 1 s")
                    retry = threading.Timer(1.0, self.trigger)
                    retry.daemon = True
                    retry.start()

    def elect_all(self, rebalance: bool = False) -> int:
        live = self.live_brokers()
        changed = 0
        for topic in self.topics():
            unclean = _unclean(topic, self.unclean_default)
            if not any(next_state(p, live, unclean, rebalance) for p in topic.partitions.values()):
                continue

            def change(current: TopicInfo, live: set[int] = live, unclean: bool = unclean
                       ) -> TopicInfo | None:
                partitions = dict(current.partitions)
                touched = False
                for index, p in current.partitions.items():
                    new = next_state(p, live, unclean, rebalance)
                    if new is not None:
                        partitions[index] = new
                        touched = True
                        if new.leader != p.leader:
                            log.info("partition %s-%d: leader %d -> %d (epoch %d), isr %s",
                                     current.name, index, p.leader, new.leader,
                                     new.leader_epoch, list(new.isr))
                return replace(current, partitions=partitions) if touched else None

            if self.store.update_topic_as_controller(topic.name, change) is not None:
                changed += 1
        return changed


def _unclean(topic: TopicInfo, default: bool) -> bool:
    value = topic.configs.get("unclean.leader.election.enable")
    return default if value is None else value.strip().lower() == "true"

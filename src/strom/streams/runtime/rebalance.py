"""What a stream thread tells the group and what its leader computes from the answers.

`TaskLayout` maps tasks to their source partitions and sorts them into stateless,
stateful (logged stores) and standby-capable (persistent logged stores: only those
outlive a standby's objects here). `offset_sums` is the client's view of its local state,
per task: -2 (Kafka's LATEST) for a task running here, the sum of the changelog offsets a
standby has applied, or the sum of a task directory's checkpoint; the leader compares
these with the changelogs' end offsets to get each client's lag on each task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from strom.streams.runtime import checkpoint
from strom.streams.runtime.assignor import (
    LATEST,
    AssignorConfig,
    MemberAssignment,
    MemberInfo,
    TaskSpace,
    assign,
)
from strom.streams.runtime.topics import Plan
from strom.streams.topology import SubTopology, Topology, physical_topic

log = logging.getLogger(__name__)


class TaskLayout:
    def __init__(self, topology: Topology, application_id: str, the_plan: Plan) -> None:
        self.app = application_id
        self.topology = topology
        self.partitions: dict[str, list[tuple[str, int]]] = {}
        self.changelogs: dict[str, list[tuple[str, int]]] = {}
        self.stateful: set[str] = set()
        self.standby_capable: set[str] = set()
        for sub in topology.subtopologies():
            for partition in range(the_plan.tasks.get(sub.id, 0)):
                self._add(sub, partition)

    def _add(self, sub: SubTopology, partition: int) -> None:
        task_id = f"{sub.id}_{partition}"
        self.partitions[task_id] = [(physical_topic(self.topology, t, self.app), partition)
                                    for t in sub.source_topics]
        logged = [s for s in sub.stores if self.topology.store_builders[s].logging_enabled]
        self.changelogs[task_id] = [(f"{self.app}-{self.topology.changelog_topic(s)}", partition)
                                    for s in logged]
        if logged:
            self.stateful.add(task_id)
        if any(getattr(self.topology.store_builders[s], "persistent", False) for s in logged):
            self.standby_capable.add(task_id)

    def topics(self) -> list[str]:
        return sorted({t for parts in self.partitions.values() for t, _ in parts})

    def space(self, consumer: Any, timeout: float) -> TaskSpace:
        """The tasks, with each stateful task's changelog end-offset sum."""
        from confluent_kafka import TopicPartition

        ends: dict[str, int] = {}
        for task_id in sorted(self.stateful):
            total = 0
            for topic, partition in self.changelogs[task_id]:
                high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                      timeout=timeout)[1]
                total += max(high, 0)
            ends[task_id] = total
        return TaskSpace(sorted(self.partitions), set(self.stateful), set(self.standby_capable),
                         ends)

    def plan(self, space: TaskSpace, members: list[MemberInfo], config: AssignorConfig,
             now_ms: int) -> dict[str, tuple[list[tuple[str, int]], MemberAssignment]]:
        """The leader's answer: member id → (its partitions, its tasks)."""
        plans = assign(space, members, config, now_ms)
        log.info("assignment: %s", {m: (a.active, a.standby) for m, a in plans.items()})
        return {m: ([tp for t in a.active for tp in self.partitions[t]], a)
                for m, a in plans.items()}


def offset_sums(state_dir: Path, running: Iterable[str],
                standby_offsets: dict[str, dict[tuple[str, int], int]]) -> dict[str, int]:
    """Task id → this client's offset sum (see the module docstring)."""
    sums: dict[str, int] = {}
    if state_dir.is_dir():
        for task_dir in state_dir.iterdir():
            found = checkpoint.read(task_dir) if task_dir.is_dir() else {}
            if found:
                sums[task_dir.name] = sum(found.values())
    for task_id, offsets in standby_offsets.items():
        if offsets:
            sums[task_id] = sum(offsets.values())
    for task_id in running:
        sums[task_id] = LATEST
    return sums

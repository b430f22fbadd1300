"""Standby replicas: warm copies of the tasks another instance runs, so that taking one
over restores only the changelog's tail instead of all of it.

With `num_standby_replicas` > 0, the group leader's assignor (`assignor`) gives each
task with persistent logged stores that many standbys on other instances than its
active, plus warm-up replicas on instances a task is to move to. A thread keeps the
stores of its standby tasks open in the task's own state directory and follows their
changelog partitions (a consumer of its own, assigned directly, read_committed under
exactly-once), writing the task's checkpoint at every commit. When the task is assigned
here, the standby is closed first (its checkpoint written) and the active task restores
from that checkpoint on.

Unlike Kafka, in-memory stores have no standbys (their state cannot outlive the
standby's objects here: an active task is built anew, not recycled from its standby).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from strom.client import KafkaClients
from strom.streams.runtime import checkpoint, consumer_errors
from strom.streams.runtime.config import StreamsConfig
from strom.streams.runtime.restore import prepare_task_dir
from strom.streams.runtime.topics import Plan
from strom.streams.task import Task, TaskEnv
from strom.streams.topology import Topology

log = logging.getLogger(__name__)


class Standbys:
    def __init__(self, topology: Topology, config: StreamsConfig, clients: KafkaClients,
                 the_plan: Plan, env: TaskEnv) -> None:
        self._topology = topology
        self._config = config
        self._plan = the_plan
        self._env = env
        self.tasks: dict[str, Task] = {}
        self._offsets: dict[tuple[str, int], int] = {}  # last offset applied per changelog
        self._stores: dict[tuple[str, int], Any] = {}  # changelog partition → store
        self._consumer: Any = None  # made when the first standby is assigned
        self._clients = clients

    def _candidates(self) -> dict[str, tuple[Any, int]]:
        """Task id → (sub-topology, partition) of every task with persistent logged stores."""
        found = {}
        for sub in self._topology.subtopologies():
            builders = [self._topology.store_builders[s] for s in sub.stores]
            if any(b.logging_enabled and getattr(b, "persistent", False) for b in builders):
                for partition in range(self._plan.tasks.get(sub.id, 0)):
                    found[f"{sub.id}_{partition}"] = (sub, partition)
        return found

    def release(self, task_ids: set[str]) -> None:
        """Close the standbys of tasks about to become active here (checkpoints written)."""
        for task_id in sorted(task_ids & set(self.tasks)):
            self._close(task_id)
        self._reassign()

    def update(self, assigned: set[str]) -> None:
        """Follow exactly the `assigned` standby tasks (those that can have one)."""
        for task_id in sorted(set(self.tasks) - assigned):
            self._close(task_id)
        for task_id, (sub, partition) in sorted(self._candidates().items()):
            if task_id in assigned and task_id not in self.tasks:
                self._open(task_id, sub, partition)
        self._reassign()

    def retain(self, assigned: set[str]) -> None:
        """Close the standbys not in `assigned` (opening new ones waits)."""
        gone = set(self.tasks) - assigned
        for task_id in sorted(gone):
            self._close(task_id)
        if gone:
            self._reassign()

    def offsets_by_task(self) -> dict[str, dict[tuple[str, int], int]]:
        """Each standby task's applied changelog offsets (its lag, for the assignor)."""
        return {task_id: {(topic, task.partition): self._offsets[(topic, task.partition)]
                          for topic in task.changelog_topics().values()
                          if (topic, task.partition) in self._offsets}
                for task_id, task in self.tasks.items()}

    def _open(self, task_id: str, sub: Any, partition: int) -> None:
        task = Task(self._topology, sub, partition, self._env)
        task_dir = self._config.app_state_dir / task_id
        offsets = prepare_task_dir(task, task_dir)
        task.open_stores()
        for name, topic in task.changelog_topics().items():
            store = task.stores[name]
            if store.persistent:
                self._stores[(topic, partition)] = store
                if (topic, partition) in offsets:
                    self._offsets[(topic, partition)] = offsets[(topic, partition)]
        self.tasks[task_id] = task
        log.info("standby task %s is following its changelogs", task_id)

    def _close(self, task_id: str) -> None:
        task = self.tasks.pop(task_id)
        self._write_checkpoint(task)
        for topic in task.changelog_topics().values():
            self._stores.pop((topic, task.partition), None)
        task.close()

    def _reassign(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        if self._consumer is None:
            if not self._stores:
                return
            config = self._config
            isolation = "read_committed" if config.exactly_once else "read_uncommitted"
            self._consumer = self._clients.consumer({
                "client.id": f"{config.application_id}-standby-consumer",
                "group.id": f"{config.application_id}-standby", "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "isolation.level": isolation})
        self._consumer.assign([
            TopicPartition(topic, partition, self._offsets[(topic, partition)] + 1
                           if (topic, partition) in self._offsets else OFFSET_BEGINNING)
            for topic, partition in self._stores])

    def poll(self) -> None:
        """Apply what the changelogs of the standby tasks have gained."""
        if self._consumer is None or not self._stores:
            return
        batches: dict[tuple[str, int], list[Any]] = {}
        for msg in self._consumer.consume(1000, 0):
            if msg.error() is not None:
                consumer_errors.check(msg.error(), "standby consumer")
                continue
            key = (msg.topic(), msg.partition())
            if key in self._stores:
                batches.setdefault(key, []).append((msg.key(), msg.value(), msg.timestamp()[1]))
                self._offsets[key] = msg.offset()
        for key, entries in batches.items():
            self._stores[key].restore(entries)

    def checkpoint(self) -> None:
        for task in self.tasks.values():
            task.flush()
            self._write_checkpoint(task)

    def _write_checkpoint(self, task: Task) -> None:
        offsets = {(topic, task.partition): self._offsets[(topic, task.partition)]
                   for topic in task.changelog_topics().values()
                   if (topic, task.partition) in self._offsets}
        if offsets:
            task.flush()
            checkpoint.write(Path(self._config.app_state_dir) / task.id, offsets)

    def close(self) -> None:
        for task_id in sorted(self.tasks):
            self._close(task_id)
        if self._consumer is not None:
            self._consumer.close()

"""`Instance`: what the stream threads of one application instance share.

Kafka Streams runs `num.stream.threads` StreamThreads per KafkaStreams instance, each a
group member with its own consumer and (exactly-once) its own transactional producer,
next to one GlobalStreamThread. Here the global stores are kept by the instance's first
thread (it bootstraps them before the others may process, then polls them in its loop);
the threads share the metrics object and the state directory, and each reports the
whole instance's local state (every thread's running tasks and standbys) to the group,
as Kafka's SubscriptionInfo carries the client's task offset sums from every thread.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from strom.streams.runtime.global_updater import GlobalUpdater
from strom.streams.runtime.metrics import StreamsMetrics

if TYPE_CHECKING:
    from strom.streams.runtime.thread import StreamThread


class Instance:
    def __init__(self, globals_: GlobalUpdater, metrics: StreamsMetrics) -> None:
        self.globals = globals_
        self.globals_ready = threading.Event()
        self.metrics = metrics
        self.threads: list[StreamThread] = []
        self.owner: StreamThread | None = None  # the thread that keeps the global stores

    def running(self) -> set[str]:
        """Every task some thread of this instance has (running or restoring)."""
        return {task_id for thread in list(self.threads) for task_id in list(thread.tasks)}

    def standby_offsets(self) -> dict[str, dict[tuple[str, int], int]]:
        found: dict[str, dict[tuple[str, int], int]] = {}
        for thread in list(self.threads):
            found.update(thread.standbys.offsets_by_task())
        return found

    def standby_elsewhere(self, task_id: str, thread: StreamThread) -> bool:
        """Whether another thread still keeps `task_id` as a standby."""
        return any(task_id in other.standbys.tasks for other in list(self.threads)
                   if other is not thread)

"""Restoring a task's stores from their changelog partitions before it processes.

Each logged store of the task reads `<application.id>-<store>-changelog`, partition = the
task's partition, from the beginning (in-memory stores, or a RocksDB store without a
checkpoint, whose directory is wiped first) or from just after its checkpointed offset,
up to the end offset read when restoration starts. Progress is logged per store
(Kafka's StateRestoreListener reports the same: start, batches, end).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from strom.streams.errors import StreamsError
from strom.streams.runtime import checkpoint, consumer_errors
from strom.streams.runtime.metrics import StreamsMetrics
from strom.streams.state.api import ChangelogEntry
from strom.streams.task import Task

log = logging.getLogger(__name__)

BATCH = 1000
RESTORE_TIMEOUT_S = 300.0


def prepare_task_dir(task: Task, task_dir: Path) -> dict[tuple[str, int], int]:
    """Wipe persistent stores no checkpoint vouches for; the checkpoint's offsets."""
    offsets = checkpoint.read(task_dir)
    for name, topic in task.changelog_topics().items():
        store = task.stores[name]
        if store.persistent and (topic, task.partition) not in offsets:
            shutil.rmtree(task_dir / "rocksdb" / name, ignore_errors=True)
    return offsets


def restore_task(task: Task, consumer: Any, offsets: dict[tuple[str, int], int],
                 metrics: StreamsMetrics | None = None) -> dict[tuple[str, int], int]:
    """Replay each logged store's changelog; the last offset restored per partition."""
    from confluent_kafka import TopicPartition

    restored: dict[tuple[str, int], int] = {}
    for name, topic in task.changelog_topics().items():
        store = task.stores[name]
        tp = TopicPartition(topic, task.partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=10.0)
        last = offsets.get((topic, task.partition)) if store.persistent else None
        start = max(low, last + 1) if last is not None else low
        if last is not None:
            restored[(topic, task.partition)] = last
        if start >= high:
            continue
        log.info("task %s: restoring store %s from %s-%s offsets %s..%s", task.id, name, topic,
                 task.partition, start, high)
        restored[(topic, task.partition)] = _replay(consumer, store, topic, task.partition,
                                                    start, high, metrics)
    return restored


def _replay(consumer: Any, store: Any, topic: str, partition: int, start: int, end: int,
            metrics: StreamsMetrics | None) -> int:
    from confluent_kafka import TopicPartition

    consumer.assign([TopicPartition(topic, partition, start)])
    position, count = start, 0
    deadline = time.monotonic() + RESTORE_TIMEOUT_S
    try:
        while position < end:
            if time.monotonic() > deadline:
                raise StreamsError(f"restoring {topic}-{partition} stalled at {position}/{end}")
            entries: list[ChangelogEntry] = []
            for msg in consumer.consume(BATCH, 0.5):
                if msg.error() is not None:
                    consumer_errors.check(msg.error(), f"restoring {topic}-{partition}")
                    continue
                entries.append((msg.key(), msg.value(), msg.timestamp()[1]))
                position = msg.offset() + 1
            store.restore(entries)
            count += len(entries)
            if metrics is not None:
                metrics.restore_progress(store.name, partition, len(entries),
                                         max(0, end - position))
            if not entries:  # compaction leaves gaps: ask where the consumer stands
                found = consumer.position([TopicPartition(topic, partition)])[0].offset
                position = max(position, found)
    finally:
        consumer.unassign()
    log.info("restored %s records of %s-%s", count, topic, partition)
    return position - 1

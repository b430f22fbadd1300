"""`Task`: one sub-topology running on one partition, the unit of work and of state.

A task owns the processor instances and store instances of its sub-topology for one
partition number (task id `<subtopology>_<partition>`, Kafka's spelling). Records come
in serialized (`add_records`); each input partition has its own queue, and `process`
takes next the queued record with the smallest timestamp, so that records of
co-partitioned topics are processed in time order as Kafka Streams' PartitionGroup does.

Stream time is the largest timestamp the task has processed; it never goes back. It drives
window closing, suppression and STREAM_TIME punctuations, which `maybe_punctuate` fires
after each record. WALL_CLOCK_TIME punctuations fire from the task's clock
(`TaskEnv.clock`, a test driver's mock clock or the system clock).

Everything a task sends (sink records, changelog records) goes to the `RecordCollector`,
a producer at run time or the test driver's capture; the task keeps the offsets it has
processed, for the runtime to commit once the collector has flushed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from strom.streams.errors import SerializationError, StreamsError, TopologyError
from strom.streams.processor import Processor, PunctuationType, Punctuator
from strom.streams.record import ConsumedRecord, Headers, ProducedRecord, Record
from strom.streams.serdes import BytesSerde, Serde
from strom.streams.state.api import StateStore
from strom.streams.timestamps import FailOnInvalidTimestamp, TimestampExtractor
from strom.streams.topology import (
    ProcessorNode,
    SinkNode,
    SourceNode,
    SubTopology,
    Topology,
    physical_topic,
)

log = logging.getLogger(__name__)

UNKNOWN = -1


class RecordCollector(Protocol):
    """Where a task's output goes: a producer, or the test driver."""

    def send(self, record: ProducedRecord) -> None: ...


@dataclass
class TaskEnv:
    """What every task of one application shares."""

    application_id: str
    collector: RecordCollector
    clock: Callable[[], int]
    default_key_serde: Serde[Any] = field(default_factory=BytesSerde)
    default_value_serde: Serde[Any] = field(default_factory=BytesSerde)
    timestamp_extractor: TimestampExtractor = field(default_factory=FailOnInvalidTimestamp)
    state_dir: Path | None = None
    skip_bad_records: bool = False  # Kafka's LogAndContinueExceptionHandler when True
    continue_on_processing_error: bool = False  # Kafka's ProcessingExceptionHandler (KIP-1033)
    dead_letter_topic: str | None = None  # bad records go there, with the error (KIP-1034)
    global_stores: dict[str, StateStore] = field(default_factory=dict)


class _Schedule:
    __slots__ = ("callback", "cancelled", "context", "interval", "next_time")

    def __init__(self, context: NodeContext, interval: int, next_time: int,
                 callback: Punctuator) -> None:
        self.context = context
        self.interval = interval
        self.next_time = next_time
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def advance(self, now: int) -> None:
        """Next due time after `now`, skipping missed intervals (Kafka's schedule.next)."""
        missed = (now - self.next_time) // self.interval
        self.next_time += (max(missed, 0) + 1) * self.interval


class _Punctuations:
    """Due-time ordered schedules of one kind."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, _Schedule]] = []
        self._seq = itertools.count()

    def add(self, schedule: _Schedule) -> None:
        heapq.heappush(self._heap, (schedule.next_time, next(self._seq), schedule))

    def fire(self, now: int, task: Task) -> bool:
        fired = False
        while self._heap and self._heap[0][0] <= now:
            _, _, schedule = heapq.heappop(self._heap)
            if schedule.cancelled:
                continue
            task.punctuate(schedule, now)
            schedule.advance(now)
            self.add(schedule)
            fired = True
        return fired


class NodeContext:
    """The `ProcessorContext` of one node in one task."""

    __slots__ = ("_children", "_stores", "_task", "name")

    def __init__(self, task: Task, name: str, stores: list[str]) -> None:
        self._task = task
        self.name = name
        self._children: list[_NodeRun] = []
        self._stores = stores

    @property
    def application_id(self) -> str:
        return self._task.env.application_id

    @property
    def task_id(self) -> str:
        return self._task.id

    @property
    def partition(self) -> int:
        return self._task.partition

    def forward(self, record: Record, to: str | None = None) -> None:
        # no try/finally on this hot path: an exception ends the task's processing anyway
        task = self._task
        previous = task.current_timestamp
        task.current_timestamp = record.timestamp
        if to is None:
            for child in self._children:
                child.process(record)
        else:
            for child in self._children:
                if child.name == to:
                    child.process(record)
        task.current_timestamp = previous

    def get_state_store(self, name: str) -> Any:
        if name in self._stores:
            return self._task.stores[name]
        global_store = self._task.env.global_stores.get(name)
        if global_store is not None:
            return global_store
        raise TopologyError(f"processor {self.name!r} has no access to store {name!r}; "
                            "connect it in the topology")

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Punctuator) -> _Schedule:
        if interval_ms < 1:
            raise ValueError("punctuation interval must be at least 1 ms")
        return self._task.schedule(self, interval_ms, kind, callback)

    def current_stream_time_ms(self) -> int:
        return self._task.stream_time

    def current_system_time_ms(self) -> int:
        return self._task.env.clock()

    @property
    def default_key_serde(self) -> Serde[Any]:
        return self._task.env.default_key_serde

    @property
    def default_value_serde(self) -> Serde[Any]:
        return self._task.env.default_value_serde

    def commit(self) -> None:
        self._task.commit_requested = True


class _NodeRun:
    """A node's runtime: the processor instance and its context."""

    __slots__ = ("context", "name", "process", "processor")

    def __init__(self, name: str, processor: Processor | None, context: NodeContext) -> None:
        self.name = name
        self.processor = processor
        self.context = context
        self.process: Callable[[Record], None] = (
            processor.process if processor is not None else self._forward)

    def _forward(self, record: Record) -> None:
        for child in self.context._children:
            child.process(record)


class _Sink:
    """Serializes and hands a record to the collector."""

    def __init__(self, task: Task, node: SinkNode) -> None:
        self._task = task
        self._topic = (physical_topic(task.topology, node.topic, task.env.application_id)
                       if isinstance(node.topic, str) else node.topic)
        env = task.env
        self._key_serde = (node.key_serde or env.default_key_serde).resolved(env.default_key_serde)
        self._value_serde = (node.value_serde or env.default_value_serde).resolved(
            env.default_value_serde)
        self._partitioner = node.partitioner

    def process(self, record: Record) -> None:
        topic = self._topic if isinstance(self._topic, str) else self._topic(record)
        try:
            key = self._key_serde.serialize(topic, record.key)
            value = self._value_serde.serialize(topic, record.value)
        except (SerializationError, TypeError, ValueError) as exc:
            raise SerializationError(f"sink to {topic!r}: {exc}") from exc
        partition = -1
        if self._partitioner is not None:
            chosen = self._partitioner(topic, record.key, record.value,
                                       self._task.partition_count(topic))
            partition = -1 if chosen is None else chosen
        self._task.env.collector.send(ProducedRecord(topic, key, value, record.timestamp,
                                                     record.headers, partition))


class _Queue:
    """Deserialized records of one input partition, in offset order."""

    __slots__ = ("partition_time", "records", "source")

    def __init__(self, source: _SourceRun) -> None:
        self.source = source
        self.records: deque[Record] = deque()
        self.partition_time = UNKNOWN


class _SourceRun:
    """A source node bound to a task: its deserializers, extractor and children."""

    def __init__(self, task: Task, node: SourceNode, run: _NodeRun) -> None:
        self.node = node
        self.run = run
        env = task.env
        self.key_serde = (node.key_serde or env.default_key_serde).resolved(env.default_key_serde)
        self.value_serde = (node.value_serde or env.default_value_serde).resolved(
            env.default_value_serde)
        self.extractor = node.timestamp_extractor or task.env.timestamp_extractor


class Task:
    """Runs one sub-topology on one partition number."""

    def __init__(self, topology: Topology, sub: SubTopology, partition: int, env: TaskEnv) -> None:
        self.topology = topology
        self.sub = sub
        self.partition = partition
        self.env = env
        self.id = f"{sub.id}_{partition}"
        self.stream_time = UNKNOWN
        self.current_timestamp = UNKNOWN
        self.current_record: Record | None = None
        self.commit_requested = False
        self.stores: dict[str, StateStore] = {}
        self.processed_offsets: dict[tuple[str, int], int] = {}
        self._queues: dict[tuple[str, int], _Queue] = {}
        self._sources: dict[str, _SourceRun] = {}
        self._stream_punctuations = _Punctuations()
        self._wall_punctuations = _Punctuations()
        self._partition_counts: dict[str, int] = {}
        self._runs: dict[str, _NodeRun] = {}
        self._build_stores()

    # --- set-up -----------------------------------------------------------------------

    def _build_stores(self) -> None:
        for name in self.sub.stores:
            self.stores[name] = self.topology.store_builders[name].build()

    def changelog_topics(self) -> dict[str, str]:
        """Store name → physical changelog topic, for the logged stores of this task."""
        app = self.env.application_id
        return {name: f"{app}-{self.topology.changelog_topic(name)}" for name in self.stores
                if self.topology.store_builders[name].logging_enabled}

    def initialize(self) -> None:
        """Open the stores and start the processors (no restoration: the test driver)."""
        self.open_stores()
        self.init_processors()

    def open_stores(self) -> None:
        """Open the stores, ready to be restored from their changelogs."""
        context = _StoreContext(self)
        for store in self.stores.values():
            store.init(context)

    def init_processors(self) -> None:
        """Instantiate the processors; the stores are open and restored."""
        for name in self.sub.nodes:
            self._runs[name] = self._make_run(name)
        for name in self.sub.nodes:
            self._runs[name].context._children = [
                self._runs[c] for c in self.topology.children[name] if c in self._runs]
        for name in self.sub.nodes:
            run = self._runs[name]
            if run.processor is not None and isinstance(self.topology.nodes[name], ProcessorNode):
                run.processor.init(run.context)

    def _make_run(self, name: str) -> _NodeRun:
        node = self.topology.nodes[name]
        stores = node.stores if isinstance(node, ProcessorNode) else []
        context = NodeContext(self, name, stores)
        if isinstance(node, ProcessorNode):
            return _NodeRun(name, node.supplier(), context)
        if isinstance(node, SinkNode):
            run = _NodeRun(name, None, context)
            run.process = _Sink(self, node).process
            return run
        run = _NodeRun(name, None, context)
        source = _SourceRun(self, node, run)
        for topic in node.topics:
            self._sources[physical_topic(self.topology, topic, self.env.application_id)] = source
        return run

    def set_partition_counts(self, counts: dict[str, int]) -> None:
        self._partition_counts.update(counts)

    def partition_count(self, topic: str) -> int:
        return self._partition_counts.get(topic, 1)

    # --- input ------------------------------------------------------------------------

    def add_records(self, records: Iterable[ConsumedRecord]) -> None:
        """Deserialize and queue records of this task's input partitions."""
        for consumed in records:
            key = (consumed.topic, consumed.partition)
            queue = self._queues.get(key)
            if queue is None:
                source = self._sources.get(consumed.topic)
                if source is None:
                    raise StreamsError(f"task {self.id} does not read {consumed.topic!r}")
                queue = self._queues[key] = _Queue(source)
            record = self._deserialize(queue, consumed)
            if record is not None:
                queue.records.append(record)
            elif not queue.records:  # skipped; never commit past a record still queued
                self.processed_offsets[key] = consumed.offset + 1

    def _deserialize(self, queue: _Queue, consumed: ConsumedRecord) -> Record | None:
        source = queue.source
        try:
            record = Record(source.key_serde.deserialize(consumed.topic, consumed.key),
                            source.value_serde.deserialize(consumed.topic, consumed.value),
                            consumed.timestamp, consumed.headers, consumed.topic,
                            consumed.partition, consumed.offset)
        except (SerializationError, ValueError, TypeError) as exc:
            where = f"{consumed.topic}-{consumed.partition}@{consumed.offset}"
            if not (self.env.skip_bad_records or self.env.dead_letter_topic):
                raise SerializationError(f"{where}: {exc}") from exc
            log.warning("skipping %s: %s", where, exc)
            self._dead_letter(consumed.topic, consumed.partition, consumed.offset,
                              consumed.key, consumed.value, consumed.timestamp, exc)
            return None
        timestamp = source.extractor(record, queue.partition_time)
        if timestamp < 0:
            return None
        record.timestamp = timestamp
        queue.partition_time = max(queue.partition_time, timestamp)
        return record

    def buffered(self) -> int:
        return sum(len(q.records) for q in self._queues.values())

    def has_buffered(self, topic: str, partition: int) -> bool:
        queue = self._queues.get((topic, partition))
        return queue is not None and bool(queue.records)

    # --- processing -------------------------------------------------------------------

    def process(self, max_records: int = 1_000_000) -> int:
        """Process up to `max_records` queued records, smallest timestamp first."""
        done = 0
        while done < max_records:
            queue = self._next_queue()
            if queue is None:
                break
            self._process_one(queue, queue.records.popleft())
            done += 1
        return done

    def _next_queue(self) -> _Queue | None:
        best: _Queue | None = None
        for queue in self._queues.values():
            if queue.records and (best is None
                                  or queue.records[0].timestamp < best.records[0].timestamp):
                best = queue
        return best

    def _process_one(self, queue: _Queue, record: Record) -> None:
        if record.timestamp > self.stream_time:
            self.stream_time = record.timestamp
        self.current_record = record
        self.current_timestamp = record.timestamp
        try:
            queue.source.run.process(record)
        except Exception as exc:
            if not self.env.continue_on_processing_error:
                raise
            self._processing_failed(queue, record, exc)
        finally:
            self.current_record = None
        self.processed_offsets[(record.topic or "", record.partition)] = record.offset + 1
        self.maybe_punctuate_stream_time()

    def _processing_failed(self, queue: _Queue, record: Record, exc: Exception) -> None:
        """Log the failure, send the input record to the dead-letter topic, go on."""
        log.warning("processing %s-%s@%s failed, skipped: %r", record.topic, record.partition,
                    record.offset, exc)
        source = queue.source
        topic = record.topic or ""
        self._dead_letter(topic, record.partition, record.offset,
                          source.key_serde.serialize(topic, record.key),
                          source.value_serde.serialize(topic, record.value), record.timestamp,
                          exc)

    def _dead_letter(self, topic: str, partition: int, offset: int, key: bytes | None,
                     value: bytes | None, timestamp: int, exc: Exception) -> None:
        """The record as read, with headers that say what went wrong and where (KIP-1034's
        names), on the dead-letter topic, if the application has one."""
        if self.env.dead_letter_topic is None:
            return
        headers = [("__streams.errors.exception", type(exc).__name__.encode()),
                   ("__streams.errors.message", str(exc).encode()),
                   ("__streams.errors.stacktrace",
                    "".join(traceback.format_exception(exc)).encode()),
                   ("__streams.errors.topic", topic.encode()),
                   ("__streams.errors.partition", str(partition).encode()),
                   ("__streams.errors.offset", str(offset).encode())]
        self.env.collector.send(ProducedRecord(self.env.dead_letter_topic, key, value,
                                               max(timestamp, 0), headers))

    # --- punctuation ------------------------------------------------------------------

    def schedule(self, context: NodeContext, interval: int, kind: PunctuationType,
                 callback: Punctuator) -> _Schedule:
        if kind is PunctuationType.STREAM_TIME:
            schedule = _Schedule(context, interval, 0, callback)  # aligned to 0, as Kafka
            self._stream_punctuations.add(schedule)
        else:
            schedule = _Schedule(context, interval, self.env.clock() + interval, callback)
            self._wall_punctuations.add(schedule)
        return schedule

    def maybe_punctuate_stream_time(self) -> bool:
        if self.stream_time == UNKNOWN:
            return False
        return self._stream_punctuations.fire(self.stream_time, self)

    def maybe_punctuate_wall_clock(self) -> bool:
        return self._wall_punctuations.fire(self.env.clock(), self)

    def punctuate(self, schedule: _Schedule, now: int) -> None:
        previous = self.current_timestamp
        self.current_timestamp = now
        try:
            schedule.callback(now)
        finally:
            self.current_timestamp = previous

    # --- commit and close -------------------------------------------------------------

    def flush(self) -> None:
        for store in self.stores.values():
            store.flush()

    def take_commit_request(self) -> bool:
        requested, self.commit_requested = self.commit_requested, False
        return requested

    def close(self) -> None:
        for run in self._runs.values():
            if run.processor is not None:
                run.processor.close()
        for store in self.stores.values():
            store.close()


class _StoreContext:
    """The task as its stores see it (`state.api.StoreContext`)."""

    def __init__(self, task: Task) -> None:
        self._task = task
        self._changelogs = task.changelog_topics()

    @property
    def application_id(self) -> str:
        return self._task.env.application_id

    @property
    def task_id(self) -> str:
        return self._task.id

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def default_key_serde(self) -> Serde[Any]:
        return self._task.env.default_key_serde

    @property
    def default_value_serde(self) -> Serde[Any]:
        return self._task.env.default_value_serde

    @property
    def state_dir(self) -> Path | None:
        base = self._task.env.state_dir
        return None if base is None else base / self._task.id

    def record_timestamp(self) -> int:
        return self._task.current_timestamp

    def stream_time(self) -> int:
        return self._task.stream_time

    def log_change(self, store: str, key: bytes, value: bytes | None, timestamp: int,
                   headers: Headers = ()) -> None:
        topic = self._changelogs.get(store)
        if topic is not None:
            self._task.env.collector.send(
                ProducedRecord(topic, key, value, timestamp, headers, self._task.partition))

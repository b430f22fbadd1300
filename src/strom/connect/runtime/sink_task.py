"""`WorkerSinkTask`: consume, convert, transform, `put`; commit through `pre_commit`.

The consumer belongs to the group `connect-<connector>` with auto-commit off. Each
iteration delivers one consumed batch to `put` (empty batches too, as Kafka does, so a
task can flush on time). Every `offset.flush.interval.ms`, on a rebalance that takes
partitions away, and at stop, `pre_commit(current offsets)` decides what is committed.
A `RetriableError` from `put` pauses every assigned partition and delivers the same
batch again after the backoff the task asked for (`context.timeout`), as Kafka does.
Records that fail in a converter or transform go through the error handler: skipped,
logged and written to the dead letter queue under `errors.tolerance=all`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from strom.connect.api.errors import ConnectError, RetriableError
from strom.connect.api.records import SinkRecord
from strom.connect.api.task import TopicPartition
from strom.connect.data.headers import Headers
from strom.connect.runtime.errors import ErrorContext, Skipped, Stage
from strom.connect.runtime.worker_task import StatusListener, TaskParts, WorkerTask

log = logging.getLogger(__name__)

MAX_POLL_RECORDS = 500
POLL_TIMEOUT_S = 0.5
DEFAULT_RETRY_BACKOFF_S = 1.0
_TIMESTAMP_TYPES = {0: "NoTimestampType", 1: "CreateTime", 2: "LogAppendTime"}


class SinkContext:
    """The `SinkTaskContext` a task gets; its requests are carried out by the worker task."""

    def __init__(self, owner: WorkerSinkTask) -> None:
        self.owner = owner
        self.configs = owner.parts.task_config

    def offset(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.owner.rewinds.update(offsets)

    def timeout(self, timeout_ms: int) -> None:
        self.owner.retry_backoff_s = timeout_ms / 1000

    def assignment(self) -> set[TopicPartition]:
        return set(self.owner.assigned)

    def pause(self, *partitions: TopicPartition) -> None:
        self.owner.consumer.pause([self.owner.kafka_tp(tp) for tp in partitions])

    def resume(self, *partitions: TopicPartition) -> None:
        self.owner.consumer.resume([self.owner.kafka_tp(tp) for tp in partitions])

    def request_commit(self) -> None:
        self.owner.next_commit = 0.0

    def errant_record_reporter(self) -> Callable[[SinkRecord, BaseException], None]:
        """KIP-610: a task reports a record it cannot write; with errors.tolerance=all it
        is logged and sent to the dead letter queue as its consumed bytes, else the task
        fails. The DLQ write is flushed before the record's offset is committed."""
        return self.owner.report_errant



class WorkerSinkTask(WorkerTask):
    def __init__(self, parts: TaskParts, listener: StatusListener, shutdown_timeout_s: float, *,
                 consumer_factory: Callable[[], Any], flush_interval_s: float,
                 subscription: tuple[list[str], str], dlq: Callable[[ErrorContext], None] | None,
                 on_topic: Callable[[str], None]) -> None:
        super().__init__(parts, listener, shutdown_timeout_s)
        self.consumer_factory = consumer_factory
        self.flush_interval_s = flush_interval_s
        self.subscription = subscription
        self.on_topic = on_topic
        if dlq is not None:
            parts.errors.reporters.append(dlq)
        self.consumer: Any = None
        self.assigned: set[TopicPartition] = set()
        self.current: dict[TopicPartition, int] = {}
        # next offsets of the batch in hand: they join `current` (what a commit may cover)
        # only once `put` took the batch, so a stop or revocation between the consume and
        # a successful put never commits records the task was not given (issue 14)
        self.consumed: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.rewinds: dict[TopicPartition, int] = {}
        self.retry_backoff_s = DEFAULT_RETRY_BACKOFF_S
        self.next_commit = 0.0
        self.paused_for_pause = False
        self.closed = False
        self.topics: set[str] = set()
        self.raw: dict[tuple[str, int | None, int | None], tuple[Any, Any, list[Any]]] = {}

    @staticmethod
    def kafka_tp(tp: TopicPartition, offset: int | None = None) -> Any:
        from confluent_kafka import TopicPartition as KafkaTopicPartition

        return KafkaTopicPartition(tp.topic, tp.partition) if offset is None else \
            KafkaTopicPartition(tp.topic, tp.partition, offset)

    # --- lifecycle --------------------------------------------------------------------------

    def start_task(self) -> None:
        self.consumer = self.consumer_factory()
        self.parts.task.initialize(SinkContext(self))
        self.parts.task.start(self.parts.task_config)
        topics, regex = self.subscription
        pattern = [regex if regex.startswith("^") else "^" + regex] if regex else topics
        self.consumer.subscribe(pattern, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        self.next_commit = time.monotonic() + self.flush_interval_s

    def iteration(self) -> None:
        self._apply_pause_state()
        self._apply_rewinds()
        messages = self.consumer.consume(num_messages=MAX_POLL_RECORDS, timeout=POLL_TIMEOUT_S)
        if self.paused:
            self._unread(messages)
            return
        self.metrics.records_in.add(len(messages))
        self.raw.clear()
        self.consumed.clear()
        self._deliver(self._records(messages))
        if time.monotonic() >= self.next_commit:
            self.commit_offsets()

    def close_task(self, failed: bool) -> None:
        try:
            if not failed and self.consumer is not None and self.assigned:
                self.commit_offsets()
                self.parts.task.close(sorted(self.assigned, key=lambda t: (t.topic, t.partition)))
        finally:
            # the consumer's close revokes the partitions: the task must not see that
            self.closed = True
            try:
                self.parts.task.stop()
            finally:
                self.parts.chain.close()
                if self.consumer is not None:
                    self.consumer.close()

    # --- consuming --------------------------------------------------------------------------

    def _apply_pause_state(self) -> None:
        if self.paused != self.paused_for_pause and self.assigned:
            tps = [self.kafka_tp(tp) for tp in self.assigned]
            (self.consumer.pause if self.paused else self.consumer.resume)(tps)
            self.paused_for_pause = self.paused

    def _apply_rewinds(self) -> None:
        for tp, offset in list(self.rewinds.items()):
            if tp in self.assigned:
                self.consumer.seek(self.kafka_tp(tp, offset))
                self.current[tp] = offset
            del self.rewinds[tp]

    def _unread(self, messages: list[Any]) -> None:
        """Seek back over messages fetched just before a pause, so none is skipped."""
        first: dict[TopicPartition, int] = {}
        for m in messages:
            if m.error() is None:
                first.setdefault(TopicPartition(m.topic(), m.partition()), m.offset())
        for tp, offset in first.items():
            self.consumer.seek(self.kafka_tp(tp, offset))

    def _records(self, messages: list[Any]) -> list[SinkRecord]:
        """The batch as SinkRecords. Without transforms, the common case runs inline (the
        converters called directly, offsets tracked per partition once per batch); a message
        with an error, or one a converter fails on, goes through `_record` and the error
        handler, which runs the converters again with retries and tolerance."""
        if self.parts.chain.stages:
            return [r for r in (self._record(m) for m in messages) if r is not None]
        parts = self.parts
        to_key, to_value = parts.key_converter.to_connect_data, parts.value_converter.to_connect_data
        keep_raw = bool(parts.errors.reporters)
        records: list[SinkRecord] = []
        last: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is not None:
                self._record(message)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            raw_headers = message.headers()
            try:
                key, value = to_key(topic, message.key()), to_value(topic, message.value())
                headers = self._headers(topic, raw_headers) if raw_headers else Headers()
            except Exception:  # noqa: BLE001 - retried, tolerated or failed by the error handler
                record = self._record(message)
                if record is not None:
                    records.append(record)
                last[(topic, partition)] = offset
                continue
            last[(topic, partition)] = offset
            if keep_raw:
                self.raw[(topic, partition, offset)] = (message.key(), message.value(),
                                                        list(raw_headers or []))
            ts_type, ts = message.timestamp()
            records.append(SinkRecord(topic, partition, key.schema, key.value, value.schema, value.value,
                                      ts if ts_type else None, headers, offset,
                                      _TIMESTAMP_TYPES.get(ts_type, "NoTimestampType"),
                                      topic, partition, offset))
        self._track(last)
        return records

    def _track(self, last: dict[tuple[str, int], int]) -> None:
        for (topic, partition), offset in last.items():
            self.consumed[TopicPartition(topic, partition)] = offset + 1
            if topic not in self.topics:
                self.topics.add(topic)
                self.on_topic(topic)

    def _record(self, message: Any) -> SinkRecord | None:
        if message.error() is not None:
            log.warning("%s consumer error: %s", self.id, message.error())
            return None
        tp = TopicPartition(message.topic(), message.partition())
        self.consumed[tp] = message.offset() + 1
        if self.parts.errors.reporters:  # the consumed bytes, for an errant record report
            self.raw[(tp.topic, tp.partition, message.offset())] = (
                message.key(), message.value(), list(message.headers() or []))
        if tp.topic not in self.topics:
            self.topics.add(tp.topic)
            self.on_topic(tp.topic)
        def context() -> ErrorContext:
            return ErrorContext(Stage.KAFKA_CONSUME, "", Exception(), tp.topic, tp.partition,
                                message.offset(), message.key(), message.value(),
                                list(message.headers() or []))

        try:
            record = self._convert(message, context)
            out = self.parts.errors.execute(Stage.TRANSFORMATION, "transformation chain",
                                            lambda: self.parts.chain.apply(record), context)
            return out if isinstance(out, SinkRecord) or out is None else None
        except Skipped:
            return None

    def _convert(self, message: Any, context: Callable[[], ErrorContext]) -> SinkRecord:
        parts, topic = self.parts, message.topic()
        key = parts.errors.execute(Stage.KEY_CONVERTER, parts.converter_names[0],
                                   lambda: parts.key_converter.to_connect_data(topic, message.key()), context)
        value = parts.errors.execute(Stage.VALUE_CONVERTER, parts.converter_names[1],
                                     lambda: parts.value_converter.to_connect_data(topic, message.value()),
                                     context)
        headers = parts.errors.execute(Stage.HEADER_CONVERTER, parts.converter_names[2],
                                       lambda: self._headers(topic, message.headers() or []), context)
        ts_type, ts = message.timestamp()
        return SinkRecord(topic, message.partition(), key.schema, key.value, value.schema, value.value,
                          ts if ts_type else None, headers, kafka_offset=message.offset(),
                          timestamp_type=_TIMESTAMP_TYPES.get(ts_type, "NoTimestampType"),
                          original_topic=topic, original_kafka_partition=message.partition(),
                          original_kafka_offset=message.offset())

    def _headers(self, topic: str, raw: Sequence[tuple[str, bytes | None]]) -> Headers:
        headers = Headers()
        for name, data in raw:
            converted = self.parts.header_converter.to_header(topic, name, data)
            headers.add(name, converted.value, converted.schema)
        return headers

    def _deliver(self, records: list[SinkRecord]) -> None:
        """`put`, retried after a RetriableError with every partition paused meanwhile.
        A batch `put` never took (the task stopping first) leaves no offsets to commit."""
        while not self.stopping.is_set():
            try:
                putting = time.monotonic()
                self.parts.task.put(records)
                self.current.update((tp, o) for tp, o in self.consumed.items() if tp in self.assigned)
                self.consumed.clear()
                self.metrics.batch.since(putting)
                self.metrics.records_out.add(len(records))
                return
            except RetriableError as exc:
                log.warning("%s RetriableException from SinkTask: %s", self.id, exc)
                self._backoff()

    def _backoff(self) -> None:
        tps = [self.kafka_tp(tp) for tp in self.assigned]
        self.consumer.pause(tps)
        deadline = time.monotonic() + self.retry_backoff_s
        while time.monotonic() < deadline and not self.stopping.is_set():
            self.consumer.consume(num_messages=1, timeout=min(0.2, self.retry_backoff_s))
        if not self.paused:
            self.consumer.resume(tps)

    # --- offsets and rebalances ------------------------------------------------------------------

    def report_errant(self, record: SinkRecord, error: BaseException) -> None:
        if not self.parts.errors.tolerate_all:
            raise ConnectError("Tolerance exceeded in error handler") from error
        raw = self.raw.get((record.original_topic or record.topic, record.original_kafka_partition,
                            record.original_kafka_offset))
        key, value, headers = raw if raw is not None else (None, None, [])
        self.parts.errors.report(ErrorContext(
            Stage.TASK_PUT, f"{type(self.parts.task).__module__}.{type(self.parts.task).__qualname__}",
            error, record.original_topic or record.topic, record.original_kafka_partition,
            record.original_kafka_offset, key, value, headers))

    def commit_offsets(self, partitions: set[TopicPartition] | None = None) -> None:
        self.next_commit = time.monotonic() + self.flush_interval_s
        self.parts.errors.flush()
        scope = self.assigned if partitions is None else partitions
        current = {tp: o for tp, o in self.current.items() if tp in scope}
        if not current or self.cancelled:
            return
        committable = self.parts.task.pre_commit(current)
        offsets = {tp: o for tp, o in committable.items()
                   if tp in scope and self.committed.get(tp) != o}
        if not offsets:
            return
        committing = time.monotonic()
        try:
            self.consumer.commit(offsets=[self.kafka_tp(tp, o) for tp, o in offsets.items()],
                                 asynchronous=False)
        except Exception:
            self.metrics.committed(False, committing)
            raise
        self.metrics.committed(True, committing)
        self.committed.update(offsets)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        gained = [TopicPartition(p.topic, p.partition) for p in partitions]
        self.assigned.update(gained)
        if self.paused:
            consumer.pause(partitions)
        self.parts.task.open(gained)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        if self.closed:
            return
        lost = {TopicPartition(p.topic, p.partition) for p in partitions}
        try:
            self.commit_offsets(lost)
        except Exception:
            log.exception("%s offset commit on revocation failed", self.id)
        self._forget(lost)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        if self.closed:
            return
        self._forget({TopicPartition(p.topic, p.partition) for p in partitions})

    def _forget(self, lost: set[TopicPartition]) -> None:
        self.parts.task.close(sorted(lost, key=lambda t: (t.topic, t.partition)))
        self.assigned -= lost
        for tp in lost:
            self.current.pop(tp, None)
            self.committed.pop(tp, None)

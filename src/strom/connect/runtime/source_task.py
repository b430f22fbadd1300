"""`WorkerSourceTask`: poll the task, transform, convert, produce; commit source offsets.

Offsets become committable once their records are acknowledged. Every
`offset.flush.interval.ms`, and at stop, the producer is flushed (up to
`offset.flush.timeout.ms`); if everything sent was acknowledged, the latest offset of
each source partition is written to the offset store and `SourceTask.commit()` runs.
A record dropped by a transform, or skipped under `errors.tolerance=all`, counts as
handled, as in Kafka. A failed send that is not tolerated fails the task before any
offset past it is stored, so nothing is lost: at-least-once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from strom.connect.api.records import SourceRecord
from strom.connect.api.task import RecordMetadata, SourceTask
from strom.connect.runtime.errors import Skipped, Stage
from strom.connect.runtime.offsets import ConnectorOffsetReader, OffsetStore, key_text
from strom.connect.runtime.worker_task import StatusListener, TaskParts, WorkerTask

log = logging.getLogger(__name__)


class SourceContext:
    """The `SourceTaskContext` a task gets."""

    def __init__(self, configs: dict[str, str], reader: ConnectorOffsetReader) -> None:
        self.configs = configs
        self._reader = reader

    @property
    def offset_storage_reader(self) -> ConnectorOffsetReader:
        return self._reader


class WorkerSourceTask(WorkerTask):
    def __init__(self, parts: TaskParts, listener: StatusListener, shutdown_timeout_s: float, *,
                 producer_factory: Callable[[], Any], store: OffsetStore, flush_interval_s: float,
                 flush_timeout_s: float, on_topic: Callable[[str], None]) -> None:
        super().__init__(parts, listener, shutdown_timeout_s)
        self.producer_factory = producer_factory
        self.store = store
        self.flush_interval_s, self.flush_timeout_s = flush_interval_s, flush_timeout_s
        self.on_topic = on_topic
        self.producer: Any = None
        self.pending: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        self.send_error: BaseException | None = None
        self.topics: set[str] = set()
        self.next_commit = 0.0
        self.acked = 0  # acknowledged since the last iteration, added to the metric per batch
        self._last_partition: Any = None  # the last source partition seen and its key text
        self._last_key = ""
        # commit_record is called per acknowledged record only for a task that overrides it
        self._notify_records = type(parts.task).commit_record is not SourceTask.commit_record

    def start_task(self) -> None:
        self.producer = self.producer_factory()
        reader = ConnectorOffsetReader(self.store, self.id.connector)
        self.parts.task.initialize(SourceContext(self.parts.task_config, reader))
        self.parts.task.start(self.parts.task_config)
        self.next_commit = time.monotonic() + self.flush_interval_s

    def iteration(self) -> None:
        if self.wait_if_paused():
            return
        polling = time.monotonic()
        records = self.parts.task.poll()
        self.metrics.polled(len(records or ()), polling)
        if records:
            send = self._send
            for record in records:
                send(record)
        self.producer.poll(0)
        self._check_send_error()
        if time.monotonic() >= self.next_commit:
            self.commit_offsets()

    def _count_acked(self) -> None:
        if self.acked:
            self.metrics.records_out.add(self.acked)
            self.acked = 0

    def _send(self, record: SourceRecord) -> None:
        """The common case inline: no transforms, converters that succeed; any failure
        goes through `_send_guarded`, which runs the stages again under the error handler."""
        parts = self.parts
        if parts.chain.stages:
            self._send_guarded(record)
            return
        topic = record.topic
        try:
            key = parts.key_converter.from_connect_data(topic, record.key_schema, record.key)
            value = parts.value_converter.from_connect_data(topic, record.value_schema, record.value)
            headers = self._headers(record) if len(record.headers) else []
        except Exception:  # noqa: BLE001 - retried, tolerated or failed by the error handler
            self._send_guarded(record)
            return
        self._produce(record, topic, record.kafka_partition, key, value, record.timestamp, headers)

    def _send_guarded(self, record: SourceRecord) -> None:
        parts = self.parts
        try:
            out = parts.errors.execute(Stage.TRANSFORMATION, "transformation chain",
                                       lambda: parts.chain.apply(record))
            if out is None:
                self._handled(record, None)
                return
            key = parts.errors.execute(Stage.KEY_CONVERTER, parts.converter_names[0],
                                       lambda: parts.key_converter.from_connect_data(
                                           out.topic, out.key_schema, out.key))
            value = parts.errors.execute(Stage.VALUE_CONVERTER, parts.converter_names[1],
                                         lambda: parts.value_converter.from_connect_data(
                                             out.topic, out.value_schema, out.value))
            headers = parts.errors.execute(Stage.HEADER_CONVERTER, parts.converter_names[2],
                                           lambda: self._headers(out))
        except Skipped:
            self._handled(record, None)
            return
        self._produce(record, out.topic, out.kafka_partition, key, value, out.timestamp, headers)

    def _headers(self, record: SourceRecord | Any) -> list[tuple[str, bytes | None]]:
        convert = self.parts.header_converter.from_header
        return [(h.key, convert(record.topic, h.key, h.schema, h.value)) for h in record.headers]

    def _produce(self, record: SourceRecord, topic: str, partition: int | None, key: bytes | None,
                 value: bytes | None, timestamp: int | None, headers: list[tuple[str, bytes | None]]
                 ) -> None:
        if topic not in self.topics:
            self.topics.add(topic)
            self.on_topic(topic)
        delivered = (lambda err, msg: self._delivered(record, err, msg)) if self._notify_records \
            else self._acknowledged
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": delivered}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        while True:
            try:
                self.producer.produce(topic, **kwargs)
                break
            except BufferError:
                self.producer.poll(0.1)
        self._remember(record)

    def _remember(self, record: SourceRecord) -> None:
        """The record's offset becomes its partition's latest; the key text of the last
        partition seen is reused (a task sends runs of records of one partition)."""
        partition = record.source_partition
        if partition is None:
            return
        if partition is not self._last_partition and partition != self._last_partition:
            self._last_partition, self._last_key = dict(partition), key_text(self.id.connector, partition)
        offset = record.source_offset
        self.pending[self._last_key] = (self._last_partition, None if offset is None else dict(offset))

    def _handled(self, record: SourceRecord, metadata: RecordMetadata | None) -> None:
        self._remember(record)
        self.parts.task.commit_record(record, metadata)

    def _acknowledged(self, err: Any, msg: Any) -> None:
        """Delivery report for a task that does not override `commit_record`."""
        if err is None:
            self.acked += 1
        else:
            self._delivered(None, err, msg)

    def _delivered(self, record: SourceRecord | None, err: Any, msg: Any) -> None:
        if err is None:
            self.acked += 1
            self.parts.task.commit_record(record, RecordMetadata(msg.topic(), msg.partition(), msg.offset()))
            return
        from strom.client import KafkaClientError

        error = KafkaClientError.from_kafka_error(err, resource=msg.topic())
        try:
            self.parts.errors.execute(Stage.KAFKA_PRODUCE, "producer", lambda: _raise(error))
        except Skipped:
            return
        except Exception as exc:  # noqa: BLE001 - kept and raised on the task thread next
            if self.send_error is None:
                self.send_error = exc

    def _check_send_error(self) -> None:
        """Raise a failed send; first add the acknowledgements counted since the last call
        to the metric (every loop and commit, here and in subclasses, calls this)."""
        self._count_acked()
        if self.send_error is not None:
            raise self.send_error

    def commit_offsets(self) -> bool:
        """Flush, then store the offsets of everything acknowledged; False if not all was."""
        self.next_commit = committing = time.monotonic()
        self.next_commit += self.flush_interval_s
        snapshot = dict(self.pending)
        remaining = self.producer.flush(self.flush_timeout_s)
        self._check_send_error()
        if remaining:
            log.error("%s Failed to flush, timed out while waiting for producer to flush outstanding "
                      "%d messages", self.id, remaining)
            self.metrics.committed(False, committing)
            return False
        if snapshot and not self.cancelled:
            self.store.put(self.id.connector, snapshot)
            for key in snapshot:
                if self.pending.get(key) == snapshot[key]:
                    del self.pending[key]
        self.parts.task.commit()
        self.metrics.committed(True, committing)
        return True

    def close_task(self, failed: bool) -> None:
        try:
            if not failed and self.producer is not None:
                self.commit_offsets()
        finally:
            try:
                self.parts.task.stop()
            finally:
                self.parts.chain.close()
                if self.producer is not None:
                    self.producer.flush(self.flush_timeout_s)


def _raise(error: BaseException) -> None:
    raise error

"""FileStreamSource and FileStreamSink, the connectors of Kafka's connect-file, in Python.

Source: each line of `file` (UTF-8, newline stripped) becomes a STRING record on `topic`;
the source partition is `{"filename": file}` and the offset `{"position": bytes read}`,
so a restarted connector continues after the last committed line, as Kafka's does.
Sink: each record's value, as text, is appended to `file` as one line, each `put`'s
batch written through to the OS at once; `flush` fsyncs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance, at_least, non_empty_string
from strom.connect.api.connector import ExactlyOnceSupport, SinkConnector, SourceConnector
from strom.connect.api.errors import ConnectError
from strom.connect.api.records import SinkRecord, SourceRecord
from strom.connect.api.task import SinkTask, SourceTask, TopicPartition
from strom.connect.connectors.base import PropsConnector
from strom.connect.data.schema import STRING_SCHEMA
from strom.connect.version import VERSION

FILE = "file"
TOPIC = "topic"
BATCH_SIZE = "batch.size"
POSITION = "position"
FILENAME = "filename"

SOURCE_CONFIG = (
    ConfigDef()
    .define(FILE, ConfigType.STRING, None, Importance.HIGH, "Source filename. If not specified, the "
            "standard input will be used")
    .define(TOPIC, ConfigType.LIST, importance=Importance.HIGH,
            documentation="The topic to publish data to", validator=lambda n, v: _one_topic(n, v))
    .define(BATCH_SIZE, ConfigType.INT, 2000, Importance.LOW,
            "The maximum number of records the source task can read from the file each time it is "
            "polled", validator=at_least(1))
)
SINK_CONFIG = ConfigDef().define(FILE, ConfigType.STRING, None, Importance.HIGH,
                                 "Destination filename. If not specified, the standard output will "
                                 "be used", validator=non_empty_string)


def _one_topic(name: str, value: Any) -> None:
    from strom.connect.api.errors import ConfigError

    if value is not None and len(value) != 1:
        raise ConfigError(name, ",".join(value), "'topic' in FileStreamSourceConnector configuration "
                          "requires definition of a single topic")


class FileStreamSourceConnector(PropsConnector, SourceConnector):
    """Kafka's FileStreamSourceConnector: one task reading one file."""
    config_def = SOURCE_CONFIG
    max_tasks = 1

    def task_class(self) -> type[FileStreamSourceTask]:
        return FileStreamSourceTask

    def exactly_once_support(self, props: Mapping[str, str]) -> ExactlyOnceSupport | None:
        """Its offsets are positions in the file, so a transaction can carry them (as Kafka's)."""
        return ExactlyOnceSupport.SUPPORTED


class FileStreamSourceTask(SourceTask):
    """Reads lines from the stored position on; a partial last line waits for its newline."""

    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        parsed = SOURCE_CONFIG.parse(props)
        self.filename: str | None = parsed[FILE]
        self.topic = parsed[TOPIC][0]
        self.batch_size = int(parsed[BATCH_SIZE])
        self.stream: IO[bytes] | None = None
        self.position = 0
        self.buffer = b""

    def _open(self) -> IO[bytes] | None:
        if self.filename is None:
            return sys.stdin.buffer
        try:
            stream = open(self.filename, "rb")  # noqa: SIM115 - kept open across polls
        except FileNotFoundError:
            return None
        stored = self.context.offset_storage_reader.offset({FILENAME: self.filename})
        if stored is not None:
            self.position = int(stored.get(POSITION, 0))
            stream.seek(self.position)
        return stream

    def poll(self) -> list[SourceRecord] | None:
        if self.stream is None:
            self.stream = self._open()
            if self.stream is None:
                time.sleep(0.2)
                return None
        chunk = self.stream.read(64 * 1024) if self.filename else self.stream.readline()
        if not chunk and not self.buffer:
            time.sleep(0.05)
            return None
        self.buffer += chunk
        return self._records() or None

    def _records(self) -> list[SourceRecord]:
        """Up to `batch.size` complete lines of the buffer (split at once, not line by
        line: cutting one line at a time off a 64 KiB buffer copies the rest each time)."""
        lines = self.buffer.split(b"\n", self.batch_size)
        self.buffer = lines.pop()  # a partial line, or the lines past the batch
        records: list[SourceRecord] = []
        partition = {FILENAME: self.filename} if self.filename else None
        topic, position = self.topic, self.position
        for line in lines:
            position += len(line) + 1
            text = line.decode("utf-8", errors="replace").removesuffix("\r")
            records.append(SourceRecord(topic, None, None, None, STRING_SCHEMA, text, None, None, partition,
                                        {POSITION: position} if partition else None))
        self.position = position
        return records

    def stop(self) -> None:
        if self.stream is not None and self.filename is not None:
            self.stream.close()


class FileStreamSinkConnector(PropsConnector, SinkConnector):
    """Kafka's FileStreamSinkConnector: appends values to one file."""
    config_def = SINK_CONFIG

    def task_class(self) -> type[FileStreamSinkTask]:
        return FileStreamSinkTask


class FileStreamSinkTask(SinkTask):
    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        self.filename: str | None = SINK_CONFIG.parse(props)[FILE]
        if self.filename is None:
            self.out: IO[str] = sys.stdout
        else:
            try:
                self.out = open(self.filename, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise ConnectError(f"Couldn't find or create file '{self.filename}' for "
                                   f"FileStreamSinkTask") from exc

    def put(self, records: Sequence[SinkRecord]) -> None:
        """The batch's lines in one write, handed to the OS at once as Kafka's PrintStream
        does per line (so readers see them); `flush` makes them durable."""
        lines = []
        for record in records:
            value = record.value
            if isinstance(value, bytes | bytearray):
                value = bytes(value).decode("utf-8", errors="replace")
            lines.append(f"{value}\n")
        self.out.write("".join(lines))
        self.out.flush()

    def flush(self, current_offsets: Mapping[TopicPartition, int]) -> None:
        self.out.flush()
        if self.filename is not None:
            os.fsync(self.out.fileno())

    def stop(self) -> None:
        if self.filename is not None and not self.out.closed:
            self.out.flush()
            self.out.close()

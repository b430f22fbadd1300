"""Python twins of tests/connect/java/conformance/ConformanceConnectors.java, for the REST
conformance test: CountingSource writes 0, 1, 2, ... (offset {"n": n} under
{"source": "count"}); DiscardSink drops what it gets. Copied into a plugin.path directory."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from strom.connect import (
    ConfigDef,
    ConfigType,
    Importance,
    SinkConnector,
    SinkRecord,
    SinkTask,
    SourceConnector,
    SourceRecord,
    SourceTask,
)
from strom.connect.data.schema import INT64_SCHEMA

PARTITION = {"source": "count"}


class CountingSourceConnector(SourceConnector):
    def version(self) -> str:
        return "1.0"

    def config(self) -> ConfigDef:
        return ConfigDef().define("topic", ConfigType.STRING, importance=Importance.HIGH,
                                  documentation="Topic to write to.")

    def start(self, props: Mapping[str, str]) -> None:
        self.props = dict(props)

    def task_class(self) -> type[CountingSourceTask]:
        return CountingSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [self.props]

    def stop(self) -> None:
        """Nothing to release."""


class CountingSourceTask(SourceTask):
    def version(self) -> str:
        return "1.0"

    def start(self, props: Mapping[str, str]) -> None:
        self.topic = props["topic"]
        last = self.context.offset_storage_reader.offset(PARTITION)
        self.next = int(last["n"]) + 1 if last else 0

    def poll(self) -> list[SourceRecord] | None:
        time.sleep(0.1)
        n, self.next = self.next, self.next + 1
        return [SourceRecord(self.topic, None, None, None, INT64_SCHEMA, n,
                             source_partition=PARTITION, source_offset={"n": n})]

    def stop(self) -> None:
        """Nothing to release."""


class DiscardSinkConnector(SinkConnector):
    def version(self) -> str:
        return "1.0"

    def config(self) -> ConfigDef:
        return ConfigDef()

    def start(self, props: Mapping[str, str]) -> None:
        self.props = dict(props)

    def task_class(self) -> type[DiscardSinkTask]:
        return DiscardSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [self.props]

    def stop(self) -> None:
        """Nothing to release."""


class DiscardSinkTask(SinkTask):
    def version(self) -> str:
        return "1.0"

    def start(self, props: Mapping[str, str]) -> None:
        """Nothing to set up."""

    def put(self, records: Sequence[SinkRecord]) -> None:
        """Dropped."""

    def stop(self) -> None:
        """Nothing to release."""

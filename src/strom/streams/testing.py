"""`TopologyTestDriver`: run a topology with no broker, record by record, deterministically.

Like Kafka Streams' TopologyTestDriver: each sub-topology runs as one task on partition 0;
a record piped into an input topic is processed at once, together with everything it
causes, including records written to internal (repartition) topics, which are fed back to
the task that reads them. Every record sent anywhere (output topics, repartition topics,
changelogs) is captured per topic and read through `TestOutputTopic`. Wall-clock time is a
mock clock moved only by `advance_wall_clock_time`, which fires WALL_CLOCK_TIME
punctuations; STREAM_TIME punctuations follow the piped timestamps.

    driver = TopologyTestDriver(builder.build(), application_id="wc")
    lines = driver.create_input_topic("lines", Serdes.String, Serdes.String)
    counts = driver.create_output_topic("counts", Serdes.String, Serdes.Long)
    lines.pipe_input(None, "a b a", timestamp=10)
    assert counts.read_key_values_to_map() == {"a": 2, "b": 1}
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strom.streams.errors import StreamsError
from strom.streams.global_state import GlobalState
from strom.streams.record import ConsumedRecord, Headers, ProducedRecord
from strom.streams.serdes import BytesSerde, Serde
from strom.streams.task import Task, TaskEnv
from strom.streams.timestamps import TimestampExtractor
from strom.streams.topology import Topology, physical_topic


@dataclass(frozen=True)
class TestRecord:
    """An output record, deserialized."""

    __test__ = False  # not a pytest test class

    key: Any
    value: Any
    timestamp: int
    headers: Headers = ()


class TopologyTestDriver:
    """Runs `topology` in this thread; see the module docstring."""

    __test__ = False

    def __init__(self, topology: Topology, application_id: str = "test-app", *,
                 initial_wall_clock_ms: int = 0, default_key_serde: Serde[Any] | None = None,
                 default_value_serde: Serde[Any] | None = None,
                 timestamp_extractor: TimestampExtractor | None = None,
                 skip_bad_records: bool = False, state_dir: str | Path | None = None,
                 continue_on_processing_error: bool = False,
                 dead_letter_topic: str | None = None) -> None:
        self.topology = topology
        self._wall_clock_ms = initial_wall_clock_ms
        self._own_dir = state_dir is None
        self._state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp("-streams"))
        env = TaskEnv(application_id, self, lambda: self._wall_clock_ms,
                      default_key_serde or BytesSerde(), default_value_serde or BytesSerde(),
                      state_dir=self._state_dir, skip_bad_records=skip_bad_records,
                      continue_on_processing_error=continue_on_processing_error,
                      dead_letter_topic=dead_letter_topic)
        if timestamp_extractor is not None:
            env.timestamp_extractor = timestamp_extractor
        self.env = env
        self.global_state = GlobalState(topology.global_stores, application_id,
                                        self._state_dir / "global", env.default_key_serde,
                                        env.default_value_serde)
        env.global_stores = self.global_state.stores
        self.tasks = [Task(topology, sub, 0, env) for sub in topology.subtopologies()]
        self._readers: dict[str, Task] = {}
        for task in self.tasks:
            for topic in task.sub.source_topics:
                self._readers[physical_topic(topology, topic, application_id)] = task
        for task in self.tasks:
            task.initialize()
        self._outputs: dict[str, deque[ProducedRecord]] = {}
        self._offsets: dict[str, itertools.count[int]] = {}
        self._pending: deque[ConsumedRecord] = deque()
        self._processing = False

    # --- the collector ----------------------------------------------------------------

    def send(self, record: ProducedRecord) -> None:
        self._outputs.setdefault(record.topic, deque()).append(record)
        if record.topic in self._readers:
            self._pending.append(self._consumed(record.topic, record.key, record.value,
                                                record.timestamp, record.headers))

    def _consumed(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                  headers: Headers) -> ConsumedRecord:
        offsets = self._offsets.setdefault(topic, itertools.count())
        return ConsumedRecord(topic, 0, next(offsets), timestamp, key, value, tuple(headers))

    # --- input ------------------------------------------------------------------------

    def pipe_raw(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                 headers: Headers = ()) -> None:
        """Feed one serialized record and process everything it causes."""
        if topic in self.global_state.topics():
            self.global_state.apply(self._consumed(topic, key, value, timestamp, headers))
            return
        if topic not in self._readers:
            raise StreamsError(f"no source reads topic {topic!r}")
        self._pending.append(self._consumed(topic, key, value, timestamp, headers))
        self._drain()

    def _drain(self) -> None:
        if self._processing:
            return
        self._processing = True
        try:
            while self._pending:
                consumed = self._pending.popleft()
                task = self._readers[consumed.topic]
                task.add_records([consumed])
                task.process()
        finally:
            self._processing = False

    def advance_wall_clock_time(self, ms: int) -> None:
        """Move the mock clock forward and fire the WALL_CLOCK_TIME punctuations due."""
        if ms < 0:
            raise ValueError("the wall clock does not go back")
        self._wall_clock_ms += ms
        for task in self.tasks:
            task.maybe_punctuate_wall_clock()
        self._drain()

    @property
    def wall_clock_ms(self) -> int:
        return self._wall_clock_ms

    def create_input_topic(self, topic: str, key_serde: Serde[Any] | None = None,
                           value_serde: Serde[Any] | None = None, *, start_timestamp: int = 0,
                           auto_advance_ms: int = 0) -> TestInputTopic:
        return TestInputTopic(self, topic, key_serde or self.env.default_key_serde,
                              value_serde or self.env.default_value_serde, start_timestamp,
                              auto_advance_ms)

    # --- output -----------------------------------------------------------------------

    def create_output_topic(self, topic: str, key_serde: Serde[Any] | None = None,
                            value_serde: Serde[Any] | None = None) -> TestOutputTopic:
        return TestOutputTopic(self._outputs.setdefault(topic, deque()), topic,
                               key_serde or self.env.default_key_serde,
                               value_serde or self.env.default_value_serde)

    def produced_topics(self) -> list[str]:
        return [topic for topic, records in self._outputs.items() if records]

    def get_state_store(self, name: str) -> Any:
        for task in self.tasks:
            if name in task.stores:
                return task.stores[name]
        if name in self.global_state.stores:
            return self.global_state.stores[name]
        raise StreamsError(f"no store named {name!r}")

    def close(self) -> None:
        for task in self.tasks:
            task.flush()
            task.close()
        self.global_state.close()
        if self._own_dir:
            shutil.rmtree(self._state_dir, ignore_errors=True)

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TestInputTopic:
    """Pipes typed records into one topic; timestamps from the caller or a clock of its own."""

    __test__ = False

    def __init__(self, driver: TopologyTestDriver, topic: str, key_serde: Serde[Any],
                 value_serde: Serde[Any], start_timestamp: int, auto_advance_ms: int) -> None:
        self._driver = driver
        self.topic = topic
        self._key_serde = key_serde
        self._value_serde = value_serde
        self._time = start_timestamp
        self._advance = auto_advance_ms

    def pipe_input(self, key: Any = None, value: Any = None, timestamp: int | None = None,
                   headers: Headers = ()) -> None:
        if timestamp is None:
            timestamp = self._time
            self._time += self._advance
        self._driver.pipe_raw(self.topic, self._key_serde.serialize(self.topic, key),
                              self._value_serde.serialize(self.topic, value), timestamp, headers)

    def pipe_value_list(self, values: Iterable[Any]) -> None:
        for value in values:
            self.pipe_input(None, value)

    def pipe_key_value_list(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        for key, value in pairs:
            self.pipe_input(key, value)

    def advance_time(self, ms: int) -> None:
        self._time += ms


class TestOutputTopic:
    """Reads (and removes) the records captured for one topic, oldest first."""

    __test__ = False

    def __init__(self, queue: deque[ProducedRecord], topic: str, key_serde: Serde[Any],
                 value_serde: Serde[Any]) -> None:
        self._queue = queue
        self.topic = topic
        self._key_serde = key_serde
        self._value_serde = value_serde

    def read_record(self) -> TestRecord:
        if not self._queue:
            raise StreamsError(f"no record left in {self.topic!r}")
        raw = self._queue.popleft()
        return TestRecord(self._key_serde.deserialize(self.topic, raw.key),
                          self._value_serde.deserialize(self.topic, raw.value), raw.timestamp,
                          raw.headers)

    def read_value(self) -> Any:
        return self.read_record().value

    def read_key_value(self) -> tuple[Any, Any]:
        record = self.read_record()
        return record.key, record.value

    def read_records_to_list(self) -> list[TestRecord]:
        return [self.read_record() for _ in range(len(self._queue))]

    def read_values_to_list(self) -> list[Any]:
        return [r.value for r in self.read_records_to_list()]

    def read_key_values_to_list(self) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read_records_to_list()]

    def read_key_values_to_map(self) -> dict[Any, Any]:
        """The latest value per key; a tombstone removes the key."""
        found: dict[Any, Any] = {}
        for key, value in self.read_key_values_to_list():
            if value is None:
                found.pop(key, None)
            else:
                found[key] = value
        return found

    def read_raw(self) -> list[ProducedRecord]:
        """The records as sent (bytes), e.g. to check a changelog's format."""
        found = list(self._queue)
        self._queue.clear()
        return found

    def queue_size(self) -> int:
        return len(self._queue)

    def is_empty(self) -> bool:
        return not self._queue

"""The Processor API: what a processor is, and what it may ask of its context.

A processor receives records one at a time (`process`), may forward any number of
records to its children, reads and writes the state stores connected to it, and schedules
punctuations: callbacks that run by stream time (driven by record timestamps, so they
are deterministic and replay the same) or by wall-clock time (driven by the task's clock).
This is Kafka Streams' `org.apache.kafka.streams.processor.api`, in Python: every DSL
operation is a processor too.

    class Dedup(Processor):
        def init(self, context):
            super().init(context)
            self.seen = context.get_state_store("seen")
        def process(self, record):
            if self.seen.get(record.key) is None:
                self.seen.put(record.key, record.timestamp)
                self.context.forward(record)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from strom.streams.record import Record

if TYPE_CHECKING:
    from strom.streams.serdes import Serde


class PunctuationType(enum.Enum):
    """What drives a punctuation: record timestamps or the wall clock."""

    STREAM_TIME = "stream-time"
    WALL_CLOCK_TIME = "wall-clock-time"


Punctuator = Callable[[int], None]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class ProcessorContext(Protocol):
    """What the task offers a processor (Kafka's `api.ProcessorContext`)."""

    @property
    def application_id(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def partition(self) -> int:
        """The task's partition number (a foreign-key subscription carries it)."""

    def forward(self, record: Record, to: str | None = None) -> None:
        """Send `record` to every child, or only to the child named `to`."""

    def get_state_store(self, name: str) -> Any:
        """A store connected to this processor; others raise TopologyError."""

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Punctuator) -> Cancellable:
        """Call `callback(time)` every `interval_ms` of stream or wall-clock time."""

    def current_stream_time_ms(self) -> int: ...

    def current_system_time_ms(self) -> int: ...

    @property
    def default_key_serde(self) -> Serde[Any]:
        """The application's default key serde (for serdes nobody named)."""

    @property
    def default_value_serde(self) -> Serde[Any]: ...

    def commit(self) -> None:
        """Ask for a commit as soon as the current record is done."""


class Processor:
    """Base class of processors; override `process`, and `init`/`close` when needed."""

    context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what `init` took; stores are closed by the task."""


ProcessorSupplier = Callable[[], Processor]

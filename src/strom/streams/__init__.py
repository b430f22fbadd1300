"""Strom Streams: Kafka Streams' processing model in Python, on any Kafka-compatible cluster.

    from strom.streams import Grouped, Serdes, StreamsBuilder
    from strom.streams.runtime.app import StreamsApp

    builder = StreamsBuilder()
    (builder.stream("lines", value_serde=Serdes.String)
        .flat_map_values(str.split)
        .group_by(lambda key, word: word, Grouped(None, Serdes.String, Serdes.String))
        .count()
        .to_stream()
        .to("counts"))
    StreamsApp(builder.build(), application_id="wc", bootstrap_servers="localhost:9092").run()

Layers: `topology`/`processor`/`task` (the Processor API and how a task runs it), `state`
(stores and changelogs), `dsl` (streams and tables compiled into a topology), `testing`
(`TopologyTestDriver`, no broker), `runtime` (the application on a cluster). See
docs/streams.md for the guide and docs/architecture.md for the module map.
"""

from strom.streams.dsl import (
    Change,
    GlobalTable,
    Grouped,
    Materialized,
    Stream,
    StreamsBuilder,
    Suppressed,
    Table,
)
from strom.streams.errors import StreamsError, TopologyError
from strom.streams.processor import Processor, ProcessorContext, PunctuationType
from strom.streams.record import Record
from strom.streams.serdes import Serde, Serdes
from strom.streams.state.stores import Stores
from strom.streams.testing import TopologyTestDriver
from strom.streams.topology import Topology
from strom.streams.windows import (
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Window,
    Windowed,
)

__all__ = [
    "Change", "GlobalTable", "Grouped", "JoinWindows", "Materialized", "Processor",
    "ProcessorContext", "PunctuationType", "Record", "Serde", "Serdes", "SessionWindows",
    "SlidingWindows", "Stores", "Stream",
    "StreamsBuilder", "StreamsError", "Suppressed", "Table", "TimeWindows", "Topology",
    "TopologyError", "TopologyTestDriver", "Window", "Windowed",
]

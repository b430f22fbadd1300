"""The DSL: `StreamsBuilder` → `Stream`/`Table`/grouped streams → a `Topology`."""

from strom.streams.dsl.builder import StreamsBuilder
from strom.streams.dsl.change import Change
from strom.streams.dsl.grouped import GroupedStream, SessionWindowedStream, TimeWindowedStream
from strom.streams.dsl.materialized import Grouped, Materialized
from strom.streams.dsl.stream import Stream
from strom.streams.dsl.suppress import Suppressed
from strom.streams.dsl.table import GlobalTable, GroupedTable, Table

__all__ = ["Change", "GlobalTable", "Grouped", "GroupedStream", "GroupedTable", "Materialized",
           "SessionWindowedStream", "Stream", "StreamsBuilder", "Suppressed", "Table",
           "TimeWindowedStream"]

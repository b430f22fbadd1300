"""The exceptions Strom Streams raises, one family so an application can catch them all.

Kafka Streams separates errors in the user's topology (found when it is built), errors in
data (a record a serde or extractor cannot handle) and errors of the runtime (a broker or
a store failed); each has its own class here for the same reason: the first is a bug to
fix, the second a record to skip or dead-letter, the third a restart.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Base of every Strom Streams error."""


class TopologyError(StreamsError):
    """The topology is invalid: unknown parent, duplicate name, store not connected."""


class SerializationError(StreamsError):
    """A serde could not turn a value into bytes or bytes into a value."""


class InvalidTimestampError(StreamsError):
    """A timestamp extractor returned a negative timestamp under FailOnInvalidTimestamp."""


class StoreError(StreamsError):
    """A state store was used wrongly (closed, wrong kind) or its engine failed."""


class TaskMigratedError(StreamsError):
    """The task's partitions were assigned elsewhere while it was working on them."""

"""`Change`: the value a table node forwards: the new value and the one it replaces.

Downstream table operations need the old value to retract it (a re-grouping subtracts it,
a filter emits a tombstone for a row that stops matching). Kafka Streams sends old values
only when a downstream node asks (`enableSendingOldValues`); a `TableFlags` object shared
by a table and its processors carries that request, read when processors start.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

from strom.streams.errors import SerializationError
from strom.streams.serdes import Serde


class Change(NamedTuple):
    new: Any
    old: Any = None


@dataclass
class TableFlags:
    """Set by downstream operations while the topology is built."""

    send_old_values: bool = False


class ChangeSerde(Serde[Change]):
    """A `Change` on a repartition topic, as Kafka's ChangedSerializer writes it (3.4+):
    new only: `[new][0x01]`; old only: `[old][0x00]`; both: `[len(new): 4][new][old][0x02]`.
    """

    def __init__(self, inner: Serde[Any] | None) -> None:
        self.inner: Serde[Any] = inner  # type: ignore[assignment]  # None until resolved

    def resolved(self, default: Serde[Any]) -> Serde[Change]:
        return self if self.inner is not None else ChangeSerde(default)

    def serialize(self, topic: str, value: Change | None) -> bytes | None:
        if value is None:
            return None
        new = None if value.new is None else self.inner.serialize(topic, value.new)
        old = None if value.old is None else self.inner.serialize(topic, value.old)
        if new is not None and old is not None:
            return struct.pack(">i", len(new)) + new + old + b"\x02"
        if new is not None:
            return new + b"\x01"
        if old is not None:
            return old + b"\x00"
        raise SerializationError("a change with neither a new nor an old value")

    def deserialize(self, topic: str, data: bytes | None) -> Change | None:
        if data is None:
            return None
        flag, body = data[-1], data[:-1]
        if flag == 1:
            return Change(self.inner.deserialize(topic, body), None)
        if flag == 0:
            return Change(None, self.inner.deserialize(topic, body))
        if flag == 2:
            size = struct.unpack_from(">i", body)[0]
            return Change(self.inner.deserialize(topic, body[4:4 + size]),
                          self.inner.deserialize(topic, body[4 + size:]))
        raise SerializationError(f"unknown change flag {flag}")

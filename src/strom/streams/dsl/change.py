"""`Change`: the value a table node forwards: the new value and the one it replaces.

Downstream table operations need the old value to retract it (a re-grouping subtracts it,
a filter emits a tombstone for a row that stops matching). Kafka Streams sends old values
only when a downstream node asks (`enableSendingOldValues`); a `TableFlags` object shared
by a table and its processors carries that request, read when processors start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


class Change(NamedTuple):
    new: Any
    old: Any = None


@dataclass
class TableFlags:
    """Set by downstream operations while the topology is built."""

    send_old_values: bool = False

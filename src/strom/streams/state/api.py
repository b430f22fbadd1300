"""What every state store is to a task, and what a task offers a store.

A store is built per task from a `StoreBuilder` (one builder in the topology, one store
per task that runs the sub-topology). The task calls `init` with a `StoreContext`, through
which a logged store writes its changelog: the store's changes as records on
`<application.id>-<store>-changelog`, partition = the task's partition, keys and values
in the same bytes Kafka Streams writes (see `state.key_schema`). On start the runtime
replays that topic through `restore` before the task processes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from strom.streams.record import Headers
    from strom.streams.serdes import Serde

ChangelogEntry = tuple[bytes, bytes | None, int]  # key, value (None deletes), timestamp


class StoreContext(Protocol):
    """The task as a store sees it."""

    @property
    def application_id(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def default_key_serde(self) -> Serde[Any]: ...

    @property
    def default_value_serde(self) -> Serde[Any]: ...

    @property
    def state_dir(self) -> Path | None:
        """The task's directory for persistent stores; None keeps them in a temporary one."""

    def record_timestamp(self) -> int:
        """The timestamp of the record being processed (or the punctuation time)."""

    def stream_time(self) -> int: ...

    def log_change(self, store: str, key: bytes, value: bytes | None, timestamp: int,
                   headers: Headers = ()) -> None:
        """Write one changelog record of `store` (a no-op when logging is off)."""


class StateStore(Protocol):
    name: str
    persistent: bool

    def init(self, context: StoreContext) -> None: ...

    def restore(self, entries: Iterable[ChangelogEntry]) -> None:
        """Apply changelog records, oldest first, without logging them again."""

    def flush(self) -> None: ...

    def close(self) -> None: ...


class StoreBuilder(Protocol):
    """Makes one store per task; says whether and how its changes are logged."""

    @property
    def name(self) -> str: ...

    @property
    def logging_enabled(self) -> bool: ...

    def changelog_config(self) -> Mapping[str, str]:
        """Topic configs of the changelog (compact; compact,delete for windows)."""

    def build(self) -> StateStore: ...

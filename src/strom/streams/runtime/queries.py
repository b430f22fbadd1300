"""Interactive queries: read an application's state by key, from any instance.

Each instance knows which partitions every instance owns from the consumer group itself
(DescribeGroups: members and their assignments) and each instance's query address
(`application_server`, Kafka's `application.server`) from its consumer's client id,
which ends in `@host:port`. A key's partition is computed as Kafka's default partitioner
does (murmur2 of the serialized key), so `where(store, key)` names the instance that
holds it without asking anyone, and the HTTP endpoint (`queries_http`) forwards a query
for a key held elsewhere to that instance.

Reads of local stores happen beside the stream thread: point reads are safe on both
engines; a range scan of an in-memory store racing a write may fail and is retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.streams.errors import StreamsError
from strom.streams.partitioning import partition_for
from strom.streams.topology import physical_topic

if TYPE_CHECKING:
    from strom.streams.runtime.app import StreamsApp

SERVER_MARK = "@"


class NotHostedHere(StreamsError):
    """The key's partition is owned by another instance (or by none right now)."""


@dataclass(frozen=True)
class KeyLocation:
    store: str
    partition: int
    server: str | None  # host:port of the owner; None: not assigned right now
    local: bool


class Queries:
    """Key lookups over one application's stores, local or located elsewhere."""

    def __init__(self, app: StreamsApp) -> None:
        self.app = app
        self._subs = {store: sub for sub in app.topology.subtopologies() for store in sub.stores}

    # --- where ------------------------------------------------------------------------

    def instances(self) -> dict[str, list[tuple[str, int]]]:
        """Query address → the (topic, partition)s that instance consumes."""
        from strom.client.admin import results

        clients, group = self.app.clients, self.app.config.application_id
        futures = clients.admin().describe_consumer_groups([group],
                                                           request_timeout=clients.timeout)
        description = results(clients, futures)[group]
        found: dict[str, list[tuple[str, int]]] = {}
        for member in description.members:
            server = member.client_id.rpartition(SERVER_MARK)[2] if SERVER_MARK in \
                member.client_id else f"<no application_server: {member.client_id}>"
            parts = found.setdefault(server, [])
            parts.extend((tp.topic, tp.partition) for tp in member.assignment.topic_partitions)
        return found

    def where(self, store: str, key: Any) -> KeyLocation:
        sub = self._subs.get(store)
        if sub is None:
            raise StreamsError(f"no store named {store!r}")
        thread = self._thread()
        raw = self._key_serde(store).serialize(store, key)
        if raw is None:
            raise StreamsError("a key may not be None")
        partition = partition_for(raw, thread.plan.tasks[sub.id])
        task_id = f"{sub.id}_{partition}"
        if self._task(task_id) is not None:
            return KeyLocation(store, partition, self.app.config.application_server, True)
        app = self.app.config.application_id
        source = physical_topic(self.app.topology, sub.source_topics[0], app)
        for server, partitions in self.instances().items():
            if (source, partition) in partitions:
                return KeyLocation(store, partition, server, False)
        return KeyLocation(store, partition, None, False)

    # --- local reads ------------------------------------------------------------------

    def get(self, store: str, key: Any) -> Any:
        """The value of `key` in a key-value store hosted here; NotHostedHere otherwise."""
        return self._local(store, key).get(key)

    def fetch_windows(self, store: str, key: Any, time_from: int, time_to: int
                      ) -> list[tuple[int, Any]]:
        """(window start, value) of `key` in a window store hosted here."""
        return self._retrying(lambda: self._local(store, key).fetch_range(key, time_from,
                                                                             time_to))

    def _local(self, store: str, key: Any) -> Any:
        location = self.where(store, key)
        task = self._task(f"{self._subs[store].id}_{location.partition}")
        if task is None or not location.local:
            raise NotHostedHere(f"{store!r} partition {location.partition} is hosted by "
                                f"{location.server or 'no instance right now'}")
        return task.stores[store]

    def _key_serde(self, store: str) -> Any:
        tasks: list[Any] = [t for thread in list(self.app.stream_threads)
                            for t in list(thread.tasks.values())]
        for task in tasks:
            if store in task.stores:
                return task.stores[store].key_serde
        spec = self.app.topology.store_builders[store]
        return getattr(spec, "key_serde", None) or self.app.config.default_key_serde

    def _task(self, task_id: str) -> Any:
        """The task, in whichever stream thread of this instance runs it; None if none."""
        for thread in list(self.app.stream_threads):
            task = thread.tasks.get(task_id)
            if task is not None:
                return task
        return None

    def _thread(self) -> Any:
        if self.app.stream_thread is None:
            raise StreamsError("the application is not running")
        return self.app.stream_thread

    @staticmethod
    def _retrying(read: Any, attempts: int = 3) -> Any:
        for attempt in range(attempts):
            try:
                return read()
            except RuntimeError:  # a sorted dict changed under the scan
                if attempt == attempts - 1:
                    raise
        return None

"""Share sessions and the share-partitions led here (Kafka's SharePartitionManager).

A share consumer fetches with a share session per (group, member) on each broker:
ShareSessionEpoch 0 opens one (replacing any earlier session; acknowledgements are not
allowed with it), each later request carries the session's current epoch, which then
moves on (1, 2, ... wrapping to 1), and -1 closes it. A wrong epoch is
INVALID_SHARE_SESSION_EPOCH, a session this broker does not hold SHARE_SESSION_NOT_FOUND.
Closing a session releases what its member still holds, as Kafka does; so does closing
the connection the session was opened on (a consumer that dies hands its records back
without waiting for their locks to expire).

The share-partitions themselves (`SharePartition`) are loaded on first fetch from the
share coordinator (`ShareStateStore`, Kafka's persister), or start at the offset
`share.auto.offset.reset` says (latest, Kafka's default, or earliest) if it holds no
state for them. A share-partition belongs to a leader epoch: one loaded before this
broker lost and regained the leadership is read again.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from kio.schema.errors import ErrorCode

from strom.broker.share.partition import SharePartition, StateBatch

TopicIdPartition = tuple[uuid.UUID, int]
ShareKey = tuple[str, str, int]  # group, topic name, partition
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
MAX_EPOCH = 2**31 - 1


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= MAX_EPOCH else epoch + 1


@dataclass
class ShareSession:
    """One member's share session on this broker: its partitions and expected epoch."""

    group_id: str
    member_id: str
    epoch: int
    partitions: dict[TopicIdPartition, None] = field(default_factory=dict)  # ordered set
    connection: str | None = None  # the client connection that opened it (epoch 0)


@dataclass(frozen=True, slots=True)
class ShareSettings:
    """A group's share settings, resolved (group config, else the broker's)."""

    lock_ms: int = 30_000
    delivery_limit: int = 5
    max_in_flight: int = 2000
    auto_offset_reset: str = "latest"
    renew_enabled: bool = True  # share.renew.acknowledge.enable (a group config only)


class ShareStateStore(Protocol):
    """Where share-partition state survives restarts and leader changes: the share
    coordinator (`strom.broker.share.persister`)."""

    async def read(self, key: ShareKey, leader_epoch: int
                   ) -> tuple[ErrorCode, tuple[int, int, list[StateBatch]] | None]:
        """(state epoch, start offset, batches), None if never written."""
        ...

    async def write(self, key: ShareKey, state_epoch: int, leader_epoch: int,
                    start_offset: int, batches: list[StateBatch]) -> ErrorCode: ...

    async def initialize(self, key: ShareKey, state_epoch: int, start_offset: int
                         ) -> ErrorCode: ...

    async def delete(self, key: ShareKey) -> ErrorCode: ...

    async def summary(self, key: ShareKey) -> tuple[ErrorCode, tuple[int, int] | None]:
        """(state epoch, start offset), None if never written."""
        ...


class ShareManager:
    """Sessions and share-partitions of this broker."""

    def __init__(self, clock: Callable[[], int], store: ShareStateStore | None = None,
                 max_sessions: int = 2000) -> None:
        self.clock = clock
        self.max_sessions = max_sessions
        self.store = store
        self.sessions: dict[tuple[str, str], ShareSession] = {}
        self.partitions: dict[ShareKey, SharePartition] = {}
        self.topic_ids: dict[ShareKey, uuid.UUID] = {}
        self._locks: dict[ShareKey, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[ErrorCode]] = set()

    # --- sessions -----------------------------------------------------------------------

    def open(self, group_id: str, member_id: str, epoch: int, added: Iterable[TopicIdPartition],
             forgotten: Iterable[TopicIdPartition], acknowledging: bool,
             connection: str | None = None) -> tuple[ErrorCode, ShareSession | None]:
        """The session a ShareFetch runs in (see the module docstring); a new one is tied
        to the ``connection`` it was opened on."""
        key = (group_id, member_id)
        if epoch == INITIAL_EPOCH:
            if acknowledging:
                return ErrorCode.invalid_request, None
            self.close(group_id, member_id)
            if len(self.sessions) >= self.max_sessions:  # group.share.max.share.sessions
                return ErrorCode.share_session_limit_reached, None
            fresh = self.sessions[key] = ShareSession(group_id, member_id, next_epoch(0),
                                                      connection=connection)
            fresh.partitions.update(dict.fromkeys(added))
            return ErrorCode.none, fresh
        session = self.sessions.get(key)
        if session is None:
            return ErrorCode.share_session_not_found, None
        if epoch == FINAL_EPOCH:
            return ErrorCode.none, session
        if session.epoch != epoch:
            return ErrorCode.invalid_share_session_epoch, None
        session.partitions.update(dict.fromkeys(added))
        for tp in forgotten:
            session.partitions.pop(tp, None)
        session.epoch = next_epoch(epoch)
        return ErrorCode.none, session

    def acknowledging(self, group_id: str, member_id: str, epoch: int) -> ErrorCode:
        """The session check of ShareAcknowledge: it never opens a session."""
        if epoch == INITIAL_EPOCH:
            return ErrorCode.invalid_share_session_epoch
        session = self.sessions.get((group_id, member_id))
        if session is None:
            return ErrorCode.share_session_not_found
        if epoch != FINAL_EPOCH:
            if session.epoch != epoch:
                return ErrorCode.invalid_share_session_epoch
            session.epoch = next_epoch(epoch)
        return ErrorCode.none

    def close(self, group_id: str, member_id: str) -> int:
        """End a member's session: what it still holds is released. How many records."""
        if self.sessions.pop((group_id, member_id), None) is None:
            return 0
        released = 0
        for key, share in self.partitions.items():
            if key[0] == group_id:
                count = share.release_member(member_id)
                released += count
                if count:
                    self.persist_later(key)
        return released

    def disconnected(self, connection: str) -> int:
        """A client connection closed: the sessions opened on it end and their members'
        acquired records are released at once (Kafka 4.4's ShareSessionCache listener).
        A session reopened since on another connection is not this one's. How many
        records were released."""
        gone = [k for k, s in self.sessions.items() if s.connection == connection]
        return sum(self.close(group_id, member_id) for group_id, member_id in gone)

    # --- share-partitions ---------------------------------------------------------------

    def share_partition(self, key: ShareKey, settings: ShareSettings,
                        topic_id: uuid.UUID | None = None, leader_epoch: int = 0
                        ) -> SharePartition | None:
        """The group's share-partition if it is loaded here at ``leader_epoch`` (a
        topic deleted and created again under its name, another ``topic_id``, or a
        leadership lost and regained since, drops it); its settings follow the group's
        configs."""
        share = self.partitions.get(key)
        if share is not None and (share.leader_epoch != leader_epoch or (
                topic_id is not None and self.topic_ids.get(key) != topic_id)):
            self.partitions.pop(key, None)
            share = None
        if share is not None:
            _configure(share, settings)
        return share

    async def load(self, key: ShareKey, settings: ShareSettings,
                   start: Callable[[str], int], topic_id: uuid.UUID | None = None,
                   leader_epoch: int = 0) -> tuple[ErrorCode, SharePartition | None]:
        """The share-partition, read from the share coordinator if it is not loaded
        here; one never written starts at ``start(auto_offset_reset)`` and is
        initialized there at once, so a new leader resumes from the same place."""
        share = self.share_partition(key, settings, topic_id, leader_epoch)
        if share is not None:
            return ErrorCode.none, share
        async with self._locks.setdefault(key, asyncio.Lock()):  # one load per key at a time
            share = self.share_partition(key, settings, topic_id, leader_epoch)
            if share is not None:  # loaded while this one waited
                return ErrorCode.none, share
            error, share = await self._read(key, settings, start, leader_epoch)
            if share is None:
                return error, None
            if topic_id is not None:
                self.topic_ids[key] = topic_id
            self.partitions[key] = share
        _configure(share, settings)
        return ErrorCode.none, share

    async def _read(self, key: ShareKey, settings: ShareSettings, start: Callable[[str], int],
                    leader_epoch: int) -> tuple[ErrorCode, SharePartition | None]:
        share = SharePartition(0, self.clock)
        share.leader_epoch = leader_epoch
        if self.store is None:
            share.move_start(start(settings.auto_offset_reset))
            return ErrorCode.none, share
        error, stored = await self.store.read(key, leader_epoch)
        if error != ErrorCode.none:
            return error, None
        if stored is None:
            share.move_start(start(settings.auto_offset_reset))
            error = await self.store.initialize(key, 0, share.start_offset)
            return (error, None) if error != ErrorCode.none else (error, share)
        share.state_epoch, offset, batches = stored
        share.restore(offset, batches)
        return ErrorCode.none, share

    async def persist(self, key: ShareKey) -> ErrorCode:
        """Write the share-partition's state to the share coordinator (after
        acknowledgements and releases, before they are answered): the whole in-flight
        window, so the last write of a key always carries its latest state."""
        share = self.partitions.get(key)
        if share is None or self.store is None:
            return ErrorCode.none
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            return await self.store.write(key, share.state_epoch, share.leader_epoch,
                                          share.start_offset, share.state_batches())

    def persist_later(self, key: ShareKey) -> None:
        """`persist` from code that cannot wait (a session closed by a disconnect or a
        member's leaving)."""
        if self.store is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.persist(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def group_partitions(self, group_id: str) -> dict[tuple[str, int], SharePartition]:
        return {(k[1], k[2]): sp for k, sp in self.partitions.items() if k[0] == group_id}

    async def forget(self, key: ShareKey) -> ErrorCode:
        """DeleteShareGroupOffsets: the share-partition and its durable state go; the
        next fetch starts it again from `share.auto.offset.reset`."""
        self.partitions.pop(key, None)
        return ErrorCode.none if self.store is None else await self.store.delete(key)

    async def forget_group(self, group_id: str, keys: Iterable[ShareKey] = ()) -> None:
        """DeleteGroups of a share group: its share-partitions go (those loaded here
        and ``keys``)."""
        for key in {*keys, *(k for k in self.partitions if k[0] == group_id)}:
            await self.forget(key)


def _configure(share: SharePartition, settings: ShareSettings) -> None:
    share.lock_ms = settings.lock_ms
    share.delivery_limit = settings.delivery_limit
    share.max_in_flight = settings.max_in_flight
    share.renew_enabled = settings.renew_enabled


# One ShareManager per broker, kept beside (and living as long as) the broker's partition
# directory: handlers create it on first use, the metrics read it.
_MANAGERS: weakref.WeakKeyDictionary[object, ShareManager] = weakref.WeakKeyDictionary()


def manager_of(partitions: object, create: Callable[[], ShareManager] | None = None
               ) -> ShareManager | None:
    """The share manager of the broker whose partition directory is ``partitions``."""
    if partitions is None:
        return None
    found = _MANAGERS.get(partitions)
    if found is None and create is not None:
        found = _MANAGERS[partitions] = create()
    return found

"""The partition leader's persister (Kafka's DefaultStatePersister): share-partition state
kept by the share coordinator in `__share_group_state`, not on this broker's disk.

`CoordinatorPersister` turns the share manager's keys (group, topic name, partition)
into the coordinator's (group, topic id, partition) and its state batches into the
coordinator's, and calls the share state host, which reaches the key's coordinator
here or on another broker (`strom.broker.hosts.share_host`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from kio.schema.errors import ErrorCode

from strom.broker.share.partition import StateBatch
from strom.coordinator.share_state import records
from strom.coordinator.share_state.shard import ShareState

ShareKey = tuple[str, str, int]  # group, topic name, partition
Stored = tuple[int, int, list[StateBatch]]  # state epoch, start offset, batches


class StateHost(Protocol):
    """What the persister needs of the share state host."""

    async def read(self, key: records.ShareKey, leader_epoch: int
                   ) -> tuple[ErrorCode, ShareState | None]: ...

    async def write(self, key: records.ShareKey, state_epoch: int, leader_epoch: int,
                    start_offset: int, batches: tuple[records.StateBatch, ...]) -> ErrorCode: ...

    async def initialize(self, key: records.ShareKey, state_epoch: int, start_offset: int
                         ) -> ErrorCode: ...

    async def delete(self, key: records.ShareKey) -> ErrorCode: ...

    async def summary(self, key: records.ShareKey) -> tuple[ErrorCode, ShareState | None]: ...


class CoordinatorPersister:
    """The `ShareStateStore` of the share manager, over the share coordinator."""

    def __init__(self, host: StateHost, topic_id: Callable[[str], uuid.UUID | None]) -> None:
        self.host = host
        self.topic_id = topic_id

    def _key(self, key: ShareKey) -> records.ShareKey | None:
        topic_id = self.topic_id(key[1])
        return None if topic_id is None else (key[0], topic_id, key[2])

    async def read(self, key: ShareKey, leader_epoch: int) -> tuple[ErrorCode, Stored | None]:
        coordinator_key = self._key(key)
        if coordinator_key is None:
            return ErrorCode.unknown_topic_id, None
        error, state = await self.host.read(coordinator_key, leader_epoch)
        if error != ErrorCode.none or state is None or state.start_offset < 0:
            return error, None
        return error, (state.state_epoch, state.start_offset,
                       [StateBatch(b.first_offset, b.last_offset, b.delivery_state,
                                   b.delivery_count) for b in state.batches])

    async def summary(self, key: ShareKey) -> tuple[ErrorCode, tuple[int, int] | None]:
        """(state epoch, start offset) of a share-partition, None if it has none."""
        coordinator_key = self._key(key)
        if coordinator_key is None:
            return ErrorCode.unknown_topic_id, None
        error, state = await self.host.summary(coordinator_key)
        if error != ErrorCode.none or state is None:
            return error, None
        return error, (state.state_epoch, state.start_offset)

    async def write(self, key: ShareKey, state_epoch: int, leader_epoch: int,
                    start_offset: int, batches: list[StateBatch]) -> ErrorCode:
        coordinator_key = self._key(key)
        if coordinator_key is None:
            return ErrorCode.unknown_topic_id
        return await self.host.write(coordinator_key, state_epoch, leader_epoch, start_offset,
                                     tuple(records.StateBatch(b.first_offset, b.last_offset,
                                                              b.delivery_state,
                                                              b.delivery_count)
                                           for b in batches))

    async def initialize(self, key: ShareKey, state_epoch: int, start_offset: int
                         ) -> ErrorCode:
        coordinator_key = self._key(key)
        if coordinator_key is None:
            return ErrorCode.unknown_topic_id
        return await self.host.initialize(coordinator_key, state_epoch, start_offset)

    async def delete(self, key: ShareKey) -> ErrorCode:
        coordinator_key = self._key(key)
        if coordinator_key is None:
            return ErrorCode.none
        return await self.host.delete(coordinator_key)

"""Followers: fetch from each partition's leader with ordinary Fetch requests.

One fetcher task per leader broker serves every partition this broker follows from it,
as Kafka's ReplicaFetcherThread does. Before a partition's first fetch under a new
leader epoch, it asks the leader (OffsetForLeaderEpoch) where our last epoch ended and
truncates there (KIP-279): records a deposed leader wrote but never replicated are
dropped instead of surviving as a divergent tail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchRequest
from kio.schema.offset_for_leader_epoch.v4.request import OffsetForLeaderEpochRequest

from strom.broker.replication.partition import Partition
from strom.broker.replication.peer import PeerError
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build

if TYPE_CHECKING:
    from strom.broker.services import ReplicaHost

log = logging.getLogger(__name__)


class LeaderFetcher:
    """Replicates the partitions led by one broker."""

    def __init__(self, broker: ReplicaHost, leader_id: int) -> None:
        self.broker = broker
        self.leader_id = leader_id
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.needs_truncation: set[tuple[str, int]] = set()
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, partition: Partition) -> None:
        key = (partition.topic, partition.index)
        self.partitions[key] = partition
        self.needs_truncation.add(key)
        self._wakeup.set()

    def remove(self, key: tuple[str, int]) -> None:
        self.partitions.pop(key, None)
        self.needs_truncation.discard(key)

    def stop(self) -> None:
        self._task.cancel()

    def _connection(self) -> Any:
        info = self.broker.store.image().brokers.get(self.leader_id)
        if info is None:
            return None
        return self.broker.peers.connection(self.leader_id, info.host, info.port)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self.partitions:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            conn = self._connection()
            try:
                if conn is None:
                    raise PeerError(f"leader {self.leader_id} is not live")
                if self.needs_truncation:
                    await self._truncate(conn)
                await self._fetch_once(conn)
                backoff = 0.05
            except PeerError as exc:
                log.debug("fetch from broker %d failed: %s", self.leader_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("replica fetcher for broker %d failed", self.leader_id)
                await asyncio.sleep(1.0)

    async def _truncate(self, conn: Any) -> None:
        pending = {k: self.partitions[k] for k in list(self.needs_truncation) if k in self.partitions}
        by_topic: dict[str, list[dict[str, int]]] = {}
        for (topic, index), p in pending.items():
            by_topic.setdefault(topic, []).append({
                "partition": index, "current_leader_epoch": p.leader_epoch,
                "leader_epoch": p.latest_epoch,
            })
        request = build(OffsetForLeaderEpochRequest, replica_id=self.broker.broker_id, topics=[
            {"topic": t, "partitions": parts} for t, parts in by_topic.items()])
        response = await conn.request(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, request)
        for topic_result in response.topics:
            for result in topic_result.partitions:
                key = (topic_result.topic, int(result.partition))
                partition = pending.get(key)
                if partition is None or result.error_code != ErrorCode.none:
                    continue
                partition.truncate_to_epoch_end(int(result.leader_epoch), int(result.end_offset))
                self.needs_truncation.discard(key)

    async def _fetch_once(self, conn: Any) -> None:
        by_topic: dict[str, list[dict[str, int]]] = {}
        keys = [k for k in self.partitions if k not in self.needs_truncation]
        if not keys:
            await asyncio.sleep(0.05)
            return
        for topic, index in keys:
            p = self.partitions[(topic, index)]
            by_topic.setdefault(topic, []).append({
                "partition": index, "current_leader_epoch": p.leader_epoch,
                "fetch_offset": p.log_end_offset, "last_fetched_epoch": p.latest_epoch,
                "log_start_offset": p.log_start_offset,
                "partition_max_bytes": self.broker.config.get_int("replica.fetch.max.bytes"),
            })
        request = build(FetchRequest, replica_id=self.broker.broker_id,
                        max_wait=self.broker.config.get_int("replica.fetch.wait.max.ms"),
                        min_bytes=1, max_bytes=10 * 1024 * 1024, session_id=0, session_epoch=-1,
                        topics=[{"topic": t, "partitions": ps} for t, ps in by_topic.items()])
        response = await conn.request(ApiKey.FETCH, 12, request)
        if response.error_code != ErrorCode.none:
            raise PeerError(f"fetch refused: {response.error_code.name}")
        for topic_response in response.responses:
            for data in topic_response.partitions:
                key = (topic_response.topic, int(data.partition_index))
                partition = self.partitions.get(key)
                if partition is not None:
                    self._apply(partition, key, data)

    def _apply(self, partition: Partition, key: tuple[str, int], data: Any) -> None:
        error = data.error_code
        if error == ErrorCode.none:
            partition.follow_leader_log_start(int(data.log_start_offset))
            partition.append_as_follower(bytes(data.records or b""), int(data.high_watermark))
        elif error == ErrorCode.offset_out_of_range:
            leader_start = int(data.log_start_offset)
            if partition.log_end_offset < leader_start:
                partition.restart_at(leader_start)
            else:
                self.needs_truncation.add(key)
        elif error in (ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch,
                       ErrorCode.unknown_leader_epoch, ErrorCode.unknown_topic_or_partition):
            log.debug("fetch of %s-%d from %d: %s; waiting for metadata", *key, self.leader_id,
                      error.name)
        else:
            log.warning("fetch of %s-%d from %d failed: %s", *key, self.leader_id, error.name)


class ReplicaFetcherManager:
    def __init__(self, broker: ReplicaHost) -> None:
        self.broker = broker
        self.fetchers: dict[int, LeaderFetcher] = {}
        self.assigned: dict[tuple[str, int], int] = {}

    def follow(self, partition: Partition, leader_id: int) -> None:
        key = (partition.topic, partition.index)
        self.unfollow(key)
        if leader_id < 0:
            return
        fetcher = self.fetchers.get(leader_id)
        if fetcher is None:
            fetcher = self.fetchers[leader_id] = LeaderFetcher(self.broker, leader_id)
        fetcher.add(partition)
        self.assigned[key] = leader_id

    def unfollow(self, key: tuple[str, int]) -> None:
        leader = self.assigned.pop(key, None)
        if leader is not None and leader in self.fetchers:
            self.fetchers[leader].remove(key)

    def stop(self) -> None:
        for fetcher in self.fetchers.values():
            fetcher.stop()
        self.fetchers.clear()

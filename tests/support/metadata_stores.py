"""Metadata stores as the contract suite (tests/contract) opens them, behind one face.

A `Backend` opens stores of one kind as a broker would, reopens them (a restart), and
waits for what a store delivers asynchronously: the ZooKeeper store's watches fire on
kazoo threads and hand images to the event loop, so contract tests are coroutines and
`settle` yields to the loop while it polls. The local store delivers synchronously, so
its `settle` returns at once when the condition already holds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strom.cluster.image import BrokerInfo
from strom.cluster.local import LocalMetadataStore

CLUSTER_ID = "contract-cluster-id"
SETTLE_S = 20.0


def broker_info(broker_id: int) -> BrokerInfo:
    return BrokerInfo(broker_id, "127.0.0.1", 9000 + broker_id, rack=f"rack-{broker_id}")


class Backend:
    """Opens, reopens and closes stores of one kind; every store opened is closed at the
    end of the test."""

    kind = ""
    multi_broker = False  # several brokers (stores) share the metadata

    def __init__(self) -> None:
        self.opened: list[Any] = []

    async def open(self, broker_id: int = 1) -> Any:
        """A started store for `broker_id`, its own broker registered and its image
        complete (every topic the metadata holds is in it)."""
        raise NotImplementedError

    async def settle(self, check: Callable[[], object], what: str,
                     timeout: float = SETTLE_S) -> None:
        """Yield to the event loop until `check()` is true (images delivered)."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind}: not within {timeout}s: {what}")
            await asyncio.sleep(0.01)

    def close(self, store: Any) -> None:
        if store in self.opened:
            self.opened.remove(store)
        store.close()

    def close_all(self) -> None:
        for store in list(self.opened):
            self.close(store)


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.path = directory / "strom-metadata.json"

    async def open(self, broker_id: int = 1) -> LocalMetadataStore:
        store = LocalMetadataStore(self.path, broker_info(broker_id), CLUSTER_ID)
        self.opened.append(store)
        return store


class ZooKeeperBackend(Backend):
    kind = "zookeeper"
    multi_broker = True

    def __init__(self, connect: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.connect = connect
        self.loop = loop

    @classmethod
    def in_fresh_chroot(cls, zk_connect: str, loop: asyncio.AbstractEventLoop) -> ZooKeeperBackend:
        from kazoo.client import KazooClient

        chroot = f"/strom-contract-{uuid.uuid4().hex[:10]}"
        root = KazooClient(hosts=zk_connect, timeout=10)
        root.start(timeout=15)
        try:
            root.ensure_path(chroot)
        finally:
            root.stop()
            root.close()
        return cls(f"{zk_connect}{chroot}", loop)

    async def open(self, broker_id: int = 1) -> Any:
        from strom.cluster.zookeeper import ZooKeeperMetadataStore

        store = ZooKeeperMetadataStore(self.connect, broker_info(broker_id), CLUSTER_ID,
                                       session_timeout_ms=6000)
        store.start(self.loop)
        self.opened.append(store)
        topics = set(self.outside_topics())
        await self.settle(lambda: broker_id in store.image().brokers
                          and topics <= set(store.image().topics)
                          and store.image().controller_id != -1,
                          f"broker {broker_id} registered, {len(topics)} topics loaded")
        return store

    def outside_topics(self) -> list[str]:
        """Topic names as ZooKeeper holds them, read with a client of our own."""
        from kazoo.client import KazooClient

        client = KazooClient(hosts=self.connect, timeout=10)
        client.start(timeout=15)
        try:
            return list(client.get_children("/brokers/topics")) \
                if client.exists("/brokers/topics") else []
        finally:
            client.stop()
            client.close()

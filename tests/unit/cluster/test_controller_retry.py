"""A controller election pass that fails (e.g. ZooKeeper connection loss mid-write) is
retried: the broker death that triggered it must not be forgotten until the next change."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from strom.cluster.controller import Controller
from strom.cluster.image import PartitionInfo, TopicInfo


class FlakyStore:
    """update_topic_as_controller fails the first time, as a write cut by a connection loss would."""

    def __init__(self, topic: TopicInfo) -> None:
        self.topic = topic
        self.calls = 0
        self.elected = threading.Event()

    def image(self) -> object:
        return None

    def update_topic_as_controller(self, name: str,
                                   change: Callable[[TopicInfo], TopicInfo | None]
                                   ) -> TopicInfo | None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("connection to ZooKeeper lost")
        updated = change(self.topic)
        if updated is not None:
            self.topic = updated
            self.elected.set()
        return updated


def test_a_failed_election_pass_is_retried() -> None:
    partition = PartitionInfo(0, leader=2, leader_epoch=0, replicas=(2, 1, 3), isr=(2, 1, 3))
    store = FlakyStore(TopicInfo("t", uuid.uuid4(), {0: partition}))
    controller = Controller(store, False, live_brokers=lambda: {1, 3},
                            topics=lambda: [store.topic])
    try:
        controller.on_controller_change(True)
        assert store.elected.wait(10), "the failed pass was never retried"
    finally:
        controller.stop()
    assert store.topic.partitions[0].leader == 1
    assert store.calls == 2

"""A controller whose epoch was superseded stops acting: the pass that met the refusal
ends, and no retry follows until the store elects this broker again."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from strom.cluster.controller import Controller
from strom.cluster.image import PartitionInfo, TopicInfo
from strom.cluster.store import ControllerMovedError


class SupersededStore:
    """Refuses every controller write, as ZooKeeper's epoch check does after a takeover."""

    def __init__(self, topic: TopicInfo) -> None:
        self.topic = topic
        self.calls = 0
        self.refused = threading.Event()

    def image(self) -> object:
        return None

    def update_topic_as_controller(self, name: str,
                                   change: Callable[[TopicInfo], TopicInfo | None]
                                   ) -> TopicInfo | None:
        self.calls += 1
        self.refused.set()
        raise ControllerMovedError("controller epoch 1 was superseded")


def test_a_refused_write_ends_the_term_without_retries() -> None:
    partition = PartitionInfo(0, leader=2, leader_epoch=0, replicas=(2, 1), isr=(2, 1))
    store = SupersededStore(TopicInfo("t", uuid.uuid4(), {0: partition}))
    controller = Controller(store, False, live_brokers=lambda: {1},
                            topics=lambda: [store.topic])
    try:
        controller.on_controller_change(True)
        assert store.refused.wait(10)
        time.sleep(1.5)  # a generic failure is retried after 1 s; a superseded epoch is not
        assert not controller.active
        assert store.calls == 1
        controller.trigger()  # a watch firing on a stale flag is ignored too
        time.sleep(0.3)
        assert store.calls == 1
    finally:
        controller.stop()

"""Deleting a topic drops its committed offsets from every group, as Kafka's group
coordinator does: a topic created again under the same name starts without them, and an
empty group left without offsets is gone (Strom Streams' reset relied on a workaround)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from support.broker_process import wait_until
from support.clients import create_topic, unique_topic

pytestmark = [pytest.mark.timeout(120)]


def committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=20)
        return int(tp.offset)
    finally:
        consumer.close()


def test_deleted_topics_leave_the_groups(broker: Any) -> None:
    gone, kept = unique_topic("gone"), unique_topic("kept")
    for topic in (gone, kept):
        create_topic(broker.bootstrap, topic, 1)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "both",
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(gone, 0, 7), TopicPartition(kept, 0, 9)],
                    asynchronous=False)
    consumer.close()
    only = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "only-gone",
                     "enable.auto.commit": False})
    only.commit(offsets=[TopicPartition(gone, 0, 3)], asynchronous=False)
    only.close()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_topics([gone])[gone].result(30)

    wait_until(lambda: committed(broker.bootstrap, "both", gone) < 0, 30,
               "the deleted topic's offset to leave the group")
    assert committed(broker.bootstrap, "both", kept) == 9
    groups = {g.group_id for g in admin.list_consumer_groups().result(30).valid}
    assert "both" in groups and "only-gone" not in groups
    time.sleep(0.5)
    create_topic(broker.bootstrap, gone, 1)
    assert committed(broker.bootstrap, "both", gone) < 0, "a new topic of the same name"

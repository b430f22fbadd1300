"""What is derived from an immutable image or topic is computed once and kept on it."""

from __future__ import annotations

import uuid
from dataclasses import replace

from strom.cluster.image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo


def _image() -> MetadataImage:
    topics = {name: TopicInfo(name, uuid.uuid4(), {0: PartitionInfo(0, 1, 0, (1,), (1,))})
              for name in ("b", "a", "c")}
    return MetadataImage("c", 1, {1: BrokerInfo(1, "h", 9092)}, topics)


def test_topics_are_found_by_id_through_one_map_per_image() -> None:
    image = _image()
    a = image.topics["a"]
    assert image.topic_by_id(a.topic_id) is a
    assert image.topic_by_id(uuid.uuid4()) is None
    assert image.topics_by_id is image.topics_by_id
    added = TopicInfo("d", uuid.uuid4(), {})
    newer = image.with_topic(added)
    assert newer.topic_by_id(added.topic_id) is added
    assert image.topic_by_id(added.topic_id) is None
    assert image.without_topic("a").topic_by_id(a.topic_id) is None


def test_topics_in_name_order_and_live_brokers() -> None:
    image = _image()
    assert [t.name for t in image.topics_by_name] == ["a", "b", "c"]
    assert image.live_broker_ids == frozenset({1})


def test_a_changed_topic_starts_without_derived_values() -> None:
    topic = _image().topics["a"]
    topic.derived["k"] = "v"
    assert topic.derived == {"k": "v"}
    changed = replace(topic, configs={"retention.ms": "1"})
    assert changed.derived == {}
    assert changed != topic and replace(topic) == topic  # derived values are not fields

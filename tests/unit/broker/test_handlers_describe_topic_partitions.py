"""DescribeTopicPartitions (75) without sockets: Kafka's paging rules on a fake image.

Paging through every topic with any limit must visit each partition exactly once, in
order; unknown and illegal names are answered per topic; a bad cursor refuses the
request. The same rules run against Apache Kafka in tests/interop.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.broker.handlers.describe_topic_partitions import describe_topic_partitions
from strom.cluster.image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo
from strom.protocol.api_keys import ApiKey
from support.handler_context import broker_config, call, context, request

KEY = ApiKey.DESCRIBE_TOPIC_PARTITIONS


def _topic(name: str, count: int, leader: int = 1) -> TopicInfo:
    return TopicInfo(name, uuid.uuid4(), {
        i: PartitionInfo(i, leader, 3, (leader, 2), (leader,)) for i in range(count)})


TOPICS = [_topic("alpha", 3), _topic("beta", 5), _topic("delta", 1), _topic("gamma", 4, 9)]
IMAGE = MetadataImage("c", 1, {1: BrokerInfo(1, "h", 1), 2: BrokerInfo(2, "h", 2)},
                      {t.name: t for t in TOPICS})


class Metadata:
    def __init__(self, image: MetadataImage) -> None:
        self._image = image

    def image(self) -> MetadataImage:
        return self._image


class NoOfflineDirs:
    offline_dirs: tuple[object, ...] = ()


def _ask(names: list[str] | None = None, limit: int = 2000,
         cursor: tuple[str, int] | None = None, broker_limit: int | None = None) -> Any:
    props = {} if broker_limit is None else {"max.request.partition.size.limit": str(broker_limit)}
    ctx = context(KEY, 0, config=broker_config(**props), metadata=Metadata(IMAGE),
                  partitions=NoOfflineDirs())
    body = request(KEY, 0, topics=[{"name": n} for n in names or []],
                   response_partition_limit=limit,
                   cursor=None if cursor is None else {"topic_name": cursor[0],
                                                       "partition_index": cursor[1]})
    return call(describe_topic_partitions, ctx, body)


def _pairs(response: Any) -> list[tuple[str, int]]:
    return [(t.name, p.partition_index) for t in response.topics for p in t.partitions]


def test_all_topics_in_name_order_with_partition_details() -> None:
    response = _ask()
    assert [t.name for t in response.topics] == ["alpha", "beta", "delta", "gamma"]
    assert response.next_cursor is None
    alpha = response.topics[0]
    assert alpha.error_code == ErrorCode.none and alpha.topic_id == TOPICS[0].topic_id
    assert not alpha.is_internal
    first = alpha.partitions[0]
    assert (first.leader_id, first.leader_epoch, first.replica_nodes, first.isr_nodes) == (
        1, 3, (1, 2), (1,))
    assert first.eligible_leader_replicas == () and first.last_known_elr == ()
    assert first.offline_replicas == ()
    gamma = response.topics[3].partitions[0]  # its leader, broker 9, is not alive
    assert gamma.leader_id == -1 and gamma.offline_replicas == (9,)


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 7, 13, 2000])
def test_paging_visits_every_partition_once(limit: int) -> None:
    expected = [(t.name, i) for t in TOPICS for i in range(t.partition_count)]
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(len(expected) + 2):
        response = _ask(limit=limit, cursor=cursor)
        got = _pairs(response)
        assert len(got) <= limit
        seen += got
        if response.next_cursor is None:
            break
        cursor = (response.next_cursor.topic_name, response.next_cursor.partition_index)
    assert seen == expected


def test_cursor_inside_a_topic_and_at_a_boundary() -> None:
    response = _ask(limit=4)  # alpha's 3, then beta-0; beta-1 is next
    assert _pairs(response)[-1] == ("beta", 0)
    assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == ("beta", 1)
    response = _ask(limit=3)  # exactly alpha: the cursor names the next topic at 0
    assert [t.name for t in response.topics] == ["alpha"]
    assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == ("beta", 0)
    response = _ask(limit=1, cursor=("gamma", 3))  # the last partition: no cursor after it
    assert _pairs(response) == [("gamma", 3)] and response.next_cursor is None


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_answers_one_partition(limit: int) -> None:
    response = _ask(["alpha", "beta"], limit=limit)
    assert _pairs(response) == [("alpha", 0)]
    assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == ("alpha", 1)


def test_a_cursor_past_the_end_of_its_topic_answers_it_empty() -> None:
    response = _ask(["alpha", "beta"], cursor=("alpha", 7))
    assert [(t.name, len(t.partitions)) for t in response.topics] == [("alpha", 0), ("beta", 5)]


def test_broker_limit_caps_the_request_limit() -> None:
    response = _ask(limit=2000, broker_limit=2)
    assert _pairs(response) == [("alpha", 0), ("alpha", 1)]
    assert response.next_cursor.partition_index == 2


def test_named_topics_unknown_and_illegal_names_are_answered_per_topic() -> None:
    response = _ask(["gamma", "nope", "alpha", "bad/name", "alpha"])
    by_name = {t.name: t for t in response.topics}
    assert [t.name for t in response.topics] == ["alpha", "bad/name", "gamma", "nope"]
    assert by_name["nope"].error_code == ErrorCode.unknown_topic_or_partition
    assert by_name["nope"].topic_id == uuid.UUID(int=0) and by_name["nope"].partitions == ()
    assert by_name["bad/name"].error_code == ErrorCode.invalid_topic_exception
    assert by_name["alpha"].error_code == ErrorCode.none
    assert len(by_name["gamma"].partitions) == 4


def test_named_topics_after_the_cursor_only() -> None:
    response = _ask(["alpha", "beta", "gamma"], cursor=("beta", 3))
    assert _pairs(response) == [("beta", 3), ("beta", 4)] + [("gamma", i) for i in range(4)]


def test_a_cursor_topic_missing_from_the_list_refuses_the_request() -> None:
    response = _ask(["alpha", "beta"], cursor=("delta", 0))
    assert [(t.name, t.error_code) for t in response.topics] == [
        ("alpha", ErrorCode.invalid_request), ("beta", ErrorCode.invalid_request)]
    assert response.next_cursor is None


def test_a_negative_cursor_partition_refuses_the_request() -> None:
    response = _ask(["alpha"], cursor=("alpha", -1))
    assert [(t.name, t.error_code) for t in response.topics] == [
        ("alpha", ErrorCode.invalid_request)]


def test_internal_topics_are_marked() -> None:
    image = MetadataImage("c", 1, {1: BrokerInfo(1, "h", 1)},
                          {"__consumer_offsets": _topic("__consumer_offsets", 2)})
    ctx = context(KEY, 0, metadata=Metadata(image), partitions=NoOfflineDirs())
    response = call(describe_topic_partitions, ctx,
                    request(KEY, 0, topics=[], response_partition_limit=10, cursor=None))
    assert [(t.name, t.is_internal) for t in response.topics] == [("__consumer_offsets", True)]

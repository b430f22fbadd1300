"""DescribeProducers (61): any replica answers with the producers it tracks, as in Kafka
(kafka-transactions.sh find-hanging --broker-id asks followers too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.handlers import txn_partitions
from strom.storage.partition_log import ProducerView
from support.handler_context import call, context, request

DESCRIBE_PRODUCERS = 61


@dataclass
class FakePartition:
    is_leader: bool
    producers: list[ProducerView] = field(default_factory=list)

    def producer_states(self) -> list[ProducerView]:
        return self.producers


@dataclass
class FakeDirectory:
    hosted: dict[tuple[str, int], FakePartition]

    def get(self, topic: str, index: int) -> FakePartition | None:
        return self.hosted.get((topic, index))

    def offline_reason(self, topic: str, index: int) -> str | None:
        return None


def test_leaders_and_followers_answer_unknown_partitions_do_not() -> None:
    open_txn = ProducerView(7, 2, 11, 1_700_000_000_000, 3, 40)
    directory = FakeDirectory({("t", 0): FakePartition(True, [open_txn]),
                               ("t", 1): FakePartition(False, [open_txn])})
    body = request(DESCRIBE_PRODUCERS, 0, topics=[{"name": "t", "partition_indexes": [0, 1, 5]}])
    response: Any = call(txn_partitions.describe_producers,
                         context(DESCRIBE_PRODUCERS, 0, partitions=directory), body)
    [topic] = response.topics
    leader, follower, missing = topic.partitions
    for answered in (leader, follower):
        assert answered.error_code == ErrorCode.none
        [state] = answered.active_producers
        assert (int(state.producer_id), int(state.producer_epoch), int(state.last_sequence),
                int(state.coordinator_epoch), int(state.current_txn_start_offset)) == (
            7, 2, 11, 3, 40)
    assert missing.error_code == ErrorCode.unknown_topic_or_partition
    assert missing.active_producers == ()

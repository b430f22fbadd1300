"""ListOffsets without a socket: the handler's partition and error mapping over a fake
partition directory (the offset semantics themselves are `PartitionLog`'s, tested in
storage). Only the `partitions` face is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.broker.handlers import list_offsets
from strom.storage.errors import KafkaStorageError
from support.handler_context import call, context, request

LIST_OFFSETS = 2
EARLIEST, LATEST = -2, -1


@dataclass
class FakePartition:
    is_leader: bool = True
    leader_epoch: int = 5
    offsets: dict[int, tuple[int, int]] = field(default_factory=lambda: {
        EARLIEST: (-1, 10), LATEST: (-1, 42), 1_000: (1_002, 17)})
    failure: Exception | None = None
    last_stable: int = 40  # read_committed consumers see LATEST here
    asked_committed: list[bool] = field(default_factory=list)

    def list_offset(self, timestamp: int, read_committed: bool = False) -> tuple[int, int]:
        self.asked_committed.append(read_committed)
        if self.failure is not None:
            raise self.failure
        if read_committed and timestamp == LATEST:
            return (-1, self.last_stable)
        return self.offsets.get(timestamp, (-1, -1))


@dataclass
class FakeDirectory:
    hosted: dict[tuple[str, int], FakePartition]
    offline: dict[tuple[str, int], str] = field(default_factory=dict)

    def get(self, topic: str, index: int) -> FakePartition | None:
        return self.hosted.get((topic, index))

    def offline_reason(self, topic: str, index: int) -> str | None:
        return self.offline.get((topic, index))


def _ask(directory: FakeDirectory, version: int, *parts: tuple[int, int, int],
         isolation: int = 0) -> list[Any]:
    """(partition, timestamp, current leader epoch) of topic "t" -> response partitions."""
    body = request(LIST_OFFSETS, version, replica_id=-1, isolation_level=isolation, topics=[
        {"name": "t", "partitions": [
            {"partition_index": p, "timestamp": ts, "current_leader_epoch": epoch,
             "max_num_offsets": 1} for p, ts, epoch in parts]}])
    response = call(list_offsets.handle, context(LIST_OFFSETS, version, partitions=directory),
                    body)
    [topic] = response.topics
    assert topic.name == "t"
    return list(topic.partitions)


@pytest.mark.parametrize("version", [1, 4, 7, 10])
def test_earliest_latest_and_by_timestamp(version: int) -> None:
    directory = FakeDirectory({("t", 0): FakePartition()})
    earliest, latest, by_time, none = _ask(directory, version, (0, EARLIEST, -1),
                                           (0, LATEST, -1), (0, 1_000, -1), (0, 5, -1))
    assert [int(p.error_code) for p in (earliest, latest, by_time, none)] == [0] * 4
    assert (int(earliest.offset), int(latest.offset)) == (10, 42)
    assert (int(by_time.timestamp), int(by_time.offset)) == (1_002, 17)
    assert (int(none.timestamp), int(none.offset)) == (-1, -1)
    if version >= 4:
        assert int(latest.leader_epoch) == 5


def test_read_committed_asks_for_the_last_stable_offset() -> None:
    partition = FakePartition()
    [latest] = _ask(FakeDirectory({("t", 0): partition}), 4, (0, LATEST, -1), isolation=1)
    assert int(latest.offset) == 40 and partition.asked_committed == [True]
    [latest] = _ask(FakeDirectory({("t", 0): partition}), 4, (0, LATEST, -1))
    assert int(latest.offset) == 42 and partition.asked_committed == [True, False]


def test_errors_per_partition() -> None:
    directory = FakeDirectory(
        {("t", 0): FakePartition(), ("t", 1): FakePartition(is_leader=False),
         ("t", 3): FakePartition(failure=KafkaStorageError(Path("/d"), "disk gone"))},
        offline={("t", 2): "out of file descriptors"})
    parts = _ask(directory, 7, (0, LATEST, 4), (0, LATEST, 6), (1, LATEST, -1),
                 (2, LATEST, -1), (3, LATEST, -1), (9, LATEST, -1))
    assert [ErrorCode(int(p.error_code)) for p in parts] == [
        ErrorCode.fenced_leader_epoch,  # the client's epoch is older than ours
        ErrorCode.unknown_leader_epoch,  # newer: we have not heard of it yet
        ErrorCode.not_leader_or_follower,
        ErrorCode.kafka_storage_error,  # assigned here, log offline
        ErrorCode.kafka_storage_error,  # the log dir failed under the query
        ErrorCode.unknown_topic_or_partition,
    ]
    assert all(int(p.offset) == -1 for p in parts)
    assert [int(p.partition_index) for p in parts] == [0, 0, 1, 2, 3, 9]

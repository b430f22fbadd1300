"""TxnOffsetCommit in the group coordinator: offsets written in the producer's
transactional batch, held until the marker, then committed or dropped, live and after a
reload from the log (markers folded by the loader)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from strom.coordinator.group.config import LogRecord, MarkerEntry, UnreadableBatch
from strom.coordinator.group.coordinator import OffsetCommit

from .fakes import MemoryOffsetsLog, make_coordinator

pytestmark = pytest.mark.timeout(20)
PRODUCER = (4000, 3)


class TxnOffsetsLog(MemoryOffsetsLog):
    """The in-memory log with transactional batches and markers, as the partition holds
    them: each entry remembers its producer; markers are entries of their own."""

    def __init__(self) -> None:
        super().__init__()
        self.producers: dict[int, list[int]] = {}
        self.markers: dict[int, list[tuple[int, int, bool]]] = {}  # position, producer, commit

    def append_transactional(self, partition: int, records: list[tuple[bytes, bytes | None]],
                             producer_id: int, producer_epoch: int) -> ErrorCode:
        start = len(self.partitions.get(partition, []))
        self.partitions.setdefault(partition, []).extend(records)
        self.producers.setdefault(partition, []).extend(
            [-1] * (start - len(self.producers.get(partition, []))) + [producer_id] * len(records))
        return ErrorCode.none

    def mark(self, partition: int, producer_id: int, committed: bool) -> None:
        position = len(self.partitions.get(partition, []))
        self.markers.setdefault(partition, []).append((position, producer_id, committed))

    def replay(self, partition: int) -> Iterator[LogRecord | UnreadableBatch | MarkerEntry]:
        entries = self.partitions.get(partition, [])
        producers = self.producers.get(partition, [])
        markers = list(self.markers.get(partition, []))
        for offset, (key, value) in enumerate(entries):
            while markers and markers[0][0] <= offset:
                _, pid, commit = markers.pop(0)
                yield MarkerEntry(offset, pid, commit)
            pid = producers[offset] if offset < len(producers) else -1
            yield LogRecord(offset, offset, key, value, pid)
        for _, pid, commit in markers:
            yield MarkerEntry(len(entries), pid, commit)


def commits(offset: int) -> list[OffsetCommit]:
    return [OffsetCommit("orders", 0, offset, -1, "m")]


def partition_of(coordinator, group: str) -> int:
    return coordinator.partition_for(group)


async def test_commit_marker_makes_offsets_visible_and_abort_drops_them() -> None:
    log = TxnOffsetsLog()
    coordinator, _, _ = make_coordinator(log)
    p = partition_of(coordinator, "g")
    error, results = await coordinator.txn_commit("g", PRODUCER, -1, "", commits(5))
    assert error == ErrorCode.none and results == {("orders", 0): ErrorCode.none}
    assert coordinator.fetch("g", [("orders", [0])])[1][("orders", 0)] is None
    assert coordinator.unstable("g") == {("orders", 0)}
    log.mark(p, PRODUCER[0], True)
    coordinator.complete_transaction(p, PRODUCER[0], True)
    assert coordinator.fetch("g", [("orders", [0])])[1][("orders", 0)].offset == 5
    assert coordinator.unstable("g") == set()

    await coordinator.txn_commit("g", PRODUCER, -1, "", commits(9))
    log.mark(p, PRODUCER[0], False)
    coordinator.complete_transaction(p, PRODUCER[0], False)
    assert coordinator.fetch("g", [("orders", [0])])[1][("orders", 0)].offset == 5


async def test_reload_folds_transactional_offsets_and_markers() -> None:
    log = TxnOffsetsLog()
    coordinator, _, scheduler = make_coordinator(log)
    p = partition_of(coordinator, "g")
    await coordinator.txn_commit("g", PRODUCER, -1, "", commits(5))
    log.mark(p, PRODUCER[0], True)
    await coordinator.txn_commit("g", PRODUCER, -1, "", commits(7))
    log.mark(p, PRODUCER[0], False)
    await coordinator.txn_commit("g", (4001, 0), -1, "", commits(11))  # still open

    reloaded, _, _ = make_coordinator(log, scheduler)
    assert reloaded.fetch("g", [("orders", [0])])[1][("orders", 0)].offset == 5
    assert reloaded.unstable("g") == {("orders", 0)}
    reloaded.complete_transaction(p, 4001, True)
    assert reloaded.fetch("g", [("orders", [0])])[1][("orders", 0)].offset == 11


async def test_txn_commit_checks_the_group_generation_and_member() -> None:
    coordinator, _, _ = make_coordinator(TxnOffsetsLog())
    error, _ = await coordinator.txn_commit("nogroup", PRODUCER, 3, "m-1", commits(1))
    assert error == ErrorCode.illegal_generation
    _, results = await coordinator.txn_commit(
        "g", PRODUCER, -1, "", [OffsetCommit("unknown-topic", 0, 1, -1, None)])
    assert results == {("unknown-topic", 0): ErrorCode.unknown_topic_or_partition}

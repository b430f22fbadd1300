"""Coordinator load over a hostile `__consumer_offsets` partition: skip, count, log, go on.

The log is an in-memory double that yields exactly the entries a test gives it, so
every kind of damage replay can report is fed to the fold directly: unreadable batches,
keyless records, unknown record types, garbage keys and values. A replay that raises
(a log that cannot be read at all) fails only its own partition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from strom.coordinator.group import codec, loader
from strom.coordinator.group.config import GroupConfig, LogRecord, UnreadableBatch
from strom.coordinator.group.coordinator import GroupCoordinator
from strom.coordinator.group.membership import Membership
from strom.coordinator.group.model import Group, Member

from .fakes import ManualScheduler

PARTITIONS = 4
LOADER_LOG = "strom.coordinator.group.loader"


class ScriptedLog:
    """`OffsetsLog` whose replay yields given entries, then optionally raises."""

    def __init__(self) -> None:
        self.entries: dict[int, list[LogRecord | UnreadableBatch]] = {}
        self.raise_after: dict[int, Exception] = {}
        self.appended: list[tuple[int, list[tuple[bytes, bytes | None]]]] = []

    def append(self, partition: int, records: list[tuple[bytes, bytes | None]]) -> str:
        self.appended.append((partition, records))
        return ErrorCode.none

    async def wait_durable(self, partition: int) -> str:
        return ErrorCode.none

    def replay(self, partition: int) -> Iterator[LogRecord | UnreadableBatch]:
        yield from self.entries.get(partition, [])
        if partition in self.raise_after:
            raise self.raise_after[partition]


def coordinator_over(log: ScriptedLog) -> GroupCoordinator:
    return GroupCoordinator(log, GroupConfig(num_partitions=PARTITIONS), ManualScheduler(),
                            lambda: 1_000, lambda topic, partition: True)


def group_on(partition: int, prefix: str = "g") -> str:
    coordinator = coordinator_over(ScriptedLog())
    return next(f"{prefix}{i}" for i in range(1000) if coordinator.partition_for(f"{prefix}{i}")
                == partition)


def commit_record(offset: int, batch: int, group: str, committed: int) -> LogRecord:
    key = codec.encode_offset_key(codec.OffsetKey(group, "orders", 0))
    value = codec.encode_offset_value(codec.OffsetValue(committed, -1, "", 5))
    return LogRecord(offset, batch, key, value)


def committed_offset(coordinator: GroupCoordinator, group: str) -> int | None:
    error, offsets = coordinator.fetch(group, [("orders", [0])])
    assert error == ErrorCode.none
    found = offsets[("orders", 0)]
    return None if found is None else found.offset


def test_bad_records_are_skipped_counted_and_logged_per_batch(
        caplog: pytest.LogCaptureFixture) -> None:
    group = group_on(1)
    offset_key = codec.encode_offset_key(codec.OffsetKey(group, "orders", 0))
    log = ScriptedLog()
    log.entries[1] = [
        commit_record(0, 0, group, 10),
        UnreadableBatch(1, 3, "codec 4: Unknown frame descriptor"),
        # one batch (base offset 4) of five bad records: one log line for all of them
        LogRecord(4, 4, None, b"value"),
        LogRecord(5, 4, b"\x00\x63garbage", b"value"),  # unknown record type 99
        LogRecord(6, 4, b"\x00\x01\x00\x09trunc", b"value"),  # truncated offset key
        LogRecord(7, 4, offset_key, b"\x00\x03\x00"),  # truncated value
        LogRecord(8, 4, offset_key, b"\x00\x09" + b"\x00" * 30),  # unknown value version
        commit_record(9, 9, group, 20),
    ]
    coordinator = coordinator_over(log)
    with caplog.at_level(logging.INFO, LOADER_LOG):
        assert coordinator.load(1)
    assert committed_offset(coordinator, group) == 20
    assert coordinator.skipped_records == {
        (1, loader.UNREADABLE_BATCH): 3, (1, loader.BAD_KEY): 2, (1, loader.UNKNOWN_TYPE): 1,
        (1, loader.BAD_VALUE): 2,
    }
    lines = [r for r in caplog.records if r.name == LOADER_LOG]
    assert [r.levelno for r in lines] == [logging.ERROR] * 3
    assert "offsets 1..3" in lines[0].getMessage() and "Unknown frame" in lines[0].getMessage()
    assert "5 record(s) of the batch at offset 4 (offsets 4..8)" in lines[1].getMessage()
    assert "8 record(s) skipped" in lines[2].getMessage()
    assert "__consumer_offsets-1" in lines[2].getMessage()


def test_unknown_record_types_are_only_a_warning_as_in_kafka(
        caplog: pytest.LogCaptureFixture) -> None:
    group = group_on(2)
    log = ScriptedLog()
    newer = b"\x00\x11" + codec.encode_group_key(codec.GroupKey(group))[2:]  # a streams group type
    log.entries[2] = [commit_record(0, 0, group, 7), LogRecord(1, 1, newer, b"\x00\x00")]
    coordinator = coordinator_over(log)
    with caplog.at_level(logging.INFO, LOADER_LOG):
        assert coordinator.load(2)
    assert committed_offset(coordinator, group) == 7
    levels = {r.levelno for r in caplog.records if r.name == LOADER_LOG}
    assert levels == {logging.WARNING}
    assert coordinator.skipped_records == {(2, loader.UNKNOWN_TYPE): 1}


def test_log_lines_are_bounded_however_many_batches_are_bad(
        caplog: pytest.LogCaptureFixture) -> None:
    log = ScriptedLog()
    log.entries[0] = [UnreadableBatch(i, i, "CRC-32C mismatch") for i in range(5000)]
    coordinator = coordinator_over(log)
    with caplog.at_level(logging.INFO, LOADER_LOG):
        assert coordinator.load(0)
    lines = [r.getMessage() for r in caplog.records if r.name == LOADER_LOG]
    assert len(lines) == loader.MAX_LOGGED_BATCHES + 1
    assert f"{5000 - loader.MAX_LOGGED_BATCHES} more batch(es)" in lines[-1]
    assert coordinator.skipped_records == {(0, loader.UNREADABLE_BATCH): 5000}


def test_a_failed_load_takes_only_its_partition_and_answers_not_coordinator(
        caplog: pytest.LogCaptureFixture) -> None:
    broken, healthy = group_on(3), group_on(0)
    log = ScriptedLog()
    log.entries[3] = [commit_record(0, 0, broken, 1)]
    log.raise_after[3] = OSError(5, "Input/output error")
    log.entries[0] = [commit_record(0, 0, healthy, 4)]
    coordinator = coordinator_over(log)
    with caplog.at_level(logging.ERROR):
        assert coordinator.load(0)
        assert not coordinator.load(3)
    assert "Input/output error" in coordinator.failed[3]
    assert any("cannot load __consumer_offsets-3" in r.getMessage() for r in caplog.records)
    assert broken not in coordinator.groups
    assert coordinator.ownership_error(broken) == ErrorCode.not_coordinator
    assert committed_offset(coordinator, healthy) == 4
    error, results = coordinator.fetch(broken, [("orders", [0])])
    assert (error, results) == (ErrorCode.not_coordinator, {})

    # Leadership moves away and back with a readable log: the partition loads again.
    coordinator.unload(3)
    assert 3 not in coordinator.failed
    del log.raise_after[3]
    assert coordinator.load(3)
    assert committed_offset(coordinator, broken) == 1


def test_a_failure_while_building_groups_leaves_no_half_loaded_partition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    group = group_on(1)
    members = tuple(codec.MemberValue(f"m-{i}", None, "c", "/h", 30_000, 10_000, b"", b"")
                    for i in (1, 2))
    meta = codec.GroupValue("consumer", 1, "range", "m-1", 5, members)
    log = ScriptedLog()
    log.entries[1] = [
        commit_record(0, 0, group, 3),
        LogRecord(1, 1, codec.encode_group_key(codec.GroupKey(group)),
                  codec.encode_group_value(meta)),
    ]
    scheduler = ManualScheduler()
    coordinator = GroupCoordinator(log, GroupConfig(num_partitions=PARTITIONS), scheduler,
                                   lambda: 1_000, lambda topic, partition: True)
    real = Membership.schedule_expiry

    def broken_after_one(self: Membership, g: Group, member: Member) -> None:
        if member.member_id == "m-2":
            raise RuntimeError("timer wheel is broken")
        real(self, g, member)

    monkeypatch.setattr(Membership, "schedule_expiry", broken_after_one)
    assert not coordinator.load(1)
    assert group not in coordinator.groups and 1 not in coordinator.owned
    assert "timer wheel is broken" in coordinator.failed[1]
    # The session timer the load started before it failed is cancelled with it.
    assert scheduler.pending() == 0


def test_a_partition_led_here_but_not_loaded_yet_answers_load_in_progress() -> None:
    """Kafka's LOADING state: clients retry COORDINATOR_LOAD_IN_PROGRESS, whereas a sync
    commit answered NOT_COORDINATOR fails in librdkafka."""
    group = group_on(2)
    coordinator = coordinator_over(ScriptedLog())
    coordinator.loading = {2}
    assert coordinator.ownership_error(group) == ErrorCode.coordinator_load_in_progress
    assert coordinator.ownership_error(group_on(1)) == ErrorCode.not_coordinator
    assert coordinator.load(2)
    assert coordinator.ownership_error(group) == ErrorCode.none

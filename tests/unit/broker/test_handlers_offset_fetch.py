"""OffsetFetch without a socket: the response shapes of v1-v7 (one group) and v8+ (many
groups) over a fake group coordinator. Only the `groups` face is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.broker.handlers import offsets
from strom.coordinator.group.model import CommittedOffset
from support.handler_context import call, context, request

OFFSET_FETCH = 9
Wanted = list[tuple[str, list[int]]] | None


@dataclass
class FakeCoordinator:
    committed: dict[str, dict[tuple[str, int], CommittedOffset]]
    errors: dict[str, str] = field(default_factory=dict)
    asked: list[tuple[str, Wanted]] = field(default_factory=list)

    def fetch(self, group_id: str, wanted: Wanted, member: tuple[str, int] | None = None
              ) -> tuple[str, dict[tuple[str, int], CommittedOffset | None]]:
        self.asked.append((group_id, wanted))
        if group_id in self.errors:
            return self.errors[group_id], {}
        held = self.committed.get(group_id, {})
        if wanted is None:
            return ErrorCode.none, dict(held)
        return ErrorCode.none, {(t, p): held.get((t, p)) for t, parts in wanted for p in parts}


@dataclass
class FakeGroups:
    coordinator: FakeCoordinator

    def coordinator_for(self, group_id: str) -> tuple[str, int]:
        raise AssertionError("OffsetFetch does not look for coordinators")


def _groups() -> FakeGroups:
    return FakeGroups(FakeCoordinator(
        {"g": {("t", 0): CommittedOffset(12, 3, "meta", 1), ("t", 1): CommittedOffset(7, -1, "", 1),
               ("u", 0): CommittedOffset(1, 0, "", 1)}},
        errors={"loading": ErrorCode.coordinator_load_in_progress}))


def _rows(topics: Any) -> dict[tuple[str, int], tuple[int, int, str, int]]:
    return {(t.name, int(p.partition_index)): (int(p.committed_offset),
                                                int(getattr(p, "committed_leader_epoch", -1)),
                                                p.metadata,
                                                int(p.error_code))
            for t in topics for p in t.partitions}


@pytest.mark.parametrize("version", [1, 5, 7])
def test_one_group_named_partitions(version: int) -> None:
    groups = _groups()
    body = request(OFFSET_FETCH, version, group_id="g",
                   topics=[{"name": "t", "partition_indexes": [0, 1, 2]}])
    response = call(offsets.offset_fetch, context(OFFSET_FETCH, version, groups=groups), body)
    assert groups.coordinator.asked == [("g", [("t", [0, 1, 2])])]
    rows = _rows(response.topics)
    assert rows[("t", 2)][0] == -1  # never committed: -1, no error
    assert rows[("t", 0)][0] == 12 and rows[("t", 1)][0] == 7
    assert {row[3] for row in rows.values()} == {0}
    if version >= 5:
        assert rows[("t", 0)][1] == 3
    if version >= 2:
        assert int(response.error_code) == ErrorCode.none


def test_all_partitions_of_a_group_when_topics_is_null() -> None:
    groups = _groups()
    body = request(OFFSET_FETCH, 7, group_id="g", topics=None)
    response = call(offsets.offset_fetch, context(OFFSET_FETCH, 7, groups=groups), body)
    assert groups.coordinator.asked == [("g", None)]
    assert set(_rows(response.topics)) == {("t", 0), ("t", 1), ("u", 0)}


def test_a_group_error_is_the_top_level_error() -> None:
    body = request(OFFSET_FETCH, 7, group_id="loading", topics=None)
    response = call(offsets.offset_fetch, context(OFFSET_FETCH, 7, groups=_groups()), body)
    assert int(response.error_code) == ErrorCode.coordinator_load_in_progress
    assert list(response.topics) == []


@pytest.mark.parametrize("version", [8, 9])
def test_many_groups_each_with_its_own_error(version: int) -> None:
    groups = _groups()
    body = request(OFFSET_FETCH, version, groups=[
        {"group_id": "g", "topics": [{"name": "u", "partition_indexes": [0]}]},
        {"group_id": "loading", "topics": None},
        {"group_id": "empty", "topics": None},
    ])
    response = call(offsets.offset_fetch, context(OFFSET_FETCH, version, groups=groups), body)
    by_id = {g.group_id: g for g in response.groups}
    assert list(by_id) == ["g", "loading", "empty"]
    assert _rows(by_id["g"].topics) == {("u", 0): (1, 0, "", 0)}
    assert int(by_id["loading"].error_code) == ErrorCode.coordinator_load_in_progress
    assert int(by_id["empty"].error_code) == ErrorCode.none and list(by_id["empty"].topics) == []

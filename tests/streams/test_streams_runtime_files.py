"""The runtime's local files, without a broker: task checkpoints in Kafka's `.checkpoint`
format, the persisted process id, internal-topic planning, and the murmur2 partitioner."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.streams import Grouped, Serdes, StreamsBuilder, TopologyError
from strom.streams.partitioning import murmur2, partition_for
from strom.streams.runtime import checkpoint
from strom.streams.runtime.config import StreamsConfig
from strom.streams.runtime.process_id import FILE_NAME, process_id
from strom.streams.runtime.topics import plan

S = Serdes.String


def test_streams_checkpoint_file_is_kafkas_format(tmp_path: Path) -> None:
    checkpoint.write(tmp_path, {("app-store-changelog", 3): 41, ("app-other-changelog", 3): 7})
    assert (tmp_path / ".checkpoint").read_text().splitlines() == [
        "0", "2", "app-store-changelog 3 41", "app-other-changelog 3 7"]
    assert checkpoint.read(tmp_path) == {("app-store-changelog", 3): 41,
                                         ("app-other-changelog", 3): 7}
    checkpoint.remove(tmp_path)
    assert checkpoint.read(tmp_path) == {}


def test_streams_process_id_survives_restarts(tmp_path: Path) -> None:
    first = process_id(tmp_path)
    assert process_id(tmp_path) == first
    assert first in (tmp_path / FILE_NAME).read_text()
    (tmp_path / FILE_NAME).write_text("garbage")
    assert process_id(tmp_path) != first  # unreadable: a new id, written back


def test_streams_murmur2_matches_kafka_test_vectors() -> None:
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert partition_for(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7


def test_streams_plan_sizes_internal_topics_from_their_writers() -> None:
    builder = StreamsBuilder()
    (builder.stream("lines", key_serde=S, value_serde=S)
     .group_by(lambda k, v: v, Grouped("g", S, S)).count("counts"))
    result = plan(builder.build(), "app", {"lines": 6})
    assert result.partitions["app-g-repartition"] == 6
    assert result.tasks == {0: 6, 1: 6}
    assert result.changelogs == {"app-counts-changelog": (6, {"cleanup.policy": "compact"})}


def test_streams_plan_refuses_joins_of_topics_not_copartitioned() -> None:
    builder = StreamsBuilder()
    builder.stream("orders", key_serde=S, value_serde=S).join(
        builder.table("customers", S, S), lambda a, b: a)
    with pytest.raises(TopologyError, match="not co-partitioned"):
        plan(builder.build(), "app", {"orders": 3, "customers": 2})


def test_streams_config_defaults_follow_the_guarantee(tmp_path: Path) -> None:
    assert StreamsConfig("a", "b:1").commit_interval_ms == 30_000
    assert StreamsConfig("a", "b:1", processing_guarantee="exactly_once_v2").commit_interval_ms == 100
    with pytest.raises(ValueError, match="processing_guarantee"):
        StreamsConfig("a", "b:1", processing_guarantee="exactly_once")
    assert StreamsConfig("a", "b:1", state_dir=tmp_path).app_state_dir == tmp_path / "a"

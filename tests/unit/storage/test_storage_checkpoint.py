"""Kafka's text files: offset checkpoints and meta.properties, byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strom.storage.checkpoint import (
    read_offset_checkpoint,
    read_properties,
    write_meta_properties,
    write_offset_checkpoint,
)
from strom.storage.errors import CorruptCheckpoint
from strom.storage.files import parse_partition_dir, parse_segment_name, segment_path


def test_checkpoint_exact_format_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "recovery-point-offset-checkpoint"
    offsets = {("my.topic-with-dash", 3): 1234, ("a", 0): 0, ("my.topic-with-dash", 10): 7}
    write_offset_checkpoint(path, offsets)
    assert path.read_text() == (
        "0\n3\na 0 0\nmy.topic-with-dash 3 1234\nmy.topic-with-dash 10 7\n"
    )
    assert read_offset_checkpoint(path) == offsets
    assert os.listdir(tmp_path) == [path.name]  # the .tmp was renamed over it


def test_empty_and_missing_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    assert read_offset_checkpoint(path) == {}
    write_offset_checkpoint(path, {})
    assert path.read_text() == "0\n0\n"
    assert read_offset_checkpoint(path) == {}


def test_reads_checkpoints_written_by_kafka(tmp_path: Path) -> None:
    path = tmp_path / "replication-offset-checkpoint"
    path.write_text("0\n2\n__consumer_offsets 12 0\norders 0 42\n")
    assert read_offset_checkpoint(path) == {("__consumer_offsets", 12): 0, ("orders", 0): 42}


@pytest.mark.parametrize(
    "text",
    ["", "1\n0\n", "0\n2\na 0 1\n", "0\n1\na 0\n", "0\n1\na x 1\n", "zero\n0\n"],
)
def test_corrupt_checkpoints_raise(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cp"
    path.write_text(text)
    with pytest.raises(CorruptCheckpoint):
        read_offset_checkpoint(path)


def test_meta_properties(tmp_path: Path) -> None:
    path = tmp_path / "meta.properties"
    write_meta_properties(path, 3, "MkU3OEVBNTcwNTJENDM2Qk")
    text = path.read_text()
    assert "version=0\n" in text and "broker.id=3\n" in text
    assert "cluster.id=MkU3OEVBNTcwNTJENDM2Qk\n" in text
    assert read_properties(path) == {
        "version": "0",
        "broker.id": "3",
        "cluster.id": "MkU3OEVBNTcwNTJENDM2Qk",
    }
    assert read_properties(tmp_path / "absent") is None


def test_names() -> None:
    assert segment_path(Path("/d"), 42, ".log") == Path("/d/00000000000000000042.log")
    assert parse_segment_name("00000000000000000042.timeindex") == (42, ".timeindex")
    assert parse_segment_name("42.log") is None
    assert parse_segment_name("00000000000000000042.log.deleted") is None
    assert parse_partition_dir("my.topic-with-dashes-3") == ("my.topic-with-dashes", 3)
    assert parse_partition_dir("__consumer_offsets-49") == ("__consumer_offsets", 49)
    assert parse_partition_dir("t-0.0123abcd-delete") is None
    assert parse_partition_dir("t-0.abc-future") is None
    assert parse_partition_dir("lost+found") is None

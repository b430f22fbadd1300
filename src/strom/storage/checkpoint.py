"""Kafka's small text files in each log dir: offset checkpoints and ``meta.properties``.

Offset checkpoints (``recovery-point-offset-checkpoint``, ``replication-offset-checkpoint``,
``log-start-offset-checkpoint``) are, exactly as Kafka writes them::

    0                 <- format version
    2                 <- number of entries
    my-topic 0 1234   <- topic, partition, offset; one line each
    my-topic 1 99

They are replaced atomically so a crash never leaves a half-written file: a torn recovery
point would make us skip recovery of data that was never flushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from strom.storage.errors import CorruptCheckpoint
from strom.storage.files import atomic_write

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
REPLICATION_CHECKPOINT = "replication-offset-checkpoint"
LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
META_PROPERTIES = "meta.properties"
CLEAN_SHUTDOWN_MARKER = ".kafka_cleanshutdown"
LOCK_FILE = ".lock"

CHECKPOINT_VERSION = 0
META_VERSION = 0

TopicPartition = tuple[str, int]


def format_offset_checkpoint(offsets: Mapping[TopicPartition, int]) -> bytes:
    lines = [str(CHECKPOINT_VERSION), str(len(offsets))]
    lines += [f"{topic} {partition} {offset}" for (topic, partition), offset in
              sorted(offsets.items())]
    return ("\n".join(lines) + "\n").encode()


def write_offset_checkpoint(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    atomic_write(path, format_offset_checkpoint(offsets))


def parse_offset_checkpoint(text: str, source: str = "checkpoint") -> dict[TopicPartition, int]:
    lines = text.splitlines()
    try:
        version = int(lines[0])
        count = int(lines[1])
    except (IndexError, ValueError) as exc:
        raise CorruptCheckpoint(f"{source}: malformed header") from exc
    if version != CHECKPOINT_VERSION:
        raise CorruptCheckpoint(f"{source}: unknown version {version}")
    entries = [line for line in lines[2:] if line.strip()]
    if len(entries) != count:
        raise CorruptCheckpoint(f"{source}: expected {count} entries, found {len(entries)}")
    offsets: dict[TopicPartition, int] = {}
    for line in entries:
        parts = line.split()
        if len(parts) != 3:
            raise CorruptCheckpoint(f"{source}: malformed line {line!r}")
        try:
            offsets[(parts[0], int(parts[1]))] = int(parts[2])
        except ValueError as exc:
            raise CorruptCheckpoint(f"{source}: malformed line {line!r}") from exc
    return offsets


def read_offset_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """Entries of a checkpoint file; {} if it does not exist; CorruptCheckpoint if garbled."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise CorruptCheckpoint(f"{path}: not text") from exc
    return parse_offset_checkpoint(text, str(path))


def read_properties(path: Path) -> dict[str, str] | None:
    """A Java ``.properties`` file as Kafka writes it (no escapes needed); None if absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, _, value = line.partition(":")
        props[key.strip()] = value.strip()
    return props


def write_meta_properties(path: Path, broker_id: int, cluster_id: str) -> None:
    """``meta.properties`` in Kafka's ZooKeeper-era format (``version=0``)."""
    text = f"#\n#Written by Strom\nversion={META_VERSION}\nbroker.id={broker_id}\n"
    text += f"cluster.id={cluster_id}\n"
    atomic_write(path, text.encode())

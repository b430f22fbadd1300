"""Task checkpoint files: the changelog offsets a persistent store is known to contain.

Kafka Streams writes `<state.dir>/<application.id>/<task id>/.checkpoint` after each
commit (version 0, then the entry count, then `topic partition offset` lines; the offset
is the last changelog offset the store holds). Restoration of a RocksDB store starts after
it instead of at the beginning of the changelog; a store directory without a checkpoint
is wiped and restored whole, since nothing says what it holds.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_NAME = ".checkpoint"
VERSION = 0


def read(task_dir: Path) -> dict[tuple[str, int], int]:
    path = task_dir / FILE_NAME
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    if len(lines) < 2 or lines[0].strip() != str(VERSION):
        return {}
    found: dict[tuple[str, int], int] = {}
    for line in lines[2:2 + int(lines[1])]:
        topic, partition, offset = line.rsplit(" ", 2)
        found[(topic, int(partition))] = int(offset)
    return found


def write(task_dir: Path, offsets: dict[tuple[str, int], int]) -> None:
    """Atomically: a temporary file renamed over the old one."""
    task_dir.mkdir(parents=True, exist_ok=True)
    lines = [str(VERSION), str(len(offsets))]
    lines += [f"{topic} {partition} {offset}" for (topic, partition), offset in offsets.items()]
    tmp = task_dir / (FILE_NAME + ".tmp")
    with open(tmp, "w") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, task_dir / FILE_NAME)


def remove(task_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (task_dir / FILE_NAME).unlink()

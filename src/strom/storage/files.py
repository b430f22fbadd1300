"""File and directory names of Kafka's layout, and durable file primitives.

Everything that knows how a name is spelled on disk lives here, so the rest of storage
talks about base offsets and (topic, partition) pairs, never about strings.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
TXN_INDEX_SUFFIX = ".txnindex"  # aborted transactions (txn_index)
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
TMP_SUFFIX = ".tmp"
# a damaged segment's original bytes, kept for the operator: <base>.log.<ms>.corrupt
CORRUPT_SUFFIX = ".corrupt"
DELETE_DIR_SUFFIX = "-delete"
FUTURE_DIR_SUFFIX = "-future"
STRAY_DIR_SUFFIX = "-stray"

_SEGMENT_NAME = re.compile(r"^(\d{20})(\.[a-z]+)$")
_PARTITION_DIR = re.compile(r"^(.+)-(\d+)$")


def segment_path(dir: Path, base_offset: int, suffix: str) -> Path:
    """``<dir>/00000000000000000042.log``: 20 digits, zero padded, like Kafka."""
    return dir / f"{base_offset:020d}{suffix}"


def parse_segment_name(name: str) -> tuple[int, str] | None:
    """``("00000000000000000042.index")`` -> ``(42, ".index")``; None if not a segment file."""
    match = _SEGMENT_NAME.match(name)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """``"my.topic-with-dashes-3"`` -> ``("my.topic-with-dashes", 3)``.

    The partition is what follows the *last* dash; topics may contain dashes and dots.
    Directories being deleted (``-delete``), moved (``-future``) or orphaned (``-stray``)
    are not partitions.
    """
    if name.endswith((DELETE_DIR_SUFFIX, FUTURE_DIR_SUFFIX, STRAY_DIR_SUFFIX)):
        return None
    match = _PARTITION_DIR.match(name)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def delete_dir_name(dir_name: str) -> str:
    """Kafka's name for a partition directory scheduled for deletion."""
    return f"{dir_name}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"


def fsync_dir(dir: Path) -> None:
    """Make creations, renames and unlinks inside ``dir`` durable."""
    fd = os.open(dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new file, never half.

    Write a sibling ``.tmp``, fsync it, rename it over the target, fsync the directory.
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)

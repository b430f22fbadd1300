"""Hands out producer ids that are never reused, across restarts and across brokers.

Ids are reserved in blocks of 1000, as Kafka does: the block is recorded durably before
any id of it is handed out, so a crash can skip ids but never repeat one. A single node
records the next free id in a local file; in a cluster the block comes from the metadata
store (a version-checked znode), so two brokers never hand out the same id.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

BLOCK = 1000


class ProducerIdManager:
    def __init__(self, reserve_block: Callable[[int], int]) -> None:
        self._reserve_block = reserve_block
        self._next = 0
        self._block_end = 0

    def next_id(self) -> int:
        if self._next >= self._block_end:
            self._next = self._reserve_block(BLOCK)
            self._block_end = self._next + BLOCK
        value = self._next
        self._next += 1
        return value


class FileBlockReserver:
    """Single-node reservations: the file holds the first id of the next free block."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __call__(self, size: int) -> int:
        start = int(self._path.read_text().strip()) if self._path.exists() else 0
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(f"{start + size}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        return start

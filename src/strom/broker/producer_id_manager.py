"""Hands out producer ids that are never reused, across restarts.

Ids are reserved in blocks: the end of the current block is written (and fsynced) before
any id of it is handed out, so a crash can skip ids but never repeat one. Kafka does the
same with blocks of 1000 through its controller.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK = 1000


class ProducerIdManager:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._next = int(path.read_text().strip()) if path.exists() else 0
        self._block_end = self._next

    def next_id(self) -> int:
        if self._next >= self._block_end:
            self._reserve(self._next + BLOCK)
        value = self._next
        self._next += 1
        return value

    def _reserve(self, end: int) -> None:
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(f"{end}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        self._block_end = end

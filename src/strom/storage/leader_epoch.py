"""The leader-epoch cache: at which offset each leader epoch began (`leader-epoch-checkpoint`).

A follower that rejoins after a leadership change asks the leader where its own last
epoch ended (OffsetForLeaderEpoch) and truncates there, instead of trusting a high
watermark that may be stale (KIP-101, KIP-279). The file uses Kafka's checkpoint
format: version `0`, a count, then `epoch start_offset` lines; it is rewritten
atomically whenever an epoch is added or truncated, which happens once per leader change.

The cache is kept consistent with its log by `PartitionLog` (partition_log.py): every
append assigns, a truncation forgets epochs from the new end, a raised log start
forgets epochs wholly below it.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path

FILE_NAME = "leader-epoch-checkpoint"
UNDEFINED = (-1, -1)


class LeaderEpochCache:
    def __init__(self, partition_dir: Path) -> None:
        self.path = partition_dir / FILE_NAME
        self.entries: list[tuple[int, int]] = self._load()

    def _load(self) -> list[tuple[int, int]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().split("\n")
        try:
            count = int(lines[1])
            entries = [tuple(int(x) for x in line.split()) for line in lines[2 : 2 + count]]
        except (IndexError, ValueError):
            return []
        return [(e[0], e[1]) for e in entries if len(e) == 2]

    def _flush(self) -> None:
        body = "0\n" + f"{len(self.entries)}\n" + "".join(f"{e} {o}\n" for e, o in self.entries)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else -1

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that `epoch` starts at `start_offset` (ignored unless it is a newer epoch)."""
        if epoch < 0 or epoch <= self.latest_epoch:
            return
        while self.entries and self.entries[-1][1] >= start_offset:
            self.entries.pop()  # an epoch with no record left (Kafka drops it too)
        self.entries.append((epoch, start_offset))
        self._flush()

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(largest known epoch <= `epoch`, the offset where it ended) as OffsetForLeaderEpoch
        answers; the latest epoch ends at the log end."""
        if not self.entries or epoch < self.entries[0][0]:
            return UNDEFINED
        epochs = [e for e, _ in self.entries]
        index = bisect.bisect_right(epochs, epoch) - 1
        found = self.entries[index][0]
        if index == len(self.entries) - 1:
            return found, log_end_offset
        return found, self.entries[index + 1][1]

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs starting at or after `end_offset` (the log was truncated there)."""
        kept = [(e, o) for e, o in self.entries if o < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log start moved to `start_offset` (retention, DeleteRecords): forget epochs
        wholly below it; the epoch holding it now starts there (Kafka's truncateFromStart,
        which keeps that epoch even when the log is empty, so a later OffsetForLeaderEpoch
        still knows the latest epoch)."""
        below = [i for i, (_, o) in enumerate(self.entries) if o <= start_offset]
        if not below:
            return
        last = below[-1]
        kept = [(self.entries[last][0], start_offset), *self.entries[last + 1 :]]
        if kept != self.entries:
            self.entries = kept
            self._flush()

    def clear(self) -> None:
        self.entries = []
        self.path.unlink(missing_ok=True)

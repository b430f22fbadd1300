"""Storage faults made loud: corrupt batches found and I/O errors met, logged and counted.

The counters are process-wide, like the logging module, because damage is found where no
broker is in reach (recovery while a log opens, reads deep in a segment); the broker's
Prometheus collector reads them at scrape time. A damaged batch is reported once per file
and byte position: a consumer retrying the same fetch must not flood the log, and the
metric counts damaged batches, not the fetches that met them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 10_000  # positions remembered for de-duplication; then start over


@dataclass
class StorageHealth:
    corrupt_batches: int = 0  # distinct damaged batches met by recovery or reads
    io_errors: int = 0  # OSErrors met by log writes, reads, flushes and rolls
    _seen: set[tuple[str, int]] = field(default_factory=set)


HEALTH = StorageHealth()


def report_corrupt(path: Path, position: int, reason: str, context: str) -> None:
    """Log a damaged batch at ERROR with its file and byte position, and count it."""
    key = (str(path), position)
    if key in HEALTH._seen:
        return
    if len(HEALTH._seen) >= _MAX_REMEMBERED:
        HEALTH._seen.clear()
    HEALTH._seen.add(key)
    HEALTH.corrupt_batches += 1
    log.error("corrupt batch in %s at byte %d (%s): %s", path, position, context, reason)


def count_io_error() -> None:
    HEALTH.io_errors += 1

"""What a stream thread does with an error a consumer hands out instead of a record.

librdkafka reports passing trouble (a broker restarting: `_TRANSPORT`, `_ALL_BROKERS_DOWN`;
end of a partition) through `consume()` too, and recovers from it by itself: those are
logged and skipped. Only fatal errors, and those no retry can cure, stop the thread.
"""

from __future__ import annotations

import logging
from typing import Any

from strom.streams.errors import StreamsError

log = logging.getLogger(__name__)

PARTITION_EOF = -191


def check(error: Any, what: str) -> None:
    """Raise StreamsError for an error that ends processing; log the others."""
    if error.code() == PARTITION_EOF:
        return
    if error.fatal() or not _retriable(error):
        raise StreamsError(f"{what}: {error}")
    log.warning("%s: %s (librdkafka retries)", what, error)


def _retriable(error: Any) -> bool:
    # transport-level errors are negative codes that librdkafka handles by reconnecting
    return bool(error.retriable()) or error.code() < 0

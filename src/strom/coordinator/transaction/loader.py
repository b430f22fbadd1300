"""Reading one `__transaction_state` partition into a shard, record by record.

As for `__consumer_offsets`, the fold must survive any content: a record that cannot be
decoded is skipped and counted (an unknown record type with a warning, as Kafka's
loader does; anything else as an error), and the rest of the partition still loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from strom.coordinator.group.config import LogRecord, MarkerEntry, UnreadableBatch
from strom.coordinator.transaction import codec, records

log = logging.getLogger(__name__)


def load_partition(partition: int, entries: Iterable[LogRecord | UnreadableBatch | MarkerEntry],
                   replay: Callable[[records.TxnRecord], None]) -> tuple[int, int]:
    """Replay ``entries`` into ``replay``; returns (records read, records skipped)."""
    read = skipped = 0
    for entry in entries:
        if isinstance(entry, MarkerEntry):
            continue  # no transaction writes into __transaction_state
        if isinstance(entry, UnreadableBatch):
            skipped += entry.span
            log.error("__transaction_state-%d: skipped the unreadable batch at offsets %d..%d: "
                      "%s", partition, entry.base_offset, entry.last_offset, entry.reason)
            continue
        read += 1
        record = _decode(partition, entry)
        if record is None:
            skipped += 1
            continue
        replay(record)
    return read, skipped


def _decode(partition: int, entry: LogRecord) -> records.TxnRecord | None:
    try:
        if entry.key is None:
            raise codec.CodecError("record without a key")
        txn_id = codec.decode_key(entry.key)
        value = None if entry.value is None else codec.decode_value(entry.value)
    except codec.UnknownRecordType as exc:
        log.warning("__transaction_state-%d offset %d: %s; ignored, as Kafka does", partition,
                    entry.offset, exc)
        return None
    except codec.CodecError as exc:
        log.error("__transaction_state-%d offset %d: skipped a record: %s", partition,
                  entry.offset, exc)
        return None
    return records.TxnRecord(txn_id, value)

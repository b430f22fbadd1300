"""Transaction markers: the control batches that end a transaction in a partition.

A marker is a batch with the transactional and control attribute bits, the producer's id
and epoch, no sequence, and one record: key (version int16 = 0, type int16: 0 ABORT,
1 COMMIT), value (version int16 = 0, coordinator epoch int32). The coordinator decides,
the partition leader writes the batch (WriteTxnMarkers), followers copy it, and every
reader of the log (producer state, the aborted-transaction index, the cleaner, consumers)
recognises it by these bytes.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from strom.protocol.records import Attr, decode_records, encode_batch

ABORT, COMMIT = 0, 1
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


class Marker(NamedTuple):
    committed: bool
    coordinator_epoch: int


def build(producer_id: int, producer_epoch: int, committed: bool, coordinator_epoch: int,
          timestamp_ms: int) -> bytes:
    """One marker batch (base offset 0: the log assigns it)."""
    key = _KEY.pack(0, COMMIT if committed else ABORT)
    value = _VALUE.pack(0, coordinator_epoch)
    return encode_batch([(key, value)], timestamp_ms=timestamp_ms, producer_id=producer_id,
                        producer_epoch=producer_epoch,
                        attributes=Attr.TRANSACTIONAL | Attr.CONTROL)


def marker_type(key: bytes | None) -> int | None:
    """ABORT or COMMIT from a control record's key; None if the key is not one."""
    if key is None or len(key) < _KEY.size:
        return None
    return int(_KEY.unpack_from(key)[1])


def parse(batch: bytes | memoryview) -> Marker | None:
    """The marker a control batch holds; None if it holds none we understand (Kafka skips
    unknown control record types)."""
    records = decode_records(batch)
    kind = marker_type(records[0].key) if records else None
    if kind not in (ABORT, COMMIT):
        return None
    value = records[0].value or b""
    coordinator_epoch = _VALUE.unpack_from(value)[1] if len(value) >= _VALUE.size else -1
    return Marker(kind == COMMIT, coordinator_epoch)

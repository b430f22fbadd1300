"""`share.isolation.level=read_committed` for share groups (KIP-932).

A read_committed share group reads up to the last stable offset and never hands out a
record of an aborted transaction nor a transaction marker: their offsets are archived,
as Kafka's SharePartition does. Which offsets those are follows the consumer's rule:
walking the batches in order, a producer's aborted transaction starts at the first
offset the log's transaction index gives and ends at that producer's next control
batch (its abort marker); every control batch is skipped too.
"""

from __future__ import annotations

from collections.abc import Iterable

from strom.protocol.records import read_header

HEADER_BYTES = 61


def skipped_offsets(data: bytes, aborted: Iterable[tuple[int, int]]) -> set[int]:
    """Offsets in ``data`` (whole batches) a read_committed reader must not see;
    ``aborted`` is (producer id, first offset) of the aborted transactions there."""
    pending = sorted(aborted, key=lambda a: a[1])
    active: set[int] = set()
    skipped: set[int] = set()
    pos = 0
    while pos + HEADER_BYTES <= len(data):
        header = read_header(data, pos)
        pos += 12 + header.batch_length
        while pending and pending[0][1] <= header.base_offset:
            active.add(pending.pop(0)[0])
        offsets = range(header.base_offset, header.base_offset + header.last_offset_delta + 1)
        if header.is_control:
            active.discard(header.producer_id)
            skipped.update(offsets)
        elif header.is_transactional and header.producer_id in active:
            skipped.update(offsets)
    return skipped

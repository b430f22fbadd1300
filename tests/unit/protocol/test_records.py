"""RecordBatch v2 codec: round trips, validation errors, patching."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from strom.protocol import records
from strom.protocol.records import Codec, InvalidBatch

keys = st.one_of(st.none(), st.binary(max_size=40))
values = st.one_of(st.none(), st.binary(max_size=300))


@given(st.lists(st.tuples(keys, values), min_size=1, max_size=20), st.sampled_from(list(Codec)),
       st.integers(0, 2**40))
def test_encode_validate_decode_round_trip(pairs, codec, base):
    batch = records.encode_batch(pairs, base_offset=base, codec=codec, timestamp_ms=1234)
    [header] = records.validate_batches(batch)
    assert header.records_count == len(pairs)
    assert header.codec == codec
    decoded = records.decode_records(batch)
    assert [(r.key, r.value) for r in decoded] == pairs
    assert [r.offset for r in decoded] == list(range(base, base + len(pairs)))


def test_crc_mismatch_is_corrupt_message():
    batch = bytearray(records.encode_batch([(b"k", b"v")]))
    batch[-1] ^= 0xFF
    with pytest.raises(InvalidBatch) as info:
        records.validate_batches(bytes(batch))
    assert info.value.reason == ErrorCode.corrupt_message


def test_legacy_magic_is_refused_with_a_format_error():
    legacy = struct.pack(">qi", 0, 14) + struct.pack(">iBBqi", 0, 1, 0, -1, -1)[:14]
    legacy = legacy + b"\0" * (records.HEADER_SIZE - len(legacy))
    legacy = legacy[:16] + b"\x01" + legacy[17:]
    with pytest.raises(InvalidBatch) as info:
        records.validate_batches(legacy)
    assert info.value.reason == ErrorCode.unsupported_for_message_format


def test_trailing_partial_batch_is_refused():
    batch = records.encode_batch([(b"k", b"v")])
    with pytest.raises(InvalidBatch):
        records.validate_batches(batch + batch[:30])


def test_patching_offset_and_epoch_keeps_crc_valid():
    batch = bytearray(records.encode_batch([(b"a", b"b"), (b"c", b"d")]))
    records.patch_base_offset(batch, 0, 99)
    records.patch_leader_epoch(batch, 0, 7)
    [header] = records.validate_batches(bytes(batch))
    assert (header.base_offset, header.partition_leader_epoch, header.last_offset) == (99, 7, 100)


def test_log_append_time_restamps_and_resigns():
    batch = bytearray(records.encode_batch([(b"a", b"b")], timestamp_ms=5))
    records.patch_log_append_time(batch, 0, len(batch), 1_700_000_000_000)
    [header] = records.validate_batches(bytes(batch))
    assert header.uses_log_append_time
    assert header.max_timestamp == 1_700_000_000_000
    assert records.decode_records(bytes(batch))[0].timestamp == 1_700_000_000_000


def test_scan_stops_at_torn_tail():
    one = records.encode_batch([(b"k", b"v")])
    two = records.encode_batch([(b"k2", b"v2")], base_offset=1)
    found = list(records.scan_batches(one + two[:-3], verify_crc=True))
    assert [pos for pos, _ in found] == [0]


@given(st.binary(max_size=400))
def test_validation_never_crashes_on_garbage(data):
    try:
        headers = records.validate_batches(data)
    except InvalidBatch:
        return
    assert sum(h.size for h in headers) == len(data)


@given(st.binary(min_size=1, max_size=200), st.integers(0, 150))
def test_mutated_batches_are_refused_or_consistent(noise, where):
    batch = bytearray(records.encode_batch([(b"key", b"value" * 10)] * 3))
    pos = where % len(batch)
    batch[pos : pos + len(noise)] = noise
    try:
        headers = records.validate_batches(bytes(batch))
    except InvalidBatch:
        return
    assert sum(h.size for h in headers) == len(batch)

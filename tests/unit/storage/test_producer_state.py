"""Idempotent producer sequence rules, checked without a broker."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from strom.protocol import records
from strom.storage.producer_state import ProducerStateManager, SequenceError


def header(pid: int, epoch: int, seq: int, count: int = 1) -> records.BatchHeader:
    batch = records.encode_batch([(None, b"v")] * count, producer_id=pid, producer_epoch=epoch,
                                 base_sequence=seq)
    return records.read_header(batch)


def append(state: ProducerStateManager, h: records.BatchHeader, offset: int) -> None:
    assert state.check(h) is None
    state.record(h, offset, 0)


def test_in_order_batches_are_accepted():
    state = ProducerStateManager()
    append(state, header(1, 0, 0, 3), 0)
    append(state, header(1, 0, 3, 2), 3)


def test_retry_of_a_recent_batch_is_a_duplicate_with_original_offsets():
    state = ProducerStateManager()
    for i in range(5):
        append(state, header(1, 0, i * 2, 2), 100 + i * 2)
    dup = state.check(header(1, 0, 2, 2))
    assert dup is not None and (dup.first_offset, dup.last_offset) == (102, 103)


def test_batch_outside_the_window_is_out_of_order():
    state = ProducerStateManager()
    for i in range(6):
        append(state, header(1, 0, i, 1), i)
    with pytest.raises(SequenceError) as info:
        state.check(header(1, 0, 0, 1))
    assert info.value.error == ErrorCode.out_of_order_sequence_number


def test_gap_is_rejected():
    state = ProducerStateManager()
    append(state, header(1, 0, 0, 1), 0)
    with pytest.raises(SequenceError) as info:
        state.check(header(1, 0, 2, 1))
    assert info.value.error == ErrorCode.out_of_order_sequence_number


def test_old_epoch_is_fenced_and_new_epoch_restarts_at_zero():
    state = ProducerStateManager()
    append(state, header(1, 3, 0, 1), 0)
    with pytest.raises(SequenceError) as info:
        state.check(header(1, 2, 1, 1))
    assert info.value.error == ErrorCode.invalid_producer_epoch
    with pytest.raises(SequenceError):
        state.check(header(1, 4, 5, 1))
    append(state, header(1, 4, 0, 1), 1)


def test_unknown_producer_may_start_anywhere():
    state = ProducerStateManager()
    append(state, header(9, 0, 41, 1), 0)
    append(state, header(9, 0, 42, 1), 1)


def test_sequence_wraps_after_int_max():
    state = ProducerStateManager()
    append(state, header(1, 0, 2**31 - 1, 1), 0)
    append(state, header(1, 0, 0, 1), 1)

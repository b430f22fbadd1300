"""The native record walk and its Python twin agree on every input, valid or not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strom.protocol import record_walk, records


def _python(body: bytes, count: int) -> tuple[object, ...]:
    return tuple(record_walk._walk_python(body, count))


def _native(body: bytes, count: int) -> tuple[object, ...]:
    assert record_walk._recordwalk is not None
    return tuple(record_walk._recordwalk.walk(body, count))


def test_the_native_walk_is_built() -> None:
    """CI builds the extension (pip install -e .); without it produce costs ~1 µs a record."""
    assert record_walk.NATIVE


def _body(values: list[tuple[bytes | None, bytes | None]]) -> bytes:
    return records.encode_batch(values, headers=(("h", b"v"), ("n", None)))[records.HEADER_SIZE:]


@given(st.lists(st.tuples(st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=300)),
                min_size=1, max_size=200))
def test_valid_batches_walk_the_same_in_both(values: list[tuple[bytes | None, bytes | None]]) -> None:
    body = _body(values)
    expected_null = next((i for i, (k, _) in enumerate(values) if k is None), -1)
    assert _native(body, len(values)) == _python(body, len(values)) == (0, 0, expected_null)


@settings(max_examples=500)
@given(st.data())
def test_mutated_batches_get_the_same_verdict_in_both(data: st.DataObject) -> None:
    values = data.draw(st.lists(st.tuples(st.binary(max_size=8), st.binary(max_size=30)),
                                min_size=1, max_size=20))
    body = bytearray(_body(values))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(body) - 1))
        body[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    mutated = bytes(body[:cut])
    count = data.draw(st.sampled_from([len(values), len(values) + 1, max(len(values) - 1, 0)]))
    assert _native(mutated, count) == _python(mutated, count)


@given(st.binary(max_size=200), st.integers(0, 2**31 - 1))
def test_random_bytes_never_crash_either(body: bytes, count: int) -> None:
    count = min(count, 1000)
    assert _native(body, count) == _python(body, count)


@pytest.mark.parametrize(("body", "count", "message"), [
    (b"", 1, "fewer records"),
    (b"\x02\x00", 1, "extends past"),
    (b"\xff" * 12, 1, "too long"),
])
def test_errors_carry_a_reason(body: bytes, count: int, message: str) -> None:
    with pytest.raises(record_walk.RecordWalkError, match=message):
        record_walk.walk(body, count)

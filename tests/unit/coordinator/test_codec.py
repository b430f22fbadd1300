"""`__consumer_offsets` record encoding round trips, and refusal of garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom.coordinator.group import codec

names = st.text(min_size=1, max_size=30)


@given(names, names, st.integers(0, 2**31 - 1))
def test_offset_key_round_trip(group, topic, partition):
    key = codec.OffsetKey(group, topic, partition)
    assert codec.decode_key(codec.encode_offset_key(key)) == key


@given(st.integers(-1, 2**62), st.integers(-1, 2**31 - 1), st.text(max_size=50),
       st.integers(0, 2**50))
def test_offset_value_round_trip(offset, epoch, metadata, ts):
    value = codec.OffsetValue(offset, epoch, metadata, ts)
    assert codec.decode_offset_value(codec.encode_offset_value(value)) == value


def test_group_value_round_trip():
    member = codec.MemberValue("m-1", "static-1", "client", "/127.0.0.1", 30000, 10000,
                               b"\x00sub", b"\x00assign")
    value = codec.GroupValue("consumer", 7, "range", "m-1", 123, (member,))
    assert codec.decode_group_value(codec.encode_group_value(value)) == value
    key = codec.GroupKey("g")
    assert codec.decode_key(codec.encode_group_key(key)) == key


@given(st.binary(max_size=60))
def test_garbage_is_a_codec_error_not_a_crash(data):
    for decode in (codec.decode_key, codec.decode_offset_value, codec.decode_group_value):
        try:
            decode(data)
        except codec.CodecError:
            pass
        except (UnicodeDecodeError, ValueError):
            pytest.fail("decoders must raise CodecError only")

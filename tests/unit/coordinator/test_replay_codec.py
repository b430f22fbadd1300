"""The `__consumer_offsets` codec reads anything without raising anything but CodecError.

Replay feeds it bytes from disks, older brokers and (formerly) clients; a stray
exception type would escape the loader's skip logic. Also: the flexible value version 4
(KIP-482 compact encodings, tagged fields) decodes as Kafka writes it.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from strom.coordinator.group import codec

DECODERS = (codec.decode_key, codec.decode_offset_value, codec.decode_group_value)


# --- encoders of the flexible version 4 (Kafka does not write it yet) ---------------------


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _compact_string(s: str | None) -> bytes:
    if s is None:
        return b"\x00"
    data = s.encode()
    return _uvarint(len(data) + 1) + data


def _compact_bytes(b: bytes) -> bytes:
    return _uvarint(len(b) + 1) + b


def _offset_value_v4(offset: int, epoch: int, metadata: str, ts: int, tagged: bytes = b"\x00"
                     ) -> bytes:
    return (struct.pack(">hqi", 4, offset, epoch) + _compact_string(metadata)
            + struct.pack(">q", ts) + tagged)


def _group_value_v4() -> bytes:
    member = (_compact_string("m-1") + _compact_string(None) + _compact_string("client")
              + _compact_string("/10.0.0.1") + struct.pack(">ii", 30_000, 10_000)
              + _compact_bytes(b"sub") + _compact_bytes(b"assign") + b"\x00")
    return (struct.pack(">h", 4) + _compact_string("consumer") + struct.pack(">i", 3)
            + _compact_string("range") + _compact_string("m-1") + struct.pack(">q", 5)
            + _uvarint(2) + member + b"\x01\x07\x01z")  # one member, one unknown tag


def _decodes_or_codec_error(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(codec.CodecError):  # anything else fails the test
            decode(data)


@settings(max_examples=500)
@given(st.binary(max_size=200))
@example(b"\x00\x04" + b"\xff" * 20)  # flexible value, varint longer than 5 bytes
@example(b"\x00\x04" + b"\x00" * 8 + b"\x00" * 4 + b"\x00" + b"\x00" * 8 + b"\x05")  # tags
@example(b"\x00\x03" + b"\x00\x01a" + b"\x00" * 4 + b"\xff\xff\xff\xff" + b"\x7f\xff\xff\xff")
def test_random_bytes_raise_only_codec_error(data: bytes) -> None:
    _decodes_or_codec_error(data)


def _valid_encodings() -> list[bytes]:
    member = codec.MemberValue("m-1", "static", "client", "/10.0.0.1", 30_000, 10_000,
                               b"\x00\x01sub", b"\x00\x01assign")
    return [
        codec.encode_offset_key(codec.OffsetKey("group", "topic", 3)),
        codec.encode_group_key(codec.GroupKey("group")),
        codec.encode_offset_value(codec.OffsetValue(42, 7, "meta", 1_700_000_000_000)),
        codec.encode_group_value(codec.GroupValue("consumer", 3, "range", "m-1", 5, (member,))),
        _offset_value_v4(42, 7, "meta", 99, tagged=b"\x01\x00\x02hi"),
        _group_value_v4(),
    ]


@settings(max_examples=300)
@given(st.sampled_from(_valid_encodings()), st.data())
def test_mutated_valid_records_raise_only_codec_error(valid: bytes, data: st.DataObject) -> None:
    """Truncations, bit flips and splices of real records: the likely shapes of damage."""
    cut = data.draw(st.integers(0, len(valid)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(1, 255)),
                               max_size=4))
    mutated = bytearray(valid[:cut] + data.draw(st.binary(max_size=16)))
    for pos, mask in flips:
        if pos < len(mutated):
            mutated[pos] ^= mask
    _decodes_or_codec_error(bytes(mutated))


def test_truncation_at_every_byte_raises_only_codec_error() -> None:
    for valid in _valid_encodings():
        for cut in range(len(valid)):
            _decodes_or_codec_error(valid[:cut])


def test_unknown_key_version_is_its_own_error_type() -> None:
    """The loader ignores these with a warning, as Kafka does for unknown record types."""
    for version in (3, 16, 99, -1, 32767):
        with pytest.raises(codec.UnknownRecordType) as info:
            codec.decode_key(struct.pack(">h", version) + b"\x00\x01g")
        assert info.value.version == version
    with pytest.raises(codec.CodecError) as short:
        codec.decode_key(b"\x00")
    assert not isinstance(short.value, codec.UnknownRecordType)


# --- flexible version 4 -------------------------------------------------------------------


def test_flexible_offset_value_v4_with_tagged_fields() -> None:
    value = codec.decode_offset_value(_offset_value_v4(42, 7, "meta", 99, b"\x02\x00\x01x\x05\x00"))
    assert value == codec.OffsetValue(42, 7, "meta", 99)


def test_flexible_group_value_v4() -> None:
    value = codec.decode_group_value(_group_value_v4())
    assert value == codec.GroupValue(
        "consumer", 3, "range", "m-1", 5,
        (codec.MemberValue("m-1", None, "client", "/10.0.0.1", 30_000, 10_000, b"sub",
                           b"assign"),))


def test_offset_value_v1_carries_an_expire_timestamp() -> None:
    data = struct.pack(">hq", 1, 10) + b"\x00\x02md" + struct.pack(">qq", 5, 6)
    assert codec.decode_offset_value(data) == codec.OffsetValue(10, -1, "md", 5)


# Bytes from Kafka 4.4.0's own generated classes (MessageUtil.toVersionPrefixedBytes of
# OffsetCommitValue / GroupMetadataValue with offset 42, epoch 7, metadata "meta",
# commit 99, expire 123; group "consumer"/3/"range"/"m-1" with one static member).
KAFKA_OFFSET_V1 = bytes.fromhex("0001000000000000002a00046d6574610000000000000063000000000000007b")
KAFKA_OFFSET_V4 = bytes.fromhex("0004000000000000002a00000007056d657461000000000000006300")
KAFKA_GROUP_V4 = bytes.fromhex(
    "000409636f6e73756d6572000000030672616e6765046d2d31000000000000000502046d2d310773"
    "746174696307636c69656e740a2f31302e302e302e310000753000002710047375620761737369676e0000")


def test_values_kafka_wrote_decode() -> None:
    assert codec.decode_offset_value(KAFKA_OFFSET_V1) == codec.OffsetValue(42, -1, "meta", 99)
    assert codec.decode_offset_value(KAFKA_OFFSET_V4) == codec.OffsetValue(42, 7, "meta", 99)
    assert codec.decode_group_value(KAFKA_GROUP_V4) == codec.GroupValue(
        "consumer", 3, "range", "m-1", 5,
        (codec.MemberValue("m-1", "static", "client", "/10.0.0.1", 30_000, 10_000, b"sub",
                           b"assign"),))

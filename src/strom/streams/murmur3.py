"""MurmurHash3 x64 128-bit, as Kafka's `org.apache.kafka.common.utils.Murmur3.hash128`
computes it (seed 104729): the hash a foreign-key join puts in its subscriptions and
responses to tell a stale answer from a current one. Kafka Streams and Strom Streams
instances share one FK join only if both hash a left value to the same 16 bytes, so this
is the public-domain algorithm (Austin Appleby's smhasher) with Kafka's seed, returned as
the two big-endian longs Kafka's ByteBuffer writes."""

from __future__ import annotations

import struct

SEED = 104729
_MASK = 0xFFFFFFFFFFFFFFFF
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK
    return h ^ (h >> 33)


def _mix_k1(k1: int) -> int:
    return (_rotl((k1 * _C1) & _MASK, 31) * _C2) & _MASK


def _mix_k2(k2: int) -> int:
    return (_rotl((k2 * _C2) & _MASK, 33) * _C1) & _MASK


def hash128(data: bytes, seed: int = SEED) -> tuple[int, int]:
    """(h1, h2) as unsigned 64-bit integers."""
    h1 = h2 = seed & _MASK
    blocks = len(data) // 16
    for k1, k2 in struct.iter_unpack("<QQ", data[:blocks * 16]):
        h1 ^= _mix_k1(k1)
        h1 = (((_rotl(h1, 27) + h2) & _MASK) * 5 + 0x52DCE729) & _MASK
        h2 ^= _mix_k2(k2)
        h2 = (((_rotl(h2, 31) + h1) & _MASK) * 5 + 0x38495AB5) & _MASK
    tail = data[blocks * 16:]
    if len(tail) > 8:
        h2 ^= _mix_k2(int.from_bytes(tail[8:], "little"))
    if tail:
        h1 ^= _mix_k1(int.from_bytes(tail[:8], "little"))
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _MASK
    return h1, (h2 + h1) & _MASK


def hash128_bytes(data: bytes) -> bytes:
    """The 16 bytes Kafka writes for `Murmur3.hash128(data)` (two big-endian longs)."""
    h1, h2 = hash128(data)
    return struct.pack(">QQ", h1, h2)

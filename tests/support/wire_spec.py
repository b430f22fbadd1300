"""The record encodings the test helpers write, from the Kafka protocol spec rather than
from Strom's codec: one independent writer for raw_client and the fuzz corpora."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Zig-zag varint (varlong for values beyond 32 bits), as records use."""
    raw = (value << 1) ^ (value >> 63)
    out = bytearray()
    while raw & ~0x7F:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def nullable(value: bytes | None) -> bytes:
    """A varint length (-1 for null) and the bytes."""
    return varint(-1) if value is None else varint(len(value)) + value

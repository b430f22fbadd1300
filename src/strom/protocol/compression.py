"""Compression codecs of the Kafka batch format, backed by cramjam (and zlib for gzip).

The broker never recompresses: batches are stored and served as produced. These codecs
serve code that must look inside a batch (tests, tools, compaction, internal topics).
Decompressed sizes are capped because a tiny compressed payload can expand without
bound (a "zip bomb" is the CVE-2022-34917 class of unauthenticated OOM).
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Callable

import cramjam

GZIP, SNAPPY, LZ4, ZSTD = 1, 2, 3, 4
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")
_CHUNK = struct.Struct(">i")


class DecompressionError(ValueError):
    pass


def compress(codec: int, data: bytes) -> bytes:
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == SNAPPY:
        return _xerial_frame(bytes(cramjam.snappy.compress_raw(data)))
    if codec == LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise DecompressionError(f"unknown codec {codec}")


def decompress(codec: int, data: bytes | memoryview, max_size: int) -> bytes:
    try:
        if codec == GZIP:
            return _gunzip(data, max_size)
        if codec == SNAPPY:
            return _unsnappy(data, max_size)
        if codec == LZ4:
            return _bounded(cramjam.lz4.decompress_into, data, max_size)
        if codec == ZSTD:
            return _bounded(cramjam.zstd.decompress_into, data, max_size)
        raise DecompressionError(f"unknown codec {codec}")
    except DecompressionError:
        raise
    except Exception as exc:  # codec libraries raise their own error types
        raise DecompressionError(f"codec {codec}: {exc}") from exc


def _bounded(decompress_into: Callable[[bytes | memoryview, mmap.mmap], int],
             data: bytes | memoryview, max_size: int) -> bytes:
    """Decompress into a buffer of `max_size` + 1 bytes; filling it means a bomb.

    The buffer is an anonymous mapping, so only the pages the output touches become
    resident: a 64 MiB cap costs nothing for a 10 KiB batch. cramjam stops writing when
    the buffer is full, so a 65 KB zstd payload that would expand to 2 GiB costs 64 MiB
    of writes at most, never 2 GiB.
    """
    with mmap.mmap(-1, max_size + 1) as out:
        try:
            size = decompress_into(data, out)
        except Exception as exc:  # cramjam: "failed to write whole buffer" when full
            if "whole buffer" in str(exc):
                raise DecompressionError(f"decompressed size exceeds {max_size}") from exc
            raise
        if size > max_size:
            raise DecompressionError(f"decompressed size exceeds {max_size}")
        return out[:size]


def _gunzip(data: bytes | memoryview, max_size: int) -> bytes:
    decoder = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
    out = decoder.decompress(data, max_size + 1)
    if len(out) > max_size:
        raise DecompressionError(f"decompressed size exceeds {max_size}")
    if not decoder.eof:
        raise DecompressionError("truncated gzip stream")
    return out


def _xerial_frame(block: bytes) -> bytes:
    """Java's client writes snappy in xerial's framing: a header, then sized blocks."""
    return _XERIAL_HEADER.pack(_XERIAL_MAGIC, 1, 1) + _CHUNK.pack(len(block)) + block


def _unsnappy(data: bytes | memoryview, max_size: int) -> bytes:
    if data[:len(_XERIAL_MAGIC)] != _XERIAL_MAGIC:
        return _raw_snappy(data, max_size)
    out = bytearray()
    pos = _XERIAL_HEADER.size
    while pos < len(data):
        if pos + 4 > len(data):
            raise DecompressionError("truncated xerial chunk header")
        (size,) = _CHUNK.unpack_from(data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise DecompressionError("xerial chunk extends past the payload")
        out += _raw_snappy(data[pos : pos + size], max_size - len(out))
        pos += size
    return bytes(out)


def _raw_snappy(block: bytes | memoryview, max_size: int) -> bytes:
    if cramjam.snappy.decompress_raw_len(block) > max_size:
        raise DecompressionError(f"decompressed size exceeds {max_size}")
    return bytes(cramjam.snappy.decompress_raw(block))

"""Every decompression has an output cap: bombs fail fast, truncations fail loudly."""

from __future__ import annotations

import resource

import cramjam
import pytest

from strom.protocol import compression
from strom.protocol.compression import DecompressionError

CAP = 8 << 20


@pytest.mark.parametrize("codec", [compression.GZIP, compression.SNAPPY, compression.LZ4,
                                   compression.ZSTD])
def test_round_trip_within_the_cap(codec: int) -> None:
    data = b"order-42,sku-7,qty=3\n" * 5000
    assert compression.decompress(codec, compression.compress(codec, data), CAP) == data


@pytest.mark.parametrize("codec", [compression.GZIP, compression.LZ4, compression.ZSTD])
def test_output_beyond_the_cap_is_refused_without_holding_it(codec: int) -> None:
    bomb = compression.compress(codec, bytes(64 << 20))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DecompressionError, match="exceeds"):
        compression.decompress(codec, bomb, CAP)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 32, f"peak RSS grew {grown_mib:.0f} MiB for an {CAP >> 20} MiB cap"


@pytest.mark.parametrize("codec", [compression.GZIP, compression.SNAPPY, compression.LZ4,
                                   compression.ZSTD])
def test_truncated_payloads_are_errors(codec: int) -> None:
    payload = compression.compress(codec, bytes(range(256)) * 200)
    with pytest.raises(DecompressionError):
        compression.decompress(codec, payload[: len(payload) // 2], CAP)


def test_snappy_declared_length_beyond_the_cap_is_refused_before_decoding() -> None:
    block = bytes(cramjam.snappy.compress_raw(bytes(1 << 20)))
    with pytest.raises(DecompressionError, match="exceeds"):
        compression.decompress(compression.SNAPPY, block, 1000)

"""A corpus of hostile produce payloads, each with the error Apache Kafka 4.x answers.

Every payload has a *valid* CRC unless its name says otherwise: the point is the content a
CRC cannot vouch for. The expected errors were checked against Kafka itself (the interop
suite sends the same corpus to both brokers, tests/interop/test_produce_validation.py).

Built here from the format spec rather than with strom.protocol, so a bug in Strom's
encoder cannot hide the same bug in its validator.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cramjam
import crc32c

from support.wire_spec import nullable, varint

NOW_MS = int(time.time() * 1000)
_TAIL = struct.Struct(">hiqqqhii")  # attributes .. records_count


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    errors: frozenset[str]  # what Strom answers (Kafka error names, lower case)
    topic_config: str = "plain"  # "plain" or "compacted"
    # What Kafka 4.4 answers where it differs from Strom (measured by the interop suite):
    # it fails undecodable payloads with UNKNOWN_SERVER_ERROR where Strom names the problem
    # (CORRUPT_MESSAGE / INVALID_RECORD), and it stores records whose offset deltas skip.
    kafka: frozenset[str] | None = None


def record(value: bytes | None, *, delta: int = 0, ts_delta: int = 0, key: bytes | None = None,
           headers: tuple[tuple[bytes, bytes | None], ...] = ()) -> bytes:
    body = b"\x00" + varint(ts_delta) + varint(delta) + nullable(key) + nullable(value)
    body += varint(len(headers))
    for hkey, hvalue in headers:
        body += nullable(hkey) + nullable(hvalue)
    return varint(len(body)) + body


def records(count: int, size: int = 20, keyed: bool = True) -> bytes:
    return b"".join(record(b"v" * size, delta=i, key=b"k%d" % i if keyed else None)
                    for i in range(count))


def batch(body: bytes, *, count: int, last_offset_delta: int | None = None, attributes: int = 0,
          base_ts: int = NOW_MS, max_ts: int | None = None, producer_id: int = -1,
          producer_epoch: int = -1, base_sequence: int = -1, magic: int = 2) -> bytes:
    """A batch around `body` (already compressed if `attributes` says so), CRC computed."""
    lod = count - 1 if last_offset_delta is None else last_offset_delta
    tail = _TAIL.pack(attributes, lod, base_ts, base_ts if max_ts is None else max_ts,
                      producer_id, producer_epoch, base_sequence, count) + body
    length = 4 + 1 + 4 + len(tail)
    return struct.pack(">qiibI", 0, length, -1, magic, crc32c.crc32c(tail)) + tail


def gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def snappy_xerial(data: bytes) -> bytes:
    block = bytes(cramjam.snappy.compress_raw(data))
    return b"\x82SNAPPY\x00" + struct.pack(">iii", 1, 1, len(block)) + block


CODECS: dict[int, Callable[[bytes], bytes]] = {
    1: gzip,
    2: snappy_xerial,
    3: lambda data: bytes(cramjam.lz4.compress(data)),
    4: lambda data: bytes(cramjam.zstd.compress(data)),
}
CODEC_NAMES = {1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def _bomb(codec: int) -> bytes:
    """A compressed body of zeros, under 1 MB on the wire and far above the broker's cap
    once expanded: 1 GiB for zstd, 512 MiB for gzip (deflate tops out near 1000:1), 128 MiB
    for lz4 (about 250:1). Snappy cannot make a bomb within 1 MB (about 20:1 at best)."""
    chunk = bytes(1 << 20)
    if codec == 1:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        return b"".join(comp.compress(chunk) for _ in range(512)) + comp.flush()
    if codec == 4:
        zstd = cramjam.zstd.Compressor()
        for _ in range(1024):
            zstd.compress(chunk)
        return bytes(zstd.finish())
    return bytes(cramjam.lz4.compress(bytes(128 << 20)))


def corrupt_cases() -> list[Case]:
    corrupt = frozenset({"corrupt_message"})
    invalid = frozenset({"invalid_record"})
    either = corrupt | invalid
    server_error = frozenset({"unknown_server_error"})
    good = records(3)
    cases = [
        Case("count-lies-high", batch(good, count=5), invalid),
        Case("count-lies-low", batch(good, count=2), invalid),
        Case("count-disagrees-with-offset-delta", batch(good, count=3, last_offset_delta=7),
             invalid),
        Case("last-offset-delta-2^31-1", batch(good, count=3, last_offset_delta=2**31 - 1),
             invalid),
        Case("zero-records", batch(b"", count=0, last_offset_delta=0), invalid),
        Case("record-length-lies-long", batch(varint(200) + good[1:], count=3), either),
        Case("record-length-negative", batch(varint(-5) + good[1:], count=3), either),
        Case("garbage-record-body", batch(bytes(range(256)) * 2, count=3), either),
        Case("trailing-garbage-after-records", batch(good + b"\x01\x02\x03", count=3), either),
        Case("offset-deltas-out-of-order",
             batch(record(b"a", delta=0) + record(b"b", delta=5), count=2), either,
             kafka=frozenset({"none"})),
        Case("negative-header-count",
             batch(varint(7) + b"\x00\x00\x00\x01\x02a" + varint(-3), count=1), either),
        Case("varint-too-long", batch(b"\xff" * 12, count=1), either, kafka=server_error),
        Case("control-batch-from-client", batch(good, count=3, attributes=0x20), invalid),
        Case("producer-id-without-sequence",
             batch(good, count=3, producer_id=4242, producer_epoch=0, base_sequence=-1), invalid),
        Case("timestamp-far-future", batch(good, count=3, base_ts=NOW_MS + 86_400_000 * 365),
             frozenset({"invalid_timestamp"})),
        Case("record-timestamp-far-future",
             batch(record(b"a", key=b"k") + record(b"b", delta=1, ts_delta=86_400_000 * 365,
                                                  key=b"k"), count=2),
             frozenset({"invalid_timestamp"})),
        Case("crc-wrong", _flip_crc(batch(good, count=3)), corrupt),
        Case("two-batches", batch(good, count=3) + batch(good, count=3), invalid),
        Case("unknown-codec-7", batch(good, count=3, attributes=7), either, kafka=server_error),
        Case("no-key-on-compacted-topic", batch(records(2, keyed=False), count=2), invalid,
             topic_config="compacted"),
    ]
    for codec, name in CODEC_NAMES.items():
        compress = CODECS[codec]
        cases += [
            Case(f"{name}-garbage-payload", batch(b"\x13\x37" * 100, count=3, attributes=codec),
                 either, kafka=server_error),
            Case(f"{name}-truncated-payload",
                 batch(compress(records(50))[:-9], count=50, attributes=codec), either,
                 kafka=server_error),
            Case(f"{name}-garbage-records-inside",
                 batch(compress(bytes(range(256)) * 4), count=3, attributes=codec), either,
                 kafka=server_error if codec == 3 else None),
            Case(f"{name}-count-lies", batch(compress(records(3)), count=9, attributes=codec),
                 invalid, kafka=server_error if codec == 3 else None),
        ]
    return cases


def bomb_cases() -> list[Case]:
    """Decompression bombs: tiny on the wire, a gigabyte once expanded (slow to build)."""
    return [Case(f"{CODEC_NAMES[codec]}-bomb", batch(_bomb(codec), count=1, attributes=codec),
                 frozenset({"corrupt_message", "invalid_record"}))
            for codec in (1, 3, 4)]


def valid_batch(count: int = 3, codec: int = 0) -> bytes:
    body = records(count)
    return batch(CODECS[codec](body) if codec else body, count=count, attributes=codec)


def _flip_crc(data: bytes) -> bytes:
    out = bytearray(data)
    out[17] ^= 0xFF
    return bytes(out)

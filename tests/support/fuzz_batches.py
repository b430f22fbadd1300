"""A corpus of corrupt record batches that carry a *valid* CRC-32C.

A CRC only proves the bytes arrived as the producer wrote them; it says nothing about
whether they are a well-formed batch. Every case here is therefore re-signed after it is
broken, so it passes the CRC check and reaches whatever validates record *content*:
record counts and lengths that lie, garbage record bodies, garbage or truncated
compressed payloads, decompression bombs, producer-state and transaction lies, offset
deltas and timestamps out of range, and writes to `__consumer_offsets`.

The batches are assembled here from the protocol spec (not with the broker's own
encoder), so a test never checks the broker's codec against itself. Each case names the
error codes Apache Kafka 4.4 answers for it (probed against a real Kafka broker with
`tests/fuzz/test_fuzz_kafka_oracle.py`); a produce of any of them must fail its partition
with one of those codes and leave the high watermark where it was.
"""

from __future__ import annotations

import random
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import cramjam
import crc32c
import lz4.block  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
from kio.schema.errors import ErrorCode

from support.wire_spec import nullable, varint

GZIP, SNAPPY, LZ4, ZSTD = 1, 2, 3, 4
CODECS = {"gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
TRANSACTIONAL = 0x10
CONTROL = 0x20
BOMB_SIZE = (1 << 30) + (16 << 20)  # a little over 1 GiB once decompressed

# the Kafka error codes the corpus expects
CORRUPT_MESSAGE = int(ErrorCode.corrupt_message)
INVALID_TOPIC_EXCEPTION = int(ErrorCode.invalid_topic_exception)
INVALID_TIMESTAMP = int(ErrorCode.invalid_timestamp)
UNSUPPORTED_FOR_MESSAGE_FORMAT = int(ErrorCode.unsupported_for_message_format)
OUT_OF_ORDER_SEQUENCE_NUMBER = int(ErrorCode.out_of_order_sequence_number)
INVALID_PRODUCER_EPOCH = int(ErrorCode.invalid_producer_epoch)
INVALID_PRODUCER_ID_MAPPING = int(ErrorCode.invalid_producer_id_mapping)
NOT_ENOUGH_REPLICAS = int(ErrorCode.not_enough_replicas)
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = int(ErrorCode.transactional_id_authorization_failed)
INVALID_RECORD = int(ErrorCode.invalid_record)
UNKNOWN_SERVER_ERROR = int(ErrorCode.unknown_server_error)


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return str(code)


# --- the wire format, from the spec --------------------------------------------------------


def record_body(offset_delta: int, key: bytes | None, value: bytes | None,
                headers: Sequence[tuple[bytes | None, bytes | None]] = (),
                ts_delta: int = 0, header_count: int | None = None) -> bytes:
    """One record without its length prefix; `header_count` may lie about `headers`."""
    out = b"\x00" + varint(ts_delta) + varint(offset_delta) + nullable(key) + nullable(value)
    out += varint(len(headers) if header_count is None else header_count)
    for hkey, hvalue in headers:
        out += nullable(hkey) + nullable(hvalue)
    return out


def record(offset_delta: int, key: bytes | None, value: bytes | None, **kw: Any) -> bytes:
    body = record_body(offset_delta, key, value, **kw)
    return varint(len(body)) + body


def records(n: int, prefix: bytes = b"v") -> bytes:
    """`n` well-formed records with keys, values and a header each."""
    return b"".join(record(i, b"k%d" % i, prefix + b"-%d" % i, headers=[(b"h", b"x")])
                    for i in range(n))


@dataclass(frozen=True)
class Header:
    """The fields of a v2 batch header a case may set; defaults are a plain batch."""

    count: int
    last_offset_delta: int | None = None  # None: count - 1
    attributes: int = 0
    base_timestamp: int | None = None  # None: now
    max_timestamp: int | None = None  # None: base_timestamp
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    magic: int = 2
    batch_length: int | None = None  # None: the true length (not covered by the CRC)


def batch(payload: bytes, header: Header) -> bytes:
    """A v2 batch around `payload` (records, compressed or not) with a correct CRC-32C."""
    base_ts = int(time.time() * 1000) if header.base_timestamp is None else header.base_timestamp
    max_ts = base_ts if header.max_timestamp is None else header.max_timestamp
    lod = header.count - 1 if header.last_offset_delta is None else header.last_offset_delta
    tail = struct.pack(">hiqqqhii", header.attributes, lod, base_ts, max_ts, header.producer_id,
                       header.producer_epoch, header.base_sequence, header.count) + payload
    crc = crc32c.crc32c(tail)
    length = 4 + 1 + 4 + len(tail) if header.batch_length is None else header.batch_length
    return struct.pack(">qiibI", 0, length, -1, header.magic, crc) + tail


def plain(n: int = 3, **fields: Any) -> bytes:
    """A valid uncompressed batch of `n` records with header `fields`."""
    return batch(records(n), Header(count=n, **fields))


# --- compression as Kafka's clients write it -------------------------------------------------


def compress(codec: int, data: bytes) -> bytes:
    """gzip; snappy in xerial framing; lz4 frame with independent blocks; zstd frame."""
    if codec == GZIP:
        return zlib.compress(data, wbits=31)
    if codec == SNAPPY:
        block = bytes(cramjam.snappy.compress_raw(data))
        return b"\x82SNAPPY\x00" + struct.pack(">iii", 1, 1, len(block)) + block
    if codec == LZ4:
        return bytes(lz4.frame.compress(data, block_linked=False, content_checksum=False))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(codec)


def _xxh32_small(data: bytes) -> int:
    """xxHash32 (seed 0) of fewer than 16 bytes: the LZ4 frame descriptor checksum."""
    mask, p1, p2, p3, p5 = 0xFFFFFFFF, 2654435761, 2246822519, 3266489917, 374761393
    h = (p5 + len(data)) & mask
    for byte in data:
        h = (h + byte * p5) & mask
        h = ((((h << 11) | (h >> 21)) & mask) * p1) & mask
    h ^= h >> 15
    h = (h * p2) & mask
    h ^= h >> 13
    h = (h * p3) & mask
    return h ^ (h >> 16)


def _lz4_bomb(total: int) -> bytes:
    """One LZ4 frame of 4 MiB independent blocks of zeros (about 4.4 MB per GiB)."""
    descriptor = b"\x60\x70"  # version 1, independent blocks, no checksums; 4 MiB blocks
    out = bytearray(b"\x04\x22\x4d\x18" + descriptor + bytes([(_xxh32_small(descriptor) >> 8) & 0xFF]))
    block = lz4.block.compress(bytes(4 << 20), store_size=False)
    for _ in range(-(-total // (4 << 20))):
        out += struct.pack("<I", len(block)) + block
    return bytes(out + b"\x00\x00\x00\x00")


def _zstd_bomb(total: int, declared: int | None = None) -> bytes:
    """One zstd frame of 128 KiB RLE blocks (4 bytes each): about 32 KB per GiB.

    The frame header declares its content size (`declared` may lie): a decoder that
    trusts it allocates that much before reading a block."""
    out = bytearray(b"\x28\xb5\x2f\xfd\xc0\x38")  # 8-byte content size, 128 KiB window
    out += struct.pack("<Q", total if declared is None else declared)
    full, rest = divmod(total, 128 << 10)
    sizes = [128 << 10] * full + ([rest] if rest else [])
    for i, size in enumerate(sizes):
        last = 1 if i == len(sizes) - 1 else 0
        out += struct.pack("<I", last | (1 << 1) | (size << 3))[:3] + b"\x00"
    return bytes(out)


def _gzip_bomb(total: int) -> bytes:
    """A single gzip member of zeros: deflate tops out near 1:1030, so ~1 MB per GiB."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    chunk = bytes(1 << 20)
    parts = [comp.compress(chunk) for _ in range(-(-total // len(chunk)))]
    return b"".join(parts) + comp.flush()


@cache
def bomb(codec: int) -> bytes:
    """A compressed payload of zeros expanding to a little over 1 GiB (built once)."""
    if codec == ZSTD:
        return _zstd_bomb(BOMB_SIZE)
    if codec == LZ4:
        return _lz4_bomb(BOMB_SIZE)
    if codec == GZIP:
        return _gzip_bomb(BOMB_SIZE)
    raise ValueError(codec)


# --- the cases -------------------------------------------------------------------------------


@dataclass
class CaseContext:
    """What a case may use to build its batch: a seeded RNG, the clock, and a way to get
    a producer id (and write one valid batch with it) from the broker under test."""

    rng: random.Random
    init_producer: Callable[[], tuple[int, int]] = lambda: (-1, -1)
    write_valid: Callable[[bytes], int] = lambda data: 0
    now_ms: int = field(default_factory=lambda: int(time.time() * 1000))


@dataclass(frozen=True)
class CorruptCase:
    """One corrupt produce: `build` returns the record set.

    `kafka` is the error code Apache Kafka 4.4 answers for it; `also` are codes accepted
    as equally right (CORRUPT_MESSAGE and INVALID_RECORD where Kafka itself answers
    UNKNOWN_SERVER_ERROR because a codec's exception escapes its validator unmapped).
    `appends` is how many records Kafka writes (0 for every truly corrupt case).
    `target` is "topic" (an ordinary topic) or "offsets" (`__consumer_offsets`);
    `transactional_id` goes into the Produce request as is."""

    name: str
    build: Callable[[CaseContext], bytes]
    kafka: int
    also: frozenset[int] = frozenset()
    target: str = "topic"
    transactional_id: str | None = None
    appends: int = 0

    @property
    def expect(self) -> frozenset[int]:
        return self.also | {self.kafka}


def _bad_record_length(delta: int) -> Callable[[CaseContext], bytes]:
    def build(ctx: CaseContext) -> bytes:
        body = record_body(0, b"k", b"value-0")
        return batch(varint(len(body) + delta) + body, Header(count=1))
    return build


def _negative_record_length(ctx: CaseContext) -> bytes:
    body = record_body(0, b"k", b"value")
    return batch(varint(-5) + body, Header(count=1))


def _huge_record_length(ctx: CaseContext) -> bytes:
    body = record_body(0, b"k", b"value")
    return batch(varint(0x7FFFFFFF) + body, Header(count=1))


def _garbage_records(ctx: CaseContext) -> bytes:
    return batch(ctx.rng.randbytes(200), Header(count=3))


def _garbage_after_valid_length(ctx: CaseContext) -> bytes:
    junk = ctx.rng.randbytes(40)
    return batch(varint(len(junk)) + junk, Header(count=1))


def _overlong_varint(ctx: CaseContext) -> bytes:
    return batch(b"\xff" * 11 + b"\x01" + record_body(0, b"k", b"v"), Header(count=1))


def _negative_header_count(ctx: CaseContext) -> bytes:
    return batch(record(0, b"k", b"v", header_count=-3), Header(count=1))


def _null_header_key(ctx: CaseContext) -> bytes:
    return batch(record(0, b"k", b"v", headers=[(None, b"x")]), Header(count=1))


def _key_past_record(ctx: CaseContext) -> bytes:
    body = b"\x00" + varint(0) + varint(0) + varint(1000) + b"short"
    return batch(varint(len(body)) + body, Header(count=1))


def _trailing_bytes(ctx: CaseContext) -> bytes:
    return batch(records(2) + ctx.rng.randbytes(13), Header(count=2))


def _valid_then_corrupt(ctx: CaseContext) -> bytes:
    return plain(2) + batch(records(3), Header(count=5))


def _future_timestamp(ctx: CaseContext) -> bytes:
    future = ctx.now_ms + 10 * 365 * 24 * 3600 * 1000
    return plain(2, base_timestamp=future)


def _sequence_without_producer(ctx: CaseContext) -> bytes:
    return plain(2, producer_id=-1, producer_epoch=-1, base_sequence=3)


def _producer_without_sequence(ctx: CaseContext) -> bytes:
    return plain(2, producer_id=424242, producer_epoch=0, base_sequence=-1)


def _unknown_producer_seq5(ctx: CaseContext) -> bytes:
    return plain(2, producer_id=ctx.rng.randrange(10**12, 10**13), producer_epoch=0,
                 base_sequence=5)


def _sequence_gap(ctx: CaseContext) -> bytes:
    pid, epoch = ctx.init_producer()
    ctx.write_valid(plain(1, producer_id=pid, producer_epoch=epoch, base_sequence=0))
    return plain(2, producer_id=pid, producer_epoch=epoch, base_sequence=5)


def _stale_epoch(ctx: CaseContext) -> bytes:
    pid, epoch = ctx.init_producer()
    ctx.write_valid(plain(1, producer_id=pid, producer_epoch=epoch + 1, base_sequence=0))
    return plain(1, producer_id=pid, producer_epoch=epoch, base_sequence=0)


def _transactional(ctx: CaseContext) -> bytes:
    pid, epoch = ctx.init_producer()
    return plain(2, producer_id=pid, producer_epoch=epoch, base_sequence=0,
                 attributes=TRANSACTIONAL)


def _legacy_v1(ctx: CaseContext) -> bytes:
    body = struct.pack(">bbq", 1, 0, ctx.now_ms) + struct.pack(">i", -1) + struct.pack(">i", 5)
    body += b"hello"
    message = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + body
    return struct.pack(">qi", 0, len(message)) + message


def _compressed(codec: int, payload: Callable[[CaseContext], bytes], count: int = 3,
                **fields: Any) -> Callable[[CaseContext], bytes]:
    def build(ctx: CaseContext) -> bytes:
        return batch(payload(ctx), Header(count=count, attributes=codec, **fields))
    return build


def _garbage(ctx: CaseContext) -> bytes:
    return ctx.rng.randbytes(300)


def _truncated(codec: int) -> Callable[[CaseContext], bytes]:
    def payload(ctx: CaseContext) -> bytes:
        full = compress(codec, records(40, b"truncated-" + b"x" * 50))
        return full[: len(full) // 2]
    return payload


def _with_magic(codec: int) -> Callable[[CaseContext], bytes]:
    """Garbage behind the codec's real magic bytes, so it gets past format sniffing."""
    magic = compress(codec, b"abc")[:12]
    return lambda ctx: magic + ctx.rng.randbytes(300)


def _lying_compressed_count(codec: int) -> Callable[[CaseContext], bytes]:
    return lambda ctx: compress(codec, records(3))


def _bomb_payload(codec: int) -> Callable[[CaseContext], bytes]:
    return lambda ctx: bomb(codec)


def _bomb_after_record(ctx: CaseContext) -> bytes:
    """One valid record, then a gigabyte of zeros: the count says there is nothing more."""
    head = record(0, b"k", b"first")
    zstd_head = compress(ZSTD, head)
    return batch(zstd_head + _zstd_bomb(BOMB_SIZE), Header(count=1, attributes=ZSTD))


def _zstd_lying_size(ctx: CaseContext) -> bytes:
    return batch(_zstd_bomb(64, declared=1 << 42), Header(count=1, attributes=ZSTD))


ALT = frozenset({CORRUPT_MESSAGE})  # Kafka says INVALID_RECORD; CORRUPT_MESSAGE is as fair
CODEC_FAILURE = frozenset({CORRUPT_MESSAGE, INVALID_RECORD})  # where Kafka leaks UNKNOWN_SERVER_ERROR


def _invalid(name: str, build: Callable[[CaseContext], bytes], **kw: Any) -> CorruptCase:
    return CorruptCase(name, build, INVALID_RECORD, ALT, **kw)


def _count_cases() -> list[CorruptCase]:
    return [
        _invalid("count-above-records", lambda ctx: batch(records(3), Header(count=5))),
        _invalid("count-below-records", lambda ctx: batch(records(3), Header(count=2))),
        _invalid("count-vs-offset-delta",
                 lambda ctx: batch(records(3), Header(count=3, last_offset_delta=1))),
        _invalid("count-zero", lambda ctx: batch(records(1), Header(count=0, last_offset_delta=0))),
        _invalid("count-negative",
                 lambda ctx: batch(records(1), Header(count=-1, last_offset_delta=0))),
        _invalid("count-huge-empty-body", lambda ctx: batch(b"", Header(count=1_000_000))),
        _invalid("last-offset-delta-max", lambda ctx: plain(1, last_offset_delta=2**31 - 1)),
        _invalid("last-offset-delta-negative", lambda ctx: plain(1, last_offset_delta=-1)),
    ]


def _record_cases() -> list[CorruptCase]:
    return [
        _invalid("record-length-too-long", _bad_record_length(+10)),
        _invalid("record-length-too-short", _bad_record_length(-3)),
        _invalid("record-length-negative", _negative_record_length),
        _invalid("record-length-huge", _huge_record_length),
        _invalid("garbage-records", _garbage_records),
        _invalid("garbage-record-body", _garbage_after_valid_length),
        CorruptCase("varint-overlong", _overlong_varint, UNKNOWN_SERVER_ERROR, CODEC_FAILURE),
        _invalid("header-count-negative", _negative_header_count),
        _invalid("header-key-null", _null_header_key),
        _invalid("key-past-record", _key_past_record),
        _invalid("trailing-bytes", _trailing_bytes),
        _invalid("valid-batch-then-corrupt", _valid_then_corrupt),
    ]


def _framing_cases() -> list[CorruptCase]:
    c = CorruptCase
    return [
        c("batch-length-negative", lambda ctx: plain(1, batch_length=-1), CORRUPT_MESSAGE),
        c("batch-length-below-header", lambda ctx: plain(1, batch_length=20), CORRUPT_MESSAGE),
        _invalid("batch-length-past-end", lambda ctx: plain(1, batch_length=5000)),
        c("magic-3", lambda ctx: plain(1, magic=3), CORRUPT_MESSAGE),
        c("legacy-magic-1", _legacy_v1, INVALID_RECORD, frozenset({UNSUPPORTED_FOR_MESSAGE_FORMAT})),
        c("codec-7", lambda ctx: batch(records(1), Header(count=1, attributes=7)),
          UNKNOWN_SERVER_ERROR, CODEC_FAILURE),
        _invalid("control-batch-from-client", lambda ctx: plain(1, attributes=CONTROL)),
        c("timestamp-far-future", _future_timestamp, INVALID_TIMESTAMP),
    ]


def _producer_cases() -> list[CorruptCase]:
    c = CorruptCase
    return [
        _invalid("producer-without-sequence", _producer_without_sequence),
        # Kafka accepts both: without a producer id the sequence means nothing, and an
        # unknown producer id may start at any sequence (KIP-360: its state may have been
        # removed by retention). They are here so no "fix" starts refusing them.
        c("sequence-without-producer", _sequence_without_producer, 0, appends=2),
        c("unknown-producer-seq-5", _unknown_producer_seq5, 0, appends=2),
        c("sequence-gap", _sequence_gap, OUT_OF_ORDER_SEQUENCE_NUMBER),
        c("stale-producer-epoch", _stale_epoch, INVALID_PRODUCER_EPOCH),
        c("transactional-no-transactional-id", _transactional,
          TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        # Kafka checks the transactional id against the producer id with its transaction
        # coordinator (INVALID_PRODUCER_ID_MAPPING), or answers NOT_ENOUGH_REPLICAS (retry)
        # while none is available; a broker without transactions may refuse outright.
        c("transactional-no-transaction", _transactional, INVALID_PRODUCER_ID_MAPPING,
          frozenset({NOT_ENOUGH_REPLICAS, TRANSACTIONAL_ID_AUTHORIZATION_FAILED}),
          transactional_id="fuzz-no-such-transaction"),
    ]


def _base_cases() -> list[CorruptCase]:
    return _count_cases() + _record_cases() + _framing_cases() + _producer_cases()


def _codec_cases() -> list[CorruptCase]:
    out = []
    for name, codec in CODECS.items():
        after_magic = INVALID_RECORD if codec == ZSTD else UNKNOWN_SERVER_ERROR
        out += [
            CorruptCase(f"{name}-garbage", _compressed(codec, _garbage), UNKNOWN_SERVER_ERROR,
                        CODEC_FAILURE),
            CorruptCase(f"{name}-garbage-after-magic", _compressed(codec, _with_magic(codec)),
                        after_magic, CODEC_FAILURE),
            CorruptCase(f"{name}-truncated", _compressed(codec, _truncated(codec), count=40),
                        UNKNOWN_SERVER_ERROR, CODEC_FAILURE),
            _invalid(f"{name}-count-above-records",
                     _compressed(codec, _lying_compressed_count(codec), count=6)),
        ]
    for name in ("gzip", "lz4", "zstd"):
        out.append(_invalid(f"{name}-bomb-1gib",
                            _compressed(CODECS[name], _bomb_payload(CODECS[name]), count=5)))
    out.append(_invalid("zstd-bomb-after-one-record", _bomb_after_record))
    out.append(CorruptCase("zstd-lying-content-size", _zstd_lying_size, UNKNOWN_SERVER_ERROR,
                           CODEC_FAILURE))
    return out


def _internal_topic_cases() -> list[CorruptCase]:
    def garbage_key(ctx: CaseContext) -> bytes:
        recs = b"".join(record(i, ctx.rng.randbytes(9), ctx.rng.randbytes(30)) for i in range(3))
        return batch(recs, Header(count=3))

    def refused(name: str, build: Callable[[CaseContext], bytes]) -> CorruptCase:
        return CorruptCase(name, build, INVALID_TOPIC_EXCEPTION, target="offsets")

    return [
        refused("offsets-valid-batch", lambda ctx: plain(2)),
        refused("offsets-garbage-records", garbage_key),
        refused("offsets-garbage-record-body", _garbage_records),
        refused("offsets-zstd-garbage", _compressed(ZSTD, _garbage)),
        refused("offsets-zstd-bomb", _compressed(ZSTD, _bomb_payload(ZSTD), count=5)),
    ]


def corrupt_cases() -> list[CorruptCase]:
    """Every corrupt case, in a fixed order (test ids are their names)."""
    return _base_cases() + _codec_cases() + _internal_topic_cases()


# --- sending a case --------------------------------------------------------------------------


@dataclass
class CaseResult:
    """What the broker answered for one case, and the high watermark around it."""

    name: str
    expect: frozenset[int]
    appends: int
    error_code: int | None  # None: the connection closed instead of an answer
    error_message: str | None
    hw_before: int
    hw_after: int

    @property
    def answered_as_kafka(self) -> bool:
        return self.error_code in self.expect

    @property
    def wrote_as_kafka(self) -> bool:
        """Nothing written for a corrupt batch (exactly `appends` records otherwise)."""
        return self.hw_after - self.hw_before == self.appends

    @property
    def ok(self) -> bool:
        return self.answered_as_kafka and self.wrote_as_kafka

    def describe(self) -> str:
        got = "connection closed" if self.error_code is None else error_name(self.error_code)
        want = "/".join(sorted(error_name(c) for c in self.expect))
        return (f"{self.name}: answered {got} ({self.error_message!r}), Kafka answers {want}; "
                f"high watermark {self.hw_before} -> {self.hw_after}")


@dataclass(frozen=True)
class Target:
    """Where corrupt batches go: an ordinary topic partition and a `__consumer_offsets` one."""

    topic: str
    partition: int = 0
    offsets_partition: int = 0


PRODUCE_VERSION = 9  # flexible; carries error_message and record_errors (v8+)


def _partition_of(case: CorruptCase, target: Target) -> tuple[str, int]:
    if case.target == "offsets":
        return "__consumer_offsets", target.offsets_partition
    return target.topic, target.partition


def _produce(client: Any, topic: str, partition: int, data: bytes,
             transactional_id: str | None = None) -> tuple[int, str | None]:
    from support.raw_client import make_request

    body = make_request(0, PRODUCE_VERSION, acks=-1, timeout=10_000,
                        transactional_id=transactional_id,
                        topic_data=[{"name": topic, "partition_data": [
                            {"index": partition, "records": data}]}])
    entry = client.request(0, PRODUCE_VERSION, body).body.responses[0].partition_responses[0]
    return int(entry.error_code), entry.error_message


RETRIABLE_INIT = (14, 15)  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE


def _init_producer(client: Any) -> tuple[int, int]:
    """An idempotent producer id; retried while the transaction coordinator loads."""
    deadline = time.monotonic() + 30
    while True:
        body = client.request(22, 4, transactional_id=None, transaction_timeout=60_000,
                              producer_id=-1, producer_epoch=-1).body
        code = int(body.error_code)
        if code == 0:
            return int(body.producer_id), int(body.producer_epoch)
        assert code in RETRIABLE_INIT and time.monotonic() < deadline, (
            f"InitProducerId failed: {error_name(code)}")
        time.sleep(0.2)


def case_context(client: Any, topic: str, partition: int, seed: int) -> CaseContext:
    def write_valid(data: bytes) -> int:
        code, message = _produce(client, topic, partition, data)
        assert code == 0, f"setup write refused: {error_name(code)} {message}"
        return code

    return CaseContext(rng=random.Random(seed), init_producer=lambda: _init_producer(client),
                       write_valid=write_valid)


def run_case(bootstrap: str, case: CorruptCase, target: Target, seed: int | None = None
             ) -> CaseResult:
    """Build the case (setup writes included), then produce it and read the high watermark
    before and after. Uses fresh connections so a closed one does not poison the next.

    The random bytes of a case come from `seed`, by default a fixed one per case name:
    garbage behind a codec's magic decodes a little way on some seeds and not on others,
    and Kafka's answer differs (INVALID_RECORD or UNKNOWN_SERVER_ERROR), so the Kafka
    oracle and the fuzz suite use the same bytes."""
    from support.raw_client import ConnectionClosed, RawClient, high_watermark

    seed = zlib.crc32(case.name.encode()) if seed is None else seed
    topic, partition = _partition_of(case, target)
    with RawClient(bootstrap, timeout=30) as client:
        data = case.build(case_context(client, topic, partition, seed))
        before = high_watermark(client, topic, partition)
    code: int | None
    message: str | None = None
    try:
        with RawClient(bootstrap, timeout=30) as client:
            code, message = _produce(client, topic, partition, data, case.transactional_id)
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        code = None
    with RawClient(bootstrap, timeout=30) as client:
        after = high_watermark(client, topic, partition)
    return CaseResult(case.name, case.expect, case.appends, code, message, before, after)


OFFSETS_GROUP = "fuzz-offsets-group"
RETRIABLE_COMMIT = {14, 15, 16}  # coordinator loading, not available, not coordinator
CORRUPT_TOPIC_CONFIGS = {"max.message.bytes": str(8 << 20)}  # bombs get past the size check


def java_string_hash(text: str) -> int:
    h = 0
    for ch in text:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def prepare_target(bootstrap: str, topic: str) -> Target:
    """Create the corrupt-batch topic and make `__consumer_offsets` exist by committing an
    offset for a group (through confluent-kafka); the offsets partition is that group's."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from support.raw_client import RawClient, create_topic

    with RawClient(bootstrap) as client:
        result = create_topic(client, topic, configs=CORRUPT_TOPIC_CONFIGS)
        assert result.error_code in (0, 36), f"create {topic}: {error_name(int(result.error_code))}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": OFFSETS_GROUP,
                         "enable.auto.commit": False})
    deadline = time.monotonic() + 60
    try:
        while True:  # a new __consumer_offsets answers NOT_COORDINATOR while it loads
            try:
                consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
                break
            except KafkaException as exc:
                if exc.args[0].code() not in RETRIABLE_COMMIT or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()
    partition = abs(java_string_hash(OFFSETS_GROUP)) % 50
    return Target(topic, 0, partition)

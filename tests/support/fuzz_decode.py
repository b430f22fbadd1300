"""Oracles on what the broker answers and stores, for frame fuzzing.

1. Every answer decodes as the API and version the request's header named (Kafka
   answers a request it parsed with that request's schema; ApiVersions at a version it
   lacks is answered as v0, KIP-511).
2. Whatever a Produce answer acknowledged can be read back and is well formed: the
   batch at the acknowledged offset parses strictly, record by record, as a consumer
   would parse it. A broker that acknowledges a batch no consumer can read has stored
   poison (issue 9: lying counts and lengths were stored with error NONE).

The strict parser here is written from the protocol spec, independent of the broker's
codec, and decompresses with the codec libraries clients use, with an output cap.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import cramjam
import lz4.frame  # type: ignore[import-untyped]
import zstandard

MAX_DECOMPRESSED = 64 << 20


class Malformed(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    raw, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise Malformed("varint too long")


def _skip_bytes(buf: bytes, pos: int, end: int, nullable: bool) -> int:
    length, pos = _varint(buf, pos)
    if length < 0:
        if not nullable:
            raise Malformed(f"negative length {length}")
        return pos
    if pos + length > end:
        raise Malformed("field extends past its record")
    return pos + length


def _decompress(codec: int, data: bytes) -> bytes:
    if codec == 1:
        out = zlib.decompressobj(wbits=47).decompress(data, MAX_DECOMPRESSED)
    elif codec == 2:
        out = _unsnappy(data)
    elif codec == 3:
        out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=MAX_DECOMPRESSED)
    elif codec == 4:
        out = _unzstd(data)
    else:
        raise Malformed(f"codec {codec}")
    if len(out) >= MAX_DECOMPRESSED:
        raise Malformed("decompresses beyond the cap")
    return bytes(out)


def _unzstd(data: bytes) -> bytes:
    out = bytearray()
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
        while len(out) < MAX_DECOMPRESSED:
            chunk = reader.read(1 << 20)
            if not chunk:
                break
            out += chunk
    return bytes(out)


def _unsnappy(data: bytes) -> bytes:
    if not data.startswith(b"\x82SNAPPY\x00"):
        return bytes(cramjam.snappy.decompress_raw(data))
    out, pos = bytearray(), 16
    while pos < len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        if size < 0 or pos + 4 + size > len(data):
            raise Malformed("xerial chunk")
        out += cramjam.snappy.decompress_raw(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return bytes(out)


def _check_record(body: bytes, pos: int) -> int:
    length, pos = _varint(body, pos)
    end = pos + length
    if length < 6 or end > len(body):
        raise Malformed(f"record length {length}")
    pos += 1  # attributes
    _, pos = _varint(body, pos)  # timestamp delta
    _, pos = _varint(body, pos)  # offset delta
    pos = _skip_bytes(body, pos, end, nullable=True)  # key
    pos = _skip_bytes(body, pos, end, nullable=True)  # value
    count, pos = _varint(body, pos)
    if count < 0:
        raise Malformed(f"header count {count}")
    for _ in range(count):
        pos = _skip_bytes(body, pos, end, nullable=False)
        pos = _skip_bytes(body, pos, end, nullable=True)
    if pos != end:
        raise Malformed("record length does not match its fields")
    return end


def check_batch(batch: bytes) -> None:
    """Raise Malformed unless `batch` (one whole v2 batch) parses strictly."""
    if len(batch) < 61 or batch[16] != 2:
        raise Malformed("not a v2 batch")
    attributes, lod = struct.unpack_from(">hi", batch, 21)
    (count,) = struct.unpack_from(">i", batch, 57)
    if attributes & 0x20:
        return  # a control batch written by the broker itself
    if count <= 0 or lod != count - 1:
        raise Malformed(f"records count {count} with last offset delta {lod}")
    body = batch[61:]
    if attributes & 0x07:
        try:
            body = _decompress(attributes & 0x07, body)
        except Malformed:
            raise
        except Exception as exc:  # the codec libraries' own errors
            raise Malformed(f"decompression: {exc}") from exc
    pos = 0
    for _ in range(count):
        pos = _check_record(body, pos)
    if pos != len(body):
        raise Malformed(f"{len(body) - pos} bytes after the last record")


def batch_at(records: bytes, offset: int) -> bytes | None:
    """The whole batch of a fetched record set that holds `offset`."""
    pos = 0
    while len(records) - pos >= 61:
        base, length = struct.unpack_from(">qi", records, pos)
        last = base + struct.unpack_from(">i", records, pos + 23)[0]
        if length < 49 or pos + 12 + length > len(records):
            return None
        if base <= offset <= last:
            return records[pos : pos + 12 + length]
        pos += 12 + length
    return None


def decode_answer(payload: bytes, response: bytes) -> Any:
    """Decode an answer with the schema its request named; raises if it does not fit."""
    from support.raw_client import decode_response

    api, version = struct.unpack_from(">hh", payload, 4)
    if api == 18:
        try:
            return decode_response(response, 18, version).body
        except Exception:  # noqa: BLE001 - any decode failure: KIP-511's v0 fallback
            return decode_response(response, 18, 0).body
    return decode_response(response, api, version).body


def acknowledged(body: Any) -> list[tuple[str, int, int]]:
    """(topic, partition, base offset) of every partition a Produce answer acknowledged."""
    out = []
    for topic in body.responses:
        name = getattr(topic, "name", None)
        for part in topic.partition_responses:
            if part.error_code == 0 and part.base_offset >= 0 and name:
                out.append((str(name), int(part.index), int(part.base_offset)))
    return out


def check_stored(bootstrap: str, topic: str, partition: int, offset: int) -> str | None:
    """None if the batch holding `offset` reads back and parses; else what is wrong."""
    from support.raw_client import RawClient, fetch

    with RawClient(bootstrap) as client:
        entry = fetch(client, topic, offset, partition=partition)
    if entry.error_code != 0:
        return f"fetch {topic}-{partition}@{offset} answered error {entry.error_code}"
    batch = batch_at(bytes(entry.records or b""), offset)
    if batch is None:
        return f"no batch holding {topic}-{partition}@{offset} in the fetch answer"
    try:
        check_batch(batch)
    except Malformed as exc:
        return f"{topic}-{partition}@{offset} acknowledged but malformed: {exc}"
    return None

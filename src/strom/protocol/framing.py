"""Turning a byte stream into request frames, and requests and responses into bytes.

Sans-I/O: nothing here touches a socket. The server feeds received bytes to a
`FrameDecoder` and writes what `encode_response` returns. Both directions live here: a
broker talking to another (`strom.broker.replication.peer`) writes with `encode_request` and reads
with `decode_response`, the same kio schemas and header rules the server side uses.

Every Kafka message is a 4-byte big-endian size followed by that many bytes. A size
that is negative or above `socket.request.max.bytes` is a protocol violation: the
connection must be closed before anything is allocated for it (CVE-2022-34917).
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32

from strom.protocol import apis, guard
from strom.protocol.api_keys import ApiKey
from strom.protocol.produce_request import read_produce
from strom.protocol.schema import null_required_array

_SIZE = struct.Struct(">i")
_SMALL_READ = 4096  # reads shorter than this that continue a long run of reads are
_MANY_CHUNKS = 8  # appended to one bytearray rather than kept one object each
_CORRELATION = struct.Struct(">i")
_read_header_v1 = entity_reader(RequestHeaderV1)
_read_header_v2 = entity_reader(RequestHeaderV2)
_read_response_header_v0 = entity_reader(ResponseHeaderV0)
_read_response_header_v1 = entity_reader(ResponseHeaderV1)


class FrameError(Exception):
    """The peer broke framing; the only safe answer is closing the connection."""


class RequestDecodeError(Exception):
    """A well-framed request whose header or body does not parse."""

    def __init__(self, message: str, api_key: int = -1, api_version: int = -1,
                 correlation_id: int | None = None) -> None:
        super().__init__(message)
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


class FrameDecoder:
    """Accumulates bytes and yields whole frames (without their size prefix).

    Received chunks are kept in a list and joined only once a whole frame is there, so a
    1 MiB produce arriving in 64 KiB reads is copied once, not once per read. Nothing is
    allocated for the size a frame declares: memory grows with the bytes that actually
    arrive, which the broker caps across connections. Once a frame has taken many reads,
    further small ones are appended to one bytearray, so a peer trickling a frame a byte
    at a time costs a byte per byte, not a bytes object and a list slot per byte.

    Frames are writable memoryviews over a buffer of their own (shared by the frames of
    one read): that one copy out of the transport's bytes is the last, since a produce
    request's records are slices of it (`produce_request`) and the log patches them in
    place before writing them.
    """

    def __init__(self, max_frame_size: int) -> None:
        self._chunks: list[bytes] = []  # a bytearray only after the first (see feed)
        self.buffered = 0  # bytes held of a frame not yet complete (size prefix included)
        self._wanted = 4  # bytes needed before parsing can make progress
        self._max = max_frame_size

    def feed(self, data: bytes) -> list[memoryview]:
        chunks = self._chunks
        if len(chunks) >= _MANY_CHUNKS and len(data) < _SMALL_READ:
            last = chunks[-1]
            if type(last) is bytearray:
                last += data
            else:
                chunks.append(bytearray(data))  # type: ignore[arg-type]  # never chunks[0]
        else:
            chunks.append(data)
        self.buffered += len(data)
        if self.buffered < self._wanted:
            return []
        # one read, or a join of several into a buffer that is the frames' own
        joined = len(chunks) > 1
        buf = bytearray().join(chunks) if joined else chunks[0]
        spans: list[tuple[int, int]] = []
        pos, end = 0, len(buf)
        self._wanted = 4
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(buf, pos)
            if size < 0 or size > self._max:
                raise FrameError(f"frame size {size} outside [0, {self._max}]")
            if end - pos - 4 < size:
                self._wanted = 4 + size
                break
            spans.append((pos + 4, pos + 4 + size))
            pos += 4 + size
        frames = _frames(buf, joined, pos, spans) if spans else []
        # the rest is bytes, never the joined buffer: frames are views of that one
        rest = b"" if pos == end else bytes(memoryview(buf)[pos:]) if joined else chunks[0][pos:]
        self._chunks = [rest] if rest else []
        self.buffered = len(rest)
        return frames

    def clear(self) -> None:
        """Drop what is held (the connection is gone)."""
        self._chunks = []
        self.buffered = 0
        self._wanted = 4


def _frames(buf: bytes | bytearray, joined: bool, used: int, spans: list[tuple[int, int]]
            ) -> list[memoryview]:
    """The frames as writable slices of one buffer: the joined reads, or a copy of the
    part of one read they fill."""
    block = memoryview(buf if joined else bytearray(memoryview(buf)[:used]))
    return [block[start:stop] for start, stop in spans]


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body: Any  # a kio request entity, or None when the version is not one we serve


def decode_request(frame: bytes | memoryview) -> DecodedRequest:
    """Parse header and body of one frame. Unknown API versions yield body=None.

    Produce is read by `produce_request`, whose records are slices of ``frame``; kio
    reads the rest from a read-only view (its readers refuse writable buffers)."""
    raw = frame
    frame = frame.toreadonly() if isinstance(frame, memoryview) else frame
    try:
        header_v1, size = _read_header_v1(frame, 0)
    except Exception as exc:
        correlation = _CORRELATION.unpack_from(frame, 4)[0] if len(frame) >= 8 else None
        raise RequestDecodeError(f"bad request header: {exc}", correlation_id=correlation) from exc
    api_key = int(header_v1.request_api_key)
    version = int(header_v1.request_api_version)
    correlation_id = int(header_v1.correlation_id)
    spec = apis.request_spec(api_key, version)
    if spec is None:
        return DecodedRequest(api_key, version, correlation_id, header_v1.client_id, None)
    try:
        if spec.flexible:
            _, size = _read_header_v2(frame, 0)
        body = _read_body(spec, raw, frame, size)
    except Exception as exc:
        raise RequestDecodeError(
            f"cannot decode {spec.name} v{version}: {exc}", api_key, version, correlation_id
        ) from exc
    # Bytes after the body are ignored, as Kafka does: librdkafka's all-topics Metadata
    # (v9+) leaves 3 bytes of a 4-byte count placeholder in the request.
    return DecodedRequest(api_key, version, correlation_id, header_v1.client_id, body)


def _read_body(spec: apis.RequestSpec, raw: bytes | memoryview, frame: bytes | memoryview,
               size: int) -> Any:
    if spec.api_key == ApiKey.PRODUCE:  # bounds every length itself, as `guard` does
        return read_produce(raw, size, spec.version)
    guard.check_entity(spec.request_type, frame, size, len(frame))
    body, _ = spec.reader(frame, size)
    null_array = null_required_array(body)
    if null_array is not None:
        raise ValueError(f"non-nullable field {null_array} was serialized as null")
    return body


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A response body already in wire bytes, from a hot path that writes its own
    (``metadata_response``), so kio's writer never sees it. ``errors`` holds its non-zero
    error codes, which the broker's metrics would otherwise find in the entity."""

    parts: Sequence[bytes | bytearray | memoryview]
    errors: Sequence[int] = ()


def encode_response(correlation_id: int, api_key: int, version: int, body: Any) -> bytes:
    """Size prefix, response header (v1 with tagged fields when flexible) and body."""
    if isinstance(body, EncodedBody):
        return _join_encoded(correlation_id, apis.response_header_flexible(api_key, version),
                             body.parts)
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    out.write(_CORRELATION.pack(correlation_id))
    flexible_header = apis.response_header_flexible(api_key, version)
    if flexible_header:
        out.write(b"\0")  # no tagged fields in the response header
    entity_writer(type(body))(out, body)
    data = out.getbuffer()
    _SIZE.pack_into(data, 0, len(data) - 4)
    del data
    return out.getvalue()


def _join_encoded(correlation_id: int, flexible_header: bool,
                  parts: Sequence[bytes | bytearray | memoryview]) -> bytes:
    return b"".join(_encoded_buffers(correlation_id, flexible_header, parts))


def _encoded_buffers(correlation_id: int, flexible_header: bool,
                     parts: Sequence[bytes | bytearray | memoryview]
                     ) -> list[bytes | bytearray | memoryview]:
    header = b"\0" if flexible_header else b""  # no tagged fields in the response header
    size = 4 + len(header) + sum(map(len, parts))
    return [_SIZE.pack(size) + _CORRELATION.pack(correlation_id) + header, *parts]


def response_buffers(correlation_id: int, api_key: int, version: int, body: Any
                     ) -> list[bytes | bytearray | memoryview]:
    """``encode_response`` as buffers to write in order (``transport.writelines``): an
    ``EncodedBody``'s parts, such as a Fetch answer's record batches, are never joined."""
    if isinstance(body, EncodedBody):
        return _encoded_buffers(correlation_id,
                                apis.response_header_flexible(api_key, version), body.parts)
    return [encode_response(correlation_id, api_key, version, body)]


# The client half: what a broker sends to another broker and reads back.


@dataclass(frozen=True, slots=True)
class DecodedResponse:
    correlation_id: int
    body: Any  # a kio response entity


def encode_request(correlation_id: int, api_key: int, version: int, body: Any,
                   client_id: str | None) -> bytes:
    """Size prefix, request header (v2 with tagged fields when the API version is flexible,
    else v1) and body: the frame `decode_request` reads back.

    Raises LookupError for an (api key, version) kio has no schema for.
    """
    spec = apis.request_spec(api_key, version)
    if spec is None:
        raise LookupError(f"no schema for api {api_key} v{version}")
    header_type = RequestHeaderV2 if spec.flexible else RequestHeaderV1
    header = header_type(request_api_key=i16(api_key), request_api_version=i16(version),
                         correlation_id=i32(correlation_id), client_id=client_id)
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    entity_writer(header_type)(out, header)
    entity_writer(type(body))(out, body)
    data = out.getbuffer()
    _SIZE.pack_into(data, 0, len(data) - 4)
    del data
    return out.getvalue()


def decode_response(frame: bytes, api_key: int, version: int) -> DecodedResponse:
    """Header and body of one response frame (without its size prefix), for the request
    sent as (api key, version): a response does not name its API, the caller knows it.

    The header is v1 (with tagged fields) when the response is flexible, else v0.
    """
    read_header = _read_response_header_v1 if apis.response_header_flexible(api_key, version) \
        else _read_response_header_v0
    header, offset = read_header(frame, 0)
    body, _ = _response_reader(api_key, version)(frame, offset)
    return DecodedResponse(int(header.correlation_id), body)


@functools.cache
def _response_reader(api_key: int, version: int) -> Callable[[bytes, int], tuple[Any, int]]:
    reader: Callable[[bytes, int], tuple[Any, int]] = entity_reader(apis.response_type(api_key, version))
    return reader

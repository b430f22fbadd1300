"""Golden exchanges: request frames real clients sent and the responses Strom gave, as
stored under tests/golden/ by tests/golden/record_golden.py, and the codec checks on them.

Layout: one directory per client and version (``confluent-kafka-2.16.1``), holding each
exchange of the client's session in the order it happened, as two files:
``NN-<api_name>-v<version>.request.bin`` (the frame as the client sent it, size prefix
included) and ``NN-<api_name>-v<version>.response.bin`` (Strom's answer, likewise).
``manifest.json`` names the client versions, the broker settings of the recording and
the topics to create before a replay (those the client used but did not create).

The checks are the ones a codec round trip can make:

* a request decodes with `strom.protocol.framing` and kio writes the same bytes back
  (`request_round_trip`); the one tolerated difference is the stray tail librdkafka
  leaves after an all-topics Metadata (3 bytes of a 4-byte placeholder), which Kafka
  and Strom ignore;
* a response decodes with kio and kio writes the same bytes back (`response_round_trip`):
  nothing Strom sends is dropped by the reader (no lossy field, no unread byte).

For comparing a live answer with the recorded one, `plain` turns a kio entity into
nested dicts and lists, and `substitute` maps values that differ from broker to broker
(member ids, topic ids, the cluster id) onto the recorded ones; node ports are masked.
"""

from __future__ import annotations

import datetime
import enum
import io
import json
import re
import struct
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer

from strom.protocol import apis, framing

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
_NAME = re.compile(r"^(\d+)-([a-z_]+)-v(\d+)\.request\.bin$")
_SIZE = struct.Struct(">i")
API_VERSIONS, UNSUPPORTED_VERSION = 18, 35
# values that differ between two brokers replaying the same session: learnt from the
# responses and mapped, so the rest of the answer must match exactly
VARYING = frozenset({"member_id", "leader", "topic_id", "cluster_id"})
MASKED = frozenset({"port"})  # where the broker listens: the recording went through a proxy
# answers a client retries until they pass: a coordinator or leader not there yet
RETRIABLE = frozenset({5, 14, 15, 16})  # LEADER_NOT_AVAILABLE, COORDINATOR_*, NOT_COORDINATOR
# librdkafka's all-topics Metadata (v9+) leaves 3 bytes of a 4-byte count placeholder
LIBRDKAFKA_METADATA_TAIL = 3


@dataclass(frozen=True)
class Exchange:
    """One request a client sent and the response Strom gave."""

    client: str  # the directory name: client and version
    index: int
    api_key: int
    api_version: int
    request: bytes  # size prefix included
    response: bytes  # size prefix included

    @property
    def name(self) -> str:
        return f"{self.index:02d}-{apis.api_name(self.api_key)}-v{self.api_version}"

    @property
    def id(self) -> str:
        return f"{self.client}/{self.name}"


def load_sessions(directory: Path = GOLDEN_DIR) -> dict[str, list[Exchange]]:
    """Every client's exchanges in recorded order, by client directory name."""
    sessions: dict[str, list[Exchange]] = {}
    for client_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        exchanges = []
        for path in sorted(client_dir.glob("*.request.bin")):
            match = _NAME.match(path.name)
            if match is None:
                continue
            request = path.read_bytes()
            key, version = struct.unpack_from(">hh", request, 4)
            response = path.with_name(path.name.replace(".request.", ".response.")).read_bytes()
            exchanges.append(Exchange(client_dir.name, int(match.group(1)), key, version,
                                      request, response))
        if exchanges:
            sessions[client_dir.name] = exchanges
    return sessions


def all_exchanges(directory: Path = GOLDEN_DIR) -> list[Exchange]:
    return [e for session in load_sessions(directory).values() for e in session]


def manifest(directory: Path = GOLDEN_DIR) -> dict[str, Any]:
    return dict(json.loads((directory / "manifest.json").read_text()))


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRoundTrip:
    original: bytes  # the frame without its size prefix
    written: bytes  # header and body as kio writes them
    body: Any

    @property
    def tail(self) -> bytes:
        """Bytes of the frame after what kio read (and so wrote back)."""
        return self.original[len(self.written):]


def request_round_trip(frame: bytes) -> RequestRoundTrip:
    """Decode one request frame with `strom.protocol.framing` and write it back with kio."""
    (size,) = _SIZE.unpack_from(frame, 0)
    assert size == len(frame) - 4, f"size prefix {size} for a frame of {len(frame) - 4} bytes"
    body = frame[4:]
    decoded = framing.decode_request(body)
    spec = apis.request_spec(decoded.api_key, decoded.api_version)
    # a version without a schema (a client newer than kio): only the v1 header is read,
    # which is all a broker reads of an ApiVersions it answers with UNSUPPORTED_VERSION
    header_type: type = RequestHeaderV2 if spec is not None and spec.flexible else RequestHeaderV1
    header, _ = entity_reader(header_type)(body, 0)
    out = io.BytesIO()
    entity_writer(header_type)(out, header)
    if decoded.body is not None:
        entity_writer(type(decoded.body))(out, decoded.body)
    return RequestRoundTrip(body, out.getvalue(), decoded.body)


# --- responses --------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedResponse:
    correlation_id: int
    body: Any
    header_size: int
    unread: int  # bytes of the frame kio's reader left


def response_version(frame: bytes, api_key: int, version: int) -> int:
    """The version a response is written in: the request's, except an ApiVersions the
    broker cannot serve, answered as v0 with UNSUPPORTED_VERSION (KIP-511)."""
    if api_key == API_VERSIONS and struct.unpack_from(">h", frame, 8)[0] == UNSUPPORTED_VERSION:
        return 0
    return version


def decode_response(frame: bytes, api_key: int, version: int) -> DecodedResponse:
    """A response frame (size prefix included) read with kio's reader for that version."""
    version = response_version(frame, api_key, version)
    payload = frame[4:]
    if apis.response_header_flexible(api_key, version):
        header, used = entity_reader(ResponseHeaderV1)(payload, 0)
        correlation_id = int(header.correlation_id)
    else:
        correlation_id, used = _SIZE.unpack_from(payload, 0)[0], 4
    body, size = entity_reader(apis.response_type(api_key, version))(payload, used)
    return DecodedResponse(correlation_id, body, used, len(payload) - used - size)


def encode_response(correlation_id: int, api_key: int, version: int, body: Any) -> bytes:
    """Size prefix, response header and body as kio writes them."""
    out = io.BytesIO()
    if apis.response_header_flexible(api_key, version):
        entity_writer(ResponseHeaderV1)(out, ResponseHeaderV1(correlation_id=correlation_id))
    else:
        out.write(_SIZE.pack(correlation_id))
    entity_writer(type(body))(out, body)
    data = out.getvalue()
    return _SIZE.pack(len(data)) + data


def response_round_trip(frame: bytes, api_key: int, version: int) -> tuple[DecodedResponse, bytes]:
    """Decode a response with kio and write it back: (decoded, rewritten frame)."""
    decoded = decode_response(frame, api_key, version)
    version = response_version(frame, api_key, version)
    return decoded, encode_response(decoded.correlation_id, api_key, version, decoded.body)


def correlation_id_of_request(frame: bytes) -> int:
    return int(struct.unpack_from(">i", frame, 8)[0])


def with_correlation_id(frame: bytes, correlation_id: int) -> bytes:
    return frame[:8] + _SIZE.pack(correlation_id) + frame[12:]


# --- structure --------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A kio entity as nested dicts, lists and primitives (times as milliseconds)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.timedelta):
        return int(value / datetime.timedelta(milliseconds=1))
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def varying_values(recorded: Any, live: Any, key: str = "") -> Iterator[tuple[Any, Any]]:
    """(recorded, live) pairs of the VARYING fields, walking two plain values in step."""
    if isinstance(recorded, dict) and isinstance(live, dict):
        for name in recorded.keys() & live.keys():
            yield from varying_values(recorded[name], live[name], name)
    elif isinstance(recorded, list) and isinstance(live, list):
        for r, v in zip(recorded, live, strict=False):
            yield from varying_values(r, v, key)
    elif key in VARYING and recorded != live and recorded is not None and live is not None:
        yield recorded, live


def substitute(value: Any, mapping: Mapping[Any, Any], key: str = "") -> Any:
    """A plain value with VARYING fields mapped and MASKED fields blanked."""
    if isinstance(value, dict):
        return {k: substitute(v, mapping, k) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, mapping, key) for v in value]
    if key in MASKED:
        return "<masked>"
    if key in VARYING:
        return mapping.get(value, value)
    return value


def wire_bytes(value: Any) -> bytes:
    """How a VARYING value appears inside a request frame (for substituting it there)."""
    try:
        return uuid.UUID(value).bytes
    except (ValueError, AttributeError, TypeError):
        return str(value).encode()


def error_codes(value: Any, key: str = "") -> set[int]:
    """Every error code in a plain value."""
    if isinstance(value, dict):
        return set().union(*(error_codes(v, k) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(error_codes(v, key) for v in value))
    return {int(value)} if key == "error_code" and value is not None else set()

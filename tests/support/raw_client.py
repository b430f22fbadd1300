"""A tiny raw-socket Kafka client for exact-protocol tests.

Real clients hide the wire: they pick versions, retry and never send a malformed frame.
This one sends exactly what a test asks for — a kio request entity at a chosen version,
or arbitrary bytes — and reads responses with kio's own readers, so a test can check the
response header, the correlation id and every field.

It also carries an independent RecordBatch v2 encoder (per-record timestamps, producer
fields, a deliberately broken CRC or a legacy magic-1 message set), written from the
protocol spec rather than borrowed from the broker, so produce tests do not check the
broker's codec against itself.
"""

from __future__ import annotations

import io
import socket
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import crc32c
from kio.index import load_payload_module
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build
from support.wire_spec import nullable, varint

API_VERSIONS = ApiKey.API_VERSIONS


def _payload_class(api_key: int, version: int, kind: EntityType) -> type:
    module = load_payload_module(api_key, version, kind)
    suffix = "Request" if kind == EntityType.request else "Response"
    for name in dir(module):
        obj = getattr(module, name)
        if isinstance(obj, type) and name.endswith(suffix) and getattr(obj, "__type__", None) == kind:
            return obj
    raise LookupError(f"no {suffix} class for api {api_key} v{version}")


def request_class(api_key: int, version: int) -> type:
    return _payload_class(api_key, version, EntityType.request)


def response_class(api_key: int, version: int) -> type:
    return _payload_class(api_key, version, EntityType.response)


def nested(api_key: int, version: int, name: str, *, response: bool = False) -> type:
    """A nested entity class of a request (or response) schema, e.g. 'TopicProduceData'."""
    kind = EntityType.response if response else EntityType.request
    return getattr(load_payload_module(api_key, version, kind), name)  # type: ignore[no-any-return]


def make_request(api_key: int, version: int, fields: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> Any:
    """A request entity of exactly this version from version-agnostic values."""
    return build(request_class(api_key, version), fields, **kwargs)


def encode_request(api_key: int, version: int, body: Any, correlation_id: int,
                   client_id: str | None = "strom-raw-test") -> bytes:
    """Header (v2 for flexible requests, else v1) and body, with the size prefix."""
    out = io.BytesIO()
    header: Any
    if body.__flexible__:
        header = RequestHeaderV2(request_api_key=api_key, request_api_version=version,
                                 correlation_id=correlation_id, client_id=client_id)
    else:
        header = RequestHeaderV1(request_api_key=api_key, request_api_version=version,
                                 correlation_id=correlation_id, client_id=client_id)
    entity_writer(type(header))(out, header)
    entity_writer(type(body))(out, body)
    data = out.getvalue()
    return struct.pack(">i", len(data)) + data


def encode_header_only(api_key: int, version: int, correlation_id: int,
                       client_id: str | None = "strom-raw-test") -> bytes:
    """A request header v1 without a body and without a size prefix."""
    out = io.BytesIO()
    header = RequestHeaderV1(request_api_key=api_key, request_api_version=version,
                             correlation_id=correlation_id, client_id=client_id)
    entity_writer(RequestHeaderV1)(out, header)
    return out.getvalue()


@dataclass
class Response:
    correlation_id: int
    body: Any
    raw: bytes  # the frame without its size prefix


class ConnectionClosed(Exception):
    pass


class RawClient:
    """One TCP connection to a broker; requests are answered in order."""

    def __init__(self, bootstrap: str, timeout: float = 15.0) -> None:
        host, _, port = bootstrap.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._next_correlation = 1000

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # --- sending ------------------------------------------------------------------------

    def next_correlation_id(self) -> int:
        self._next_correlation += 7
        return self._next_correlation

    def send(self, api_key: int, version: int, body: Any, correlation_id: int | None = None,
             client_id: str | None = "strom-raw-test") -> int:
        cid = self.next_correlation_id() if correlation_id is None else correlation_id
        self.sock.sendall(encode_request(api_key, version, body, cid, client_id))
        return cid

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # --- receiving ----------------------------------------------------------------------

    def _recv_exact(self, n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self.sock.recv(n - len(chunks))
            except ConnectionResetError as exc:
                raise ConnectionClosed("connection reset") from exc
            if not chunk:
                raise ConnectionClosed(f"closed after {len(chunks)} of {n} bytes")
            chunks += chunk
        return bytes(chunks)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(size)

    def read_response(self, api_key: int, version: int) -> Response:
        """Read one response and decode it as (api_key, version); checks it is consumed."""
        frame = self.recv_frame()
        return decode_response(frame, api_key, version)

    def request(self, api_key: int, version: int, body: Any | None = None,
                **fields: Any) -> Response:
        """Send one request and return its response, checking the correlation id."""
        if body is None:
            body = make_request(api_key, version, fields)
        cid = self.send(api_key, version, body)
        response = self.read_response(api_key, version)
        assert response.correlation_id == cid, (response.correlation_id, cid)
        return response

    def is_closed_by_peer(self, timeout: float = 10.0) -> bool:
        """True when the broker closes the connection (EOF or reset) within `timeout`.

        Anything received before the close is drained and ignored; False if the
        connection is still open when the timeout expires.
        """
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def decode_response(frame: bytes, api_key: int, version: int) -> Response:
    rtype = response_class(api_key, version)
    if rtype.__flexible__ and api_key != API_VERSIONS:
        header, used = entity_reader(ResponseHeaderV1)(frame, 0)
        correlation_id = int(header.correlation_id)
    else:
        correlation_id = struct.unpack_from(">i", frame, 0)[0]
        used = 4
    body, body_size = entity_reader(rtype)(frame, used)
    assert used + body_size == len(frame), (
        f"{rtype.__name__}: {len(frame) - used - body_size} unread bytes in the response"
    )
    return Response(correlation_id, body, frame)


# --- RecordBatch v2, written from the spec ----------------------------------------------


def record_batch(
    values: Sequence[bytes | None],
    *,
    timestamps: Sequence[int] | None = None,
    keys: Sequence[bytes | None] | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
    corrupt_crc: bool = False,
) -> bytes:
    """An uncompressed RecordBatch v2 holding `values` (base offset 0)."""
    if timestamps is None:
        timestamps = [1_700_000_000_000] * len(values)
    keys = keys if keys is not None else [None] * len(values)
    base_ts = timestamps[0]
    body = bytearray()
    for delta, (key, value, ts) in enumerate(zip(keys, values, timestamps, strict=True)):
        rec = (b"\x00" + varint(ts - base_ts) + varint(delta) + nullable(key)
               + nullable(value) + varint(0))
        body += varint(len(rec)) + rec
    tail = struct.pack(
        ">hiqqqhii", attributes, len(values) - 1, base_ts, max(timestamps),
        producer_id, producer_epoch, base_sequence, len(values),
    ) + bytes(body)
    crc = crc32c.crc32c(tail)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    batch_length = 4 + 1 + 4 + len(tail)  # leader epoch, magic, crc, rest
    return struct.pack(">qiibI", 0, batch_length, -1, 2, crc) + tail


def legacy_message_set_v1(value: bytes, timestamp: int = 1_700_000_000_000) -> bytes:
    """A magic-1 message set with one message (offset, size, crc32, magic, attrs, ts, k, v)."""
    body = struct.pack(">bbq", 1, 0, timestamp) + struct.pack(">i", -1)
    body += struct.pack(">i", len(value)) + value
    message = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + body
    return struct.pack(">qi", 0, len(message)) + message


def batch_base_offsets(records: bytes) -> list[tuple[int, int]]:
    """(base_offset, last_offset) of each whole v2 batch in a fetched record set."""
    out = []
    pos = 0
    while len(records) - pos >= 61:
        base, length = struct.unpack_from(">qi", records, pos)
        if pos + 12 + length > len(records):
            break
        last_delta = struct.unpack_from(">i", records, pos + 23)[0]
        out.append((base, base + last_delta))
        pos += 12 + length
    return out


# --- conveniences for the common requests ------------------------------------------------


def create_topic(client: RawClient, name: str, partitions: int = 1,
                 configs: Mapping[str, str] | None = None, version: int = 5) -> Any:
    """CreateTopics for one topic; returns its result entry (asserts nothing).

    CreateTopics answers once the metadata is written and the logs follow, as on Kafka;
    a created topic is returned once every partition's log serves (raw requests do not
    retry UNKNOWN_TOPIC_OR_PARTITION the way clients do)."""
    response = client.request(
        ApiKey.CREATE_TOPICS, version,
        topics=[{"name": name, "num_partitions": partitions, "replication_factor": 1,
                 "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
        timeout=30_000,
    )
    result = response.body.topics[0]
    if int(result.error_code) == 0:
        for partition in range(partitions):
            _wait_for_log(client, name, partition)
    return result


def _wait_for_log(client: RawClient, topic: str, partition: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while int(fetch(client, topic, 0, partition=partition).error_code) == UNKNOWN_TOPIC:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}-{partition} has no log {timeout}s after its creation")
        time.sleep(0.01)


UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION


def topic_id(client: RawClient, name: str) -> Any:
    response = client.request(ApiKey.METADATA, 12, topics=[{"name": name}],
                              allow_auto_topic_creation=False)
    return response.body.topics[0].topic_id


def produce(client: RawClient, topic: str, records: bytes | None, *, partition: int = 0,
            acks: int = 1, version: int = 9, topic_uuid: Any = None) -> Any:
    """Produce one record set to one partition; returns the partition's response entry."""
    response = client.request(
        ApiKey.PRODUCE, version,
        acks=acks, timeout=10_000, transactional_id=None,
        topic_data=[{"name": topic, "topic_id": topic_uuid,
                     "partition_data": [{"index": partition, "records": records}]}],
    )
    return response.body.responses[0].partition_responses[0]


def list_offset(client: RawClient, topic: str, timestamp: int, *, partition: int = 0,
                version: int = 7) -> Any:
    """ListOffsets for one partition; returns its entry (timestamp, offset, error_code)."""
    response = client.request(
        ApiKey.LIST_OFFSETS, version, replica_id=-1, isolation_level=0, timeout=10_000,
        topics=[{"name": topic, "partitions": [
            {"partition_index": partition, "timestamp": timestamp, "current_leader_epoch": -1,
             "max_num_offsets": 1}]}],
    )
    return response.body.topics[0].partitions[0]


def high_watermark(client: RawClient, topic: str, partition: int = 0) -> int:
    entry = list_offset(client, topic, -1, partition=partition)
    assert entry.error_code == 0, entry
    return int(entry.offset)


def fetch(client: RawClient, topic: str, offset: int, *, partition: int = 0, version: int = 12,
          max_bytes: int = 1 << 20, topic_uuid: Any = None) -> Any:
    """A one-partition Fetch that does not wait; returns the partition's response entry."""
    response = client.request(
        ApiKey.FETCH, version, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=max_bytes,
        isolation_level=0, session_id=0, session_epoch=-1, rack_id="",
        topics=[{"topic": topic, "topic_id": topic_uuid, "partitions": [
            {"partition": partition, "current_leader_epoch": -1, "fetch_offset": offset,
             "last_fetched_epoch": -1, "log_start_offset": -1,
             "partition_max_bytes": max_bytes}]}],
        forgotten_topics_data=[],
    )
    return response.body.responses[0].partitions[0]

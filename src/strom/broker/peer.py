"""`PeerChannel`: send a Kafka request to another broker and await its response.

Brokers talk to each other with the Kafka protocol itself (replica fetches,
OffsetForLeaderEpoch), encoded and decoded by kio like any client's. One connection per
peer, one request at a time on it: the replica fetcher is sequential per leader anyway,
and it keeps the channel trivially correct. A broken connection is dropped and reopened
on the next request.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import struct
from typing import Any

from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32

from strom.protocol import apis

log = logging.getLogger(__name__)
_SIZE = struct.Struct(">i")


class PeerError(Exception):
    pass


class PeerConnection:
    def __init__(self, host: str, port: int, client_id: str, timeout_s: float = 30.0) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._correlation = itertools.count(1)

    async def request(self, api_key: int, version: int, body: Any) -> Any:
        async with self._lock:
            try:
                return await asyncio.wait_for(self._round_trip(api_key, version, body),
                                              self.timeout_s)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, PeerError) as exc:
                self.close()
                raise PeerError(f"{self.host}:{self.port}: {exc!r}") from exc

    async def _round_trip(self, api_key: int, version: int, body: Any) -> Any:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        correlation = next(self._correlation)
        spec = apis.request_spec(api_key, version)
        if spec is None:
            raise PeerError(f"no schema for api {api_key} v{version}")
        header_type = RequestHeaderV2 if spec.flexible else RequestHeaderV1
        header = header_type(request_api_key=i16(api_key), request_api_version=i16(version),
                             correlation_id=i32(correlation), client_id=self.client_id)
        out = io.BytesIO()
        out.write(b"\0\0\0\0")
        entity_writer(header_type)(out, header)
        entity_writer(type(body))(out, body)
        frame = out.getbuffer()
        _SIZE.pack_into(frame, 0, len(frame) - 4)
        self._writer.write(bytes(frame))
        del frame
        await self._writer.drain()
        (size,) = _SIZE.unpack(await self._reader.readexactly(4))
        payload = await self._reader.readexactly(size)
        (got,) = _SIZE.unpack_from(payload, 0)
        if got != correlation:
            raise PeerError(f"correlation id {got} != {correlation}")
        offset = 4
        if apis.response_header_flexible(api_key, version):
            offset += 1  # empty tagged fields in the response header
        response: Any
        response, _ = entity_reader(apis.response_type(api_key, version))(payload, offset)
        return response

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class PeerChannel:
    """Connections to the other brokers, looked up in the current metadata image."""

    def __init__(self, my_id: int) -> None:
        self.my_id = my_id
        self._connections: dict[int, PeerConnection] = {}

    def connection(self, broker_id: int, host: str, port: int) -> PeerConnection:
        conn = self._connections.get(broker_id)
        if conn is None or (conn.host, conn.port) != (host, port):
            if conn is not None:
                conn.close()
            conn = PeerConnection(host, port, f"strom-broker-{self.my_id}")
            self._connections[broker_id] = conn
        return conn

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

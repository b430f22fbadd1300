"""`PeerChannel`: send a Kafka request to another broker and await its response.

Brokers talk to each other with the Kafka protocol itself (replica fetches,
OffsetForLeaderEpoch), encoded and decoded by `strom.protocol.framing` (`encode_request`,
`decode_response`), the module that serves clients. One connection per
peer, one request at a time on it: the replica fetcher is sequential per leader anyway,
and it keeps the channel trivially correct. A broken connection is dropped and reopened
on the next request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from strom.protocol import framing
from strom.protocol.api_keys import ApiKey

log = logging.getLogger(__name__)
_SIZE = struct.Struct(">i")


class PeerError(Exception):
    pass


Connector = Callable[[str, int, str], Awaitable[tuple[asyncio.StreamReader,
                                                     asyncio.StreamWriter]]]
"""Opens a connection to (host, port) as client id: TLS and SASL done when the
inter-broker listener asks for them (`strom.broker.security.peer_client`)."""


async def _plain_connect(host: str, port: int, client_id: str
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


class PeerConnection:
    def __init__(self, host: str, port: int, client_id: str, timeout_s: float = 30.0,
                 connect: Connector = _plain_connect) -> None:
        self.host, self.port = host, port
        self.connect = connect
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._correlation = itertools.count(1)

    async def request(self, api_key: ApiKey, version: int, body: Any) -> Any:
        """Send one request and return its decoded response; any failure is a PeerError
        and drops the connection (the next request reopens it)."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self._round_trip(api_key, version, body),
                                              self.timeout_s)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, PeerError) as exc:
                self.close()
                raise PeerError(f"{self.host}:{self.port}: {exc!r}") from exc

    async def _round_trip(self, api_key: ApiKey, version: int, body: Any) -> Any:
        if self._writer is None:
            self._reader, self._writer = await self.connect(self.host, self.port,
                                                            self.client_id)
        assert self._reader is not None
        correlation = next(self._correlation)
        try:
            frame = framing.encode_request(correlation, api_key, version, body, self.client_id)
        except LookupError as exc:
            raise PeerError(str(exc)) from exc
        self._writer.write(frame)
        await self._writer.drain()
        (size,) = _SIZE.unpack(await self._reader.readexactly(4))
        response = framing.decode_response(await self._reader.readexactly(size), api_key, version)
        if response.correlation_id != correlation:
            raise PeerError(f"correlation id {response.correlation_id} != {correlation}")
        return response.body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class PeerChannel:
    """Connections to the other brokers, looked up in the current metadata image."""

    def __init__(self, my_id: int) -> None:
        self.my_id = my_id
        self._connections: dict[int, PeerConnection] = {}
        self._connect: Connector = _plain_connect
        self._endpoint: Callable[[int], tuple[str, int] | None] = lambda broker_id: None

    def use(self, connect: Connector,
            endpoint: Callable[[int], tuple[str, int] | None]) -> None:
        """Reach brokers on the inter-broker listener: `endpoint(id)` is its address
        (None: the address the caller passes), `connect` opens TLS/SASL connections."""
        self._connect, self._endpoint = connect, endpoint
        self.close()

    def connection(self, broker_id: int, host: str, port: int) -> PeerConnection:
        host, port = self._endpoint(broker_id) or (host, port)
        conn = self._connections.get(broker_id)
        if conn is None or (conn.host, conn.port) != (host, port):
            if conn is not None:
                conn.close()
            conn = PeerConnection(host, port, f"strom-broker-{self.my_id}",
                                  connect=self._connect)
            self._connections[broker_id] = conn
        return conn

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

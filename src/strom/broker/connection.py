"""One client connection: frames in, requests dispatched in order, responses out.

Kafka answers the requests of one connection in the order they arrived, even when a
later one could finish first (clients match responses by order as well as by
correlation id). So each connection has a single worker that takes frames from a queue.
Reading pauses while too many requests are queued or the socket cannot drain, which
bounds the memory one client can make us hold.

Protocol violations (bad framing, an unparsable request, an API or version we do not
serve) close the connection, as Kafka does; the rest of the broker is unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from strom.broker import dispatch
from strom.broker.context import RequestContext
from strom.protocol import apis, framing
from strom.protocol.framing import FrameDecoder, FrameError, RequestDecodeError

if TYPE_CHECKING:
    from strom.broker.server import Broker

log = logging.getLogger(__name__)
MAX_QUEUED = 64


class KafkaConnection(asyncio.Protocol):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.decoder = FrameDecoder(broker.config.get_int("socket.request.max.bytes"))
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._queue: deque[bytes] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reading_paused = False
        self._closed = False

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.broker.connections.add(self)
        self.broker.metrics.connection_opened()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            log.warning("closing %s: %s", self.peer, exc)
            self.close()
            return
        if not frames:
            return
        self._queue.extend(frames)
        if len(self._queue) >= MAX_QUEUED and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed and self.decoder.buffered:
            log.info("%s went away with %d bytes of an incomplete request",
                     self.peer, self.decoder.buffered)
        self._closed = True
        self.broker.connections.discard(self)
        self._can_write.set()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # --- request processing -----------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    async def _work(self) -> None:
        while self._queue and not self._closed:
            frame = self._queue.popleft()
            if self._reading_paused and len(self._queue) < MAX_QUEUED // 2 and self.transport:
                self.transport.resume_reading()
                self._reading_paused = False
            try:
                response = await self._handle(frame)
            except _CloseConnection as exc:
                log.warning("closing %s: %s", self.peer, exc)
                self.close()
                return
            except Exception:
                log.exception("handler failed for a request from %s; closing it", self.peer)
                self.close()
                return
            if response is not None and not self._closed and self.transport is not None:
                self.transport.write(response)
                if not self._can_write.is_set():
                    await self._can_write.wait()

    async def _handle(self, frame: bytes) -> bytes | None:
        try:
            request = framing.decode_request(frame)
        except RequestDecodeError as exc:
            raise _CloseConnection(str(exc)) from exc
        registration = dispatch.lookup(request.api_key, request.api_version)
        if registration is None or request.body is None:
            if request.api_key == apis.API_VERSIONS:
                from strom.broker.handlers.api_versions import unsupported_version_response

                return unsupported_version_response(request.correlation_id)
            raise _CloseConnection(
                f"unsupported API {apis.api_name(request.api_key)} (key {request.api_key}) "
                f"version {request.api_version}"
            )
        ctx = RequestContext(
            broker=self.broker,
            api_key=request.api_key,
            api_version=request.api_version,
            correlation_id=request.correlation_id,
            client_id=request.client_id,
            peer=self.peer,
        )
        started = time.perf_counter()
        try:
            body = await registration.handler(ctx, request.body)
        except Exception:
            self.broker.metrics.request_failed(request.api_key, time.perf_counter() - started)
            raise
        self.broker.metrics.request_done(request.api_key, time.perf_counter() - started, body)
        if body is None:
            return None
        return framing.encode_response(
            request.correlation_id, request.api_key, request.api_version, body
        )


class _CloseConnection(Exception):
    pass

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

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.broker.network.connection_limits import (
    IDLE,
    PARTIAL_BYTES,
    ConnectionLimits,
    normalise_ip,
)
from strom.broker.security import api_authorization
from strom.broker.security.authenticator import Answer, Authenticator, SaslRefused
from strom.broker.security.principal import ANONYMOUS, NoMatchingRule, certificate_principal
from strom.protocol import apis, framing
from strom.protocol.api_keys import ApiKey
from strom.protocol.framing import FrameDecoder, FrameError, RequestDecodeError

if TYPE_CHECKING:
    from strom.broker.observability.metrics import BrokerMetrics
    from strom.broker.security.listener import ListenerSecurity
    from strom.broker.services import Services

log = logging.getLogger(__name__)
Buffer = bytes | bytearray | memoryview
MAX_QUEUED = 64
_monotonic = time.monotonic


class KafkaConnection(asyncio.Protocol):
    def __init__(self, services: Services, limits: ConnectionLimits,
                 connections: set[KafkaConnection], metrics: BrokerMetrics,
                 security: ListenerSecurity | None = None) -> None:
        self.services = services  # what the handlers of its requests see
        self.limits = limits
        self.connections = connections  # the broker's open connections, this one included
        self.metrics = metrics
        self.decoder = FrameDecoder(services.config.get_int("socket.request.max.bytes"))
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.ip = "?"
        self._queue: deque[memoryview] = deque()  # frames (see FrameDecoder)
        self._worker: asyncio.Task[None] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._backlogged = False  # MAX_QUEUED frames wait: this connection stops reading
        self._reading_paused = False  # the transport's state: backlog or the memory pause
        self._closed = False
        self._admitted = False
        self._partial = 0  # bytes of an incomplete frame counted in limits.partial_bytes
        self._queued = 0  # bytes of queued frames counted in limits.queued_bytes
        self._pool = self.limits.queued_max > 0  # queued.max.request.bytes in force
        self.security = security if security is not None and security.protocol != "PLAINTEXT" \
            else None  # None: PLAINTEXT, nothing to authenticate
        self.advertised = security.advertised if security is not None else None
        self.listener = security.name.upper() if security is not None else None
        self.principal = ANONYMOUS  # TLS: the certificate's; SASL: once authenticated
        self.auth: Authenticator | None = None  # SASL listeners: the state machine
        self._close_after_write = False
        self._muted: asyncio.TimerHandle | None = None  # a client quota's throttle
        self._unmuted = asyncio.Event()
        self._unmuted.set()
        now = _monotonic()
        self.last_received = now  # read by the limits' sweep
        self.last_done = now

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.ip = normalise_ip(str(peer[0])) if peer else "?"
        refusal = self.limits.admit(self.ip)
        if refusal is not None:
            log.info("Rejected connection from %s, %s (%s).", self.peer, refusal.message,
                     refusal.reason)
            self.metrics.connection_refused(refusal.reason)
            self._closed = True
            transport.close()
            return
        if self.security is not None and not self._authenticate_tls(transport):
            return
        self._admitted = True
        self.connections.add(self)
        self.metrics.connection_opened()
        if self.limits.memory_paused:
            self.sync_reading()

    def _authenticate_tls(self, transport: asyncio.BaseTransport) -> bool:
        """The TLS principal (asyncio calls connection_made once the handshake is done)
        and, on SASL listeners, the authenticator; False when the connection went."""
        security = self.security
        assert security is not None
        ssl_object = transport.get_extra_info("ssl_object")
        failed = getattr(ssl_object, "handshake_error", None)
        if failed is not None:  # see tls.AlertingSSLObject: close, sending its alert
            log.info("Failed authentication with %s (SSL handshake failed: %s)", self.peer,
                     getattr(failed, "reason", None) or failed)
            self.limits.release(self.ip)
            self._closed = True
            transport.close()
            return False
        if ssl_object is not None:
            try:
                self.principal = certificate_principal(
                    ssl_object.getpeercert(binary_form=True), security.principal_rules)
            except (NoMatchingRule, ValueError) as exc:
                log.info("Failed authentication with %s (SSL handshake: %s)", self.peer, exc)
                self.limits.release(self.ip)
                self._closed = True
                transport.close()
                return False
        if security.sasl:
            self.auth = Authenticator(security, self.peer)
        return True

    def data_received(self, data: bytes) -> None:
        self.last_received = _monotonic()
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            log.warning("closing %s: %s", self.peer, exc)
            self.close()
            return
        held = self.decoder.buffered
        if held != self._partial:  # a frame started or ended: the broker-wide total moves
            limits = self.limits
            limits.partial_bytes += held - self._partial
            self._partial = held
            if held and limits.partial_bytes > limits.partial_max:
                self._over_partial_cap()
                return
        if not frames:
            return
        self._enqueue(frames)

    def _enqueue(self, frames: list[memoryview]) -> None:
        if self._pool:
            self._count_queued(frames)
        self._queue.extend(frames)
        if len(self._queue) >= MAX_QUEUED and not self._backlogged:
            self._backlogged = True
            self.sync_reading()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return  # refused at accept: never counted
        self._admitted = False
        self.limits.release(self.ip)
        if not self._closed and self.decoder.buffered:
            log.info("%s went away with %d bytes of an incomplete request",
                     self.peer, self.decoder.buffered)
        self._closed = True
        self._release_bytes()
        self.connections.discard(self)
        dispatch.disconnected(self.services, self.peer)
        self._can_write.set()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # --- limits (see connection_limits) -----------------------------------------------

    @property
    def holds_partial_frame(self) -> bool:
        return self.decoder.buffered > 0

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    @property
    def busy(self) -> bool:
        """A request is queued or being answered: not idle, whatever the clock says."""
        return bool(self._queue) or (self._worker is not None and not self._worker.done())

    def _over_partial_cap(self) -> None:
        """This connection's half-received bytes took the broker-wide total over the
        cap: it goes (and its bytes leave the total), the others keep theirs."""
        limits = self.limits
        self.expire(PARTIAL_BYTES, f"{limits.partial_bytes} bytes of half-received "
                    "requests across all connections would exceed "
                    f"strom.socket.partial.request.max.bytes ({limits.partial_max})")

    def _count_queued(self, frames: list[memoryview]) -> None:
        size = sum(map(len, frames))
        self._queued += size
        self.limits.add_queued(size)

    def _release_bytes(self) -> None:
        """Give back what this connection counted in the broker-wide byte totals."""
        self.limits.partial_bytes -= self._partial
        self._partial = 0
        self.decoder.clear()
        self._queue.clear()
        if self._queued:
            queued, self._queued = self._queued, 0
            self.limits.release_queued(queued)

    def sync_reading(self) -> None:
        """Pause or resume reading: paused while this connection is backlogged or the
        broker's queued requests are over queued.max.request.bytes."""
        paused = self._backlogged or self.limits.memory_paused or self._muted is not None
        if paused == self._reading_paused or self._closed or self.transport is None:
            return
        self._reading_paused = paused
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
            self.last_received = _monotonic()  # time spent waiting on us is not theirs

    def expire(self, reason: str, detail: str) -> None:
        """Close because a limit says so; counted per reason."""
        if self._closed:
            return
        (log.debug if reason == IDLE else log.info)("closing %s: %s", self.peer, detail)
        self.metrics.connection_closed(reason)
        self.close()

    # --- request processing -----------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self._release_bytes()
        if self.transport is not None:
            self.transport.close()

    async def _work(self) -> None:
        queue = self._queue
        while queue and not self._closed:
            if self._muted is not None:
                await self._unmuted.wait()  # throttled: the next request waits its turn
                continue
            frame = queue.popleft()
            if self._queued:
                self._queued -= len(frame)
                self.limits.release_queued(len(frame))
            if self._backlogged and len(queue) < MAX_QUEUED // 2:
                self._backlogged = False
                self.sync_reading()
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
                self.transport.writelines(response)  # one writev: record data never joined
                if self._close_after_write:  # a refused SASL exchange: answer, then go
                    self._close_after_failed_authentication()
                    return
                if not self._can_write.is_set():
                    await self._can_write.wait()
        self.last_done = _monotonic()

    async def _handle(self, frame: memoryview) -> list[Buffer] | None:
        auth = self.auth
        if auth is not None and auth.wants_raw_token:
            return self._raw_token(auth, frame)
        try:
            request = framing.decode_request(frame)
        except RequestDecodeError as exc:
            raise _CloseConnection(str(exc)) from exc
        registration = dispatch.lookup(request.api_key, request.api_version)
        if registration is None or request.body is None:
            if request.api_key == ApiKey.API_VERSIONS:
                from strom.broker.handlers.api_versions import unsupported_version_response

                return [unsupported_version_response(request.correlation_id, self.services)]
            raise _CloseConnection(
                f"unsupported API {apis.api_name(request.api_key)} (key {request.api_key}) "
                f"version {request.api_version}"
            )
        if auth is not None and self._sasl_takes(auth, request.api_key):
            return self._sasl_answer(auth, request)
        ctx = RequestContext(
            services=self.services,
            api_key=request.api_key,
            api_version=request.api_version,
            correlation_id=request.correlation_id,
            client_id=request.client_id,
            peer=self.peer,
            principal=self.principal,
            advertised=self.advertised,
            listener=self.listener,
            size=len(frame),
            mute=self.mute,
        )
        started = time.perf_counter()
        try:
            body = await api_authorization.handle(ctx, registration.handler, request.body)
        except Exception:
            self.metrics.request_failed(request.api_key, time.perf_counter() - started)
            raise
        self.metrics.request_done(request.api_key, time.perf_counter() - started, body)
        if body is None:
            return None
        return framing.response_buffers(
            request.correlation_id, request.api_key, request.api_version, body
        )

    def mute(self, throttle_ms: int) -> None:
        """A client quota's throttle (KIP-219): the answer goes out now, then nothing is
        read or handled from this connection for `throttle_ms`."""
        if throttle_ms <= 0 or self._closed:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + throttle_ms / 1000
        if self._muted is not None:
            if self._muted.when() >= until:
                return
            self._muted.cancel()
        self._muted = loop.call_at(until, self._unmute)
        self._unmuted.clear()
        self.sync_reading()

    def _unmute(self) -> None:
        self._muted = None
        self._unmuted.set()
        self.sync_reading()

    # --- SASL (strom.broker.security.authenticator) ------------------------------------

    def _close_after_failed_authentication(self) -> None:
        """Kafka's connection.failed.authentication.delay.ms: the answer goes out now and
        the close follows after the delay, so that each guess of a password costs the
        guesser that long; nothing more is read meanwhile."""
        delay_ms = self.services.config.get_int("connection.failed.authentication.delay.ms")
        self._release_bytes()
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        if delay_ms <= 0:
            self.close()  # the transport sends what it holds before closing
        else:
            asyncio.get_running_loop().call_later(delay_ms / 1000, self.close)

    def _sasl_takes(self, auth: Authenticator, api_key: int) -> bool:
        try:
            return auth.takes(api_key)
        except SaslRefused as exc:
            raise _CloseConnection(str(exc)) from None

    def _sasl_answer(self, auth: Authenticator, request: framing.DecodedRequest
                     ) -> list[Buffer]:
        answer: Answer = auth.answer(request.api_key, request.api_version, request.body)
        if auth.principal is not None:
            self.principal = auth.principal
        self._close_after_write = answer.close
        return framing.response_buffers(request.correlation_id, request.api_key,
                                        request.api_version, answer.body)

    def _raw_token(self, auth: Authenticator, frame: memoryview) -> list[Buffer]:
        """SaslHandshake v0: the exchange goes on in raw size-prefixed tokens."""
        try:
            reply = auth.raw_token(bytes(frame))
        except SaslRefused as exc:
            raise _CloseConnection(f"SASL authentication failed: {exc}") from None
        if auth.principal is not None:
            self.principal = auth.principal
        return [len(reply).to_bytes(4, "big") + reply]


class _CloseConnection(Exception):
    pass

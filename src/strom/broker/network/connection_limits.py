"""Broker-wide connection limits, under Kafka's names.

- `max.connections`, `max.connections.per.ip` and `max.connections.per.ip.overrides`:
  a connection over a limit is closed as soon as it is accepted (Kafka's
  ConnectionQuotas; Kafka logs it at INFO) while the existing ones keep working.
- `connections.max.idle.ms`: a connection with no request in flight and nothing received
  for that long is closed (Kafka's Selector idle expiry; -1 disables).
- `strom.request.receive.timeout.ms`: a connection that started a request frame and then
  sent nothing more for that long is closed, so a slow sender cannot hold a half-received
  frame (and its memory) forever.
- `strom.socket.partial.request.max.bytes`: the bytes of half-received frames held across
  all connections; the connection whose bytes would take the total over it is closed.
  `socket.request.max.bytes` bounds one frame; this bounds many connections each sending
  part of a large one.
- `queued.max.request.bytes` (Kafka's request memory pool): while the bytes of received
  requests waiting for their connection's worker exceed it, reading pauses on every
  connection. A frame stops counting when its worker takes it up, so a request that waits
  for others (acks=all waiting for follower fetches) never holds the pause.

Time is checked by one periodic sweep over all connections, not by a timer per
connection; the receive path only stores one monotonic time per read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from strom.config.broker import BrokerConfig
from strom.config.defs import InvalidConfig

log = logging.getLogger(__name__)

IDLE = "idle"
RECEIVE_TIMEOUT = "receive_timeout"
PARTIAL_BYTES = "partial_request_bytes"


class Limited(Protocol):
    """What the sweep and the memory pause need from a connection."""

    last_received: float
    last_done: float

    @property
    def holds_partial_frame(self) -> bool: ...

    @property
    def reading_paused(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    def sync_reading(self) -> None: ...

    def expire(self, reason: str, detail: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # the config name that refused, also the metric label
    message: str


def normalise_ip(address: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 as IPv4, no scope, compressed IPv6."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def resolve_overrides(raw: str) -> dict[str, int]:
    """`host:count,...` → {ip: count}; a host name counts for every address it resolves
    to (Kafka resolves the names once at start as well)."""
    overrides: dict[str, int] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        host, colon, count_raw = item.rpartition(":")
        host = host.strip().strip("[]")
        try:
            count = int(count_raw)
        except ValueError:
            count = -1
        if not colon or not host or count < 0:
            raise InvalidConfig(
                f"max.connections.per.ip.overrides entry {item!r} is not host:count")
        for address in _addresses(host):
            overrides[address] = count
    return overrides


def _addresses(host: str) -> set[str]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return {normalise_ip(host)}
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise InvalidConfig(
            f"max.connections.per.ip.overrides: cannot resolve {host!r} ({exc})") from None
    return {normalise_ip(str(info[4][0])) for info in infos}


class ConnectionLimits:
    """Counts and caps shared by every connection of one broker (all on its event loop)."""

    def __init__(self, config: BrokerConfig, connections: Iterable[Limited] = ()) -> None:
        self.max_connections = config.get_int("max.connections")
        self.max_per_ip = config.get_int("max.connections.per.ip")
        self.per_ip_overrides = resolve_overrides(
            config.get_str("max.connections.per.ip.overrides") or "")
        if self.max_per_ip == 0 and not self.per_ip_overrides:
            raise InvalidConfig("max.connections.per.ip can be set to zero only if "
                                "max.connections.per.ip.overrides is set")
        self.partial_max = config.get_int("strom.socket.partial.request.max.bytes")
        self.queued_max = config.get_int("queued.max.request.bytes")  # <= 0: no limit
        if 0 < self.queued_max < config.get_int("socket.request.max.bytes"):
            raise InvalidConfig("queued.max.request.bytes must be larger or equal to "
                                "socket.request.max.bytes")
        idle_ms = config.get_int("connections.max.idle.ms")
        self.idle_s = idle_ms / 1000 if idle_ms >= 0 else None
        self.receive_timeout_s = config.get_int("strom.request.receive.timeout.ms") / 1000
        self.count = 0
        self.per_ip: dict[str, int] = {}
        self.partial_bytes = 0
        self.queued_bytes = 0
        self.memory_paused = False
        self.connections = connections  # the broker's set, for pause and resume

    def reconfigure(self, config: BrokerConfig) -> None:
        """Dynamic max.connections(.per.ip(.overrides)): new connections are counted
        against the new limits; connections already open stay, as in Kafka."""
        self.max_connections = config.get_int("max.connections")
        self.max_per_ip = config.get_int("max.connections.per.ip")
        self.per_ip_overrides = resolve_overrides(
            config.get_str("max.connections.per.ip.overrides") or "")

    # --- counts ----------------------------------------------------------------------

    def admit(self, ip: str) -> Refusal | None:
        """Count a new connection from `ip`, or say which limit refuses it."""
        if self.count >= self.max_connections:
            return Refusal("max.connections", "the broker already has the configured maximum "
                           f"of {self.max_connections} connections")
        limit = self.per_ip_overrides.get(ip, self.max_per_ip)
        have = self.per_ip.get(ip, 0)
        if have >= limit:
            return Refusal("max.connections.per.ip", "address already has the configured "
                           f"maximum of {limit} connections")
        self.count += 1
        self.per_ip[ip] = have + 1
        return None

    def release(self, ip: str) -> None:
        self.count -= 1
        left = self.per_ip.get(ip, 0) - 1
        if left > 0:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)

    # --- queued request bytes (queued.max.request.bytes) ------------------------------

    def add_queued(self, size: int) -> None:
        self.queued_bytes += size
        if self.queued_bytes > self.queued_max and not self.memory_paused:
            self.memory_paused = True
            log.info("queued requests hold %d bytes, over queued.max.request.bytes (%d): "
                     "reading paused on all connections", self.queued_bytes, self.queued_max)
            self._sync_all()

    def release_queued(self, size: int) -> None:
        self.queued_bytes -= size
        if self.memory_paused and self.queued_bytes <= self.queued_max:
            self.memory_paused = False
            self._sync_all()

    def _sync_all(self) -> None:
        for conn in list(self.connections):
            conn.sync_reading()

    # --- time ------------------------------------------------------------------------

    @property
    def sweep_interval(self) -> float:
        """A quarter of the shortest timeout, between 20 ms and 1 s."""
        shortest = self.receive_timeout_s
        if self.idle_s is not None:
            shortest = min(shortest, self.idle_s)
        return min(1.0, max(0.02, shortest / 4))

    def expiry(self, conn: Limited, now: float) -> tuple[str, str] | None:
        """Why `conn` should be closed now, if it should."""
        if (conn.holds_partial_frame and not conn.reading_paused
                and now - conn.last_received > self.receive_timeout_s):
            return RECEIVE_TIMEOUT, ("sent part of a request and nothing more for "
                                     f"{now - conn.last_received:.1f} s "
                                     "(strom.request.receive.timeout.ms)")
        idle = self.idle_s
        if idle is not None and not conn.busy:
            quiet = now - max(conn.last_received, conn.last_done)
            if quiet > idle:
                return IDLE, f"idle for {quiet:.1f} s (connections.max.idle.ms)"
        return None

    def sweep(self, connections: Iterable[Limited], now: float) -> int:
        expired = 0
        for conn in list(connections):
            verdict = self.expiry(conn, now)
            if verdict is not None:
                conn.expire(*verdict)
                expired += 1
        return expired

    async def sweep_forever(self, connections: Iterable[Limited]) -> None:
        """Sweep every `sweep_interval`. A round that starts much later than planned is
        skipped: the loop itself was blocked, and bytes clients sent meanwhile may still
        be unread, so the quiet time measured would be ours, not theirs."""
        interval = self.sweep_interval
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            late = now - last > 2 * interval + 0.5
            last = now
            if not late:
                self.sweep(connections, now)

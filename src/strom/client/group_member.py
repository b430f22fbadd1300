"""`GroupMember`: membership in a Kafka group whose assignment the client computes.

confluent-kafka implements only the consumer protocol with librdkafka's own assignors, so
Strom Connect's distributed workers (protocol type `connect`) and Strom Streams' threads
(the consumer protocol with Kafka Streams' task assignor) speak the group APIs
themselves, with Strom's own codec (`strom.protocol.framing`, kio schemas; no broker
code): FindCoordinator v3, JoinGroup v5 (with the member-id round trip of KIP-394),
SyncGroup v3, Heartbeat v3, LeaveGroup v3, over TLS and SASL as the application's other
clients (`ClientSecurity`). The protocol's metadata and assignments are opaque bytes here;
the leader's assignor is a callback.

Blocking by design: the owner's thread calls `join`, then `heartbeat` every
`heartbeat.interval.ms` (from its loop or a heartbeat thread, one request at a time), as
Kafka's AbstractCoordinator does.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from strom.client.security import ClientSecurity
from strom.protocol import framing
from strom.protocol.api_keys import ApiKey
from strom.protocol.schema import build

log = logging.getLogger(__name__)

FIND_COORDINATOR_V, JOIN_V, SYNC_V, HEARTBEAT_V, LEAVE_V = 3, 5, 3, 3, 3
RETRY_BACKOFF_S = 0.1
#: errors after which the member finds the coordinator again
COORDINATOR_MOVED = {ErrorCode.not_coordinator, ErrorCode.coordinator_not_available,
                     ErrorCode.coordinator_load_in_progress}
#: errors after which the member joins again (with a fresh id for an unknown member)
REJOIN = {ErrorCode.rebalance_in_progress, ErrorCode.illegal_generation, ErrorCode.unknown_member_id}

Assignor = Callable[[str, Sequence[tuple[str, bytes]]], dict[str, bytes]]


class GroupError(Exception):
    """A group request failed with an error the member cannot handle by retrying."""

    def __init__(self, api: str, code: ErrorCode) -> None:
        super().__init__(f"{api} failed: {code.name.upper()}")
        self.code = code


@dataclass(frozen=True)
class JoinResult:
    generation: int
    member_id: str
    leader_id: str
    protocol: str
    assignment: bytes
    members: tuple[tuple[str, bytes], ...]  # the leader's view; empty for followers

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader_id


class Connection:
    """One blocking connection to one broker, requests answered in order."""

    def __init__(self, host: str, port: int, client_id: str, timeout_s: float,
                 security: ClientSecurity | None = None) -> None:
        security = security or ClientSecurity()
        self.sock = security.open(host, port, timeout_s)
        self.client_id = client_id
        self.correlation = 0
        try:
            security.login(self._call_fields, f"{host}:{port}")
        except BaseException:
            self.sock.close()
            raise

    def _call_fields(self, api_key: int, version: int, fields: Mapping[str, Any]) -> Any:
        return self.request(ApiKey(api_key), version,
                            build(_request_type(ApiKey(api_key), version), **fields))

    def request(self, api_key: ApiKey, version: int, body: Any) -> Any:
        self.correlation += 1
        self.sock.sendall(framing.encode_request(self.correlation, api_key, version, body, self.client_id))
        (size,) = struct.unpack(">i", self._exactly(4))
        response = framing.decode_response(self._exactly(size), api_key, version)
        return response.body

    def _exactly(self, size: int) -> bytes:
        chunks, remaining = [], size
        while remaining:
            chunk = self.sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


class GroupMember:
    def __init__(self, bootstrap_servers: str, group_id: str, *, protocol_type: str = "connect",
                 session_timeout_ms: int = 10_000, rebalance_timeout_ms: int = 60_000,
                 client_id: str = "connect-worker", request_timeout_s: float = 40.0,
                 security: ClientSecurity | None = None) -> None:
        self.bootstrap = [_host_port(a) for a in bootstrap_servers.split(",") if a.strip()]
        self.group_id, self.protocol_type, self.client_id = group_id, protocol_type, client_id
        self.session_timeout_ms, self.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        # a join waits for every member's rejoin: up to the rebalance timeout
        self.request_timeout_s = max(request_timeout_s, rebalance_timeout_ms / 1000 + 5)
        self.security = security  # TLS and SASL as the application's clients use them
        self.member_id = ""
        self.generation = -1
        self.coordinator: Connection | None = None
        # one request at a time on the coordinator connection: the herder's thread joins,
        # a heartbeat thread heartbeats (Kafka's AbstractCoordinator has the same split)
        self.io_lock = threading.RLock()

    # --- coordinator ------------------------------------------------------------------------

    def _coordinator(self) -> Connection:
        while self.coordinator is None:
            self.coordinator = self._find_coordinator()
        return self.coordinator

    def _find_coordinator(self) -> Connection | None:
        for host, port in self.bootstrap:
            try:
                conn = Connection(host, port, self.client_id, self.request_timeout_s,
                                  self.security)
            except OSError:
                continue
            try:
                request: Any = build(_request_type(ApiKey.FIND_COORDINATOR, FIND_COORDINATOR_V),
                                key=self.group_id, key_type=0)
                answer = conn.request(ApiKey.FIND_COORDINATOR, FIND_COORDINATOR_V, request)
            finally:
                conn.close()
            if answer.error_code == ErrorCode.none:
                return Connection(answer.host, int(answer.port), self.client_id,
                                  self.request_timeout_s, self.security)
            if answer.error_code not in COORDINATOR_MOVED:  # refused (ACLs), not "not yet"
                raise GroupError("FindCoordinator", answer.error_code)
            log.debug("FindCoordinator for %s: %s", self.group_id, answer.error_code.name)
        time.sleep(RETRY_BACKOFF_S)
        return None

    def _lost_coordinator(self) -> None:
        if self.coordinator is not None:
            self.coordinator.close()
        self.coordinator = None

    def _call(self, api_key: ApiKey, version: int, **fields: Any) -> Any:
        with self.io_lock:
            conn = self._coordinator()
            try:
                return conn.request(api_key, version, build(_request_type(api_key, version), **fields))
            except (OSError, ConnectionError):
                self._lost_coordinator()
                raise

    # --- membership ---------------------------------------------------------------------------

    def join(self, protocols: Sequence[tuple[str, bytes]], assign: Assignor) -> JoinResult:
        """Join (or rejoin) the group and return this member's assignment; the leader's
        `assign(protocol, members)` maps member ids to assignment bytes."""
        while True:
            joined = self._join_once(protocols)
            if joined is None:
                continue
            result = self._sync(joined, assign)
            if result is not None:
                return result

    def _join_once(self, protocols: Sequence[tuple[str, bytes]]) -> Any:
        try:
            answer = self._call(ApiKey.JOIN_GROUP, JOIN_V, group_id=self.group_id,
                                session_timeout=self.session_timeout_ms,
                                rebalance_timeout=self.rebalance_timeout_ms, member_id=self.member_id,
                                group_instance_id=None, protocol_type=self.protocol_type,
                                protocols=[{"name": n, "metadata": m} for n, m in protocols])
        except (OSError, ConnectionError):
            return None
        code = answer.error_code
        if code == ErrorCode.member_id_required:
            self.member_id = answer.member_id
            return None
        if not self._retriable(code, "JoinGroup"):
            return answer
        return None

    def _retriable(self, code: ErrorCode, api: str) -> bool:
        """True if `code` means "try again" (after fixing what it names); raises otherwise."""
        if code == ErrorCode.none:
            return False
        if code in COORDINATOR_MOVED:
            self._lost_coordinator()
        elif code == ErrorCode.unknown_member_id:
            self.member_id = ""
        elif code not in REJOIN:
            raise GroupError(api, code)
        time.sleep(RETRY_BACKOFF_S)
        return True

    def _sync(self, joined: Any, assign: Assignor) -> JoinResult | None:
        self.member_id, self.generation = joined.member_id, int(joined.generation_id)
        members = tuple((m.member_id, bytes(m.metadata)) for m in joined.members)
        assignments: list[dict[str, Any]] = []
        if joined.member_id == joined.leader:
            plan = assign(joined.protocol_name, members)
            assignments = [{"member_id": k, "assignment": v} for k, v in plan.items()]
        try:
            answer = self._call(ApiKey.SYNC_GROUP, SYNC_V, group_id=self.group_id,
                                generation_id=self.generation, member_id=self.member_id,
                                group_instance_id=None, assignments=assignments)
        except (OSError, ConnectionError):
            return None
        if self._retriable(answer.error_code, "SyncGroup"):
            return None
        return JoinResult(self.generation, self.member_id, joined.leader, joined.protocol_name,
                          bytes(answer.assignment), members)

    def heartbeat(self) -> bool:
        """True while the group is stable; False when this member must rejoin."""
        try:
            answer = self._call(ApiKey.HEARTBEAT, HEARTBEAT_V, group_id=self.group_id,
                                generation_id=self.generation, member_id=self.member_id,
                                group_instance_id=None)
        except (OSError, ConnectionError):
            return False
        return not self._retriable(answer.error_code, "Heartbeat")

    def leave(self) -> None:
        """Leave the group (the others rebalance at once instead of after the session timeout)."""
        if self.member_id:
            try:
                self._call(ApiKey.LEAVE_GROUP, LEAVE_V, group_id=self.group_id,
                           members=[{"member_id": self.member_id, "group_instance_id": None}])
            except (OSError, ConnectionError):
                log.debug("LeaveGroup failed; the session timeout will remove %s", self.member_id)
        self.member_id, self.generation = "", -1

    def close(self) -> None:
        self._lost_coordinator()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host.strip("[]") or "localhost", int(port)


def _request_type(api_key: ApiKey, version: int) -> type:
    from strom.protocol import apis

    spec = apis.request_spec(api_key, version)
    if spec is None:
        raise LookupError(f"no schema for {api_key.name} v{version}")
    return spec.request_type

"""Admin calls librdkafka does not offer, spoken in the Kafka protocol over plain sockets.

confluent-kafka's AdminClient has no ListTransactions, DescribeTransactions,
DescribeProducers or abort of a transaction (Kafka's Java Admin has them, and
`kafka-transactions.sh` is built on them). `ProtocolAdmin` sends those requests itself,
the way the Java Admin does:

- Metadata from a bootstrap broker names the brokers and each partition's leader;
- ListTransactions goes to every broker (each coordinates its own transactional ids) and
  the answers are merged;
- DescribeTransactions goes to the transactional id's coordinator, found with
  FindCoordinator (key type 1);
- DescribeProducers goes to each partition's leader, or to one named replica;
- an abort is a WriteTxnMarkers with an ABORT marker, sent to the partition's leader.

Each connection first asks ApiVersions and every request uses the highest version both
sides know. Calls are synchronous and bounded by `timeout`; answers that say "ask again"
(a moved leader, a coordinator still loading) are retried until then. Failures raise
`KafkaClientError` named with Kafka's error names (`TRANSACTIONAL_ID_NOT_FOUND`,
`NOT_LEADER_OR_FOLLOWER`), or `BrokerUnreachableError` / `ClientTimeoutError`.

Every listener type works: TLS and SASL (PLAIN, SCRAM-SHA-256/512) are configured with
librdkafka's property names (`ProtocolAdmin.from_properties`, `strom.client.security`),
so the `-X` properties or profile that serve librdkafka serve these calls too.
"""

from __future__ import annotations

import functools
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strom.client.config import DEFAULT_CLIENT_ID, DEFAULT_TIMEOUT_S
from strom.client.errors import BrokerUnreachableError, ClientTimeoutError, KafkaClientError
from strom.client.security import ClientSecurity

T = TypeVar("T")
TopicPartition = tuple[str, int]

API_VERSIONS, METADATA, FIND_COORDINATOR = 18, 3, 10
WRITE_TXN_MARKERS, DESCRIBE_PRODUCERS, DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 27, 61, 65, 66
# The versions this client speaks, per API: (lowest, highest).
SPOKEN: Mapping[int, tuple[int, int]] = {
    METADATA: (1, 12), FIND_COORDINATOR: (1, 6), WRITE_TXN_MARKERS: (1, 2),
    DESCRIBE_PRODUCERS: (0, 0), DESCRIBE_TRANSACTIONS: (0, 0), LIST_TRANSACTIONS: (0, 2),
}
API_NAMES = {METADATA: "Metadata", FIND_COORDINATOR: "FindCoordinator",
             WRITE_TXN_MARKERS: "WriteTxnMarkers", DESCRIBE_PRODUCERS: "DescribeProducers",
             DESCRIBE_TRANSACTIONS: "DescribeTransactions",
             LIST_TRANSACTIONS: "ListTransactions"}
TRANSACTION_KEY = 1  # FindCoordinator key type of a transactional id
UNSUPPORTED_VERSION = 35
RETRY_BACKOFF_S = 0.1

# Answers after which the same request, sent again (to a refreshed leader or
# coordinator), can succeed.
RETRY = frozenset({"NOT_LEADER_OR_FOLLOWER", "LEADER_NOT_AVAILABLE", "NOT_COORDINATOR",
                   "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS",
                   "REQUEST_TIMED_OUT", "NETWORK_EXCEPTION", "_TRANSPORT"})
MESSAGES = {
    "TRANSACTIONAL_ID_NOT_FOUND": "no such transactional id",
    "UNKNOWN_TOPIC_OR_PARTITION": "no such topic or partition",
    "NOT_LEADER_OR_FOLLOWER": "this broker holds no replica of the partition",
    "TRANSACTION_COORDINATOR_FENCED": "the coordinator epoch is too old",
}
HINTS = {
    "TRANSACTIONAL_ID_NOT_FOUND": "its coordinator knows no transactional id of this name",
    "UNKNOWN_TOPIC_OR_PARTITION": "no such topic (or partition) on this cluster",
    "TRANSACTION_COORDINATOR_FENCED": "the coordinator epoch is older than the one the "
                                      "partition knows; DescribeProducers shows the latest",
    "INVALID_PRODUCER_EPOCH": "the producer epoch is older than the one the partition knows; "
                              "DescribeProducers shows the current one",
    "PRODUCER_FENCED": "the producer epoch is older than the one the partition knows",
    "UNSUPPORTED_VERSION": "the broker is too old for this request",
    "CLUSTER_AUTHORIZATION_FAILED": "the principal lacks a cluster ACL",
}


@dataclass(frozen=True)
class BrokerNode:
    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class PartitionInfo:
    """A partition as Metadata reports it; `error` is Kafka's error name or None."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    error: str | None = None


@dataclass(frozen=True)
class TransactionListing:
    """One transactional id as ListTransactions reports it, with the broker that did."""

    transactional_id: str
    producer_id: int
    state: str  # Kafka's spelling: Ongoing, PrepareCommit, CompleteAbort, Empty, ...
    coordinator_id: int


@dataclass(frozen=True)
class TransactionListings:
    transactions: list[TransactionListing]
    unknown_states: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TransactionDescription:
    """DescribeTransactions' answer; `start_time_ms` is None without an open transaction."""

    transactional_id: str
    coordinator_id: int
    state: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    start_time_ms: int | None
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class ProducerState:
    """A producer a partition replica tracks (DescribeProducers); the optional fields are
    None where Kafka sends -1 (no coordinator has written a marker yet; no open
    transaction)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int | None
    current_txn_start_offset: int | None


def error_name(code: int) -> str:
    """Kafka's name of an error code: 3 → UNKNOWN_TOPIC_OR_PARTITION."""
    from kio.schema.errors import ErrorCode

    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return f"ERROR_{code}"


def client_error(code: int, message: str | None, resource: str | None = None
                 ) -> KafkaClientError:
    """The exception for an error code in an answer, naming what it concerns; `retriable`
    is Kafka's RetriableException flag of the code."""
    from kio.schema.errors import ErrorCode

    name = error_name(code)
    text = message or MESSAGES.get(name) or name.lower().replace("_", " ")
    if resource is not None:
        text = f"{resource}: {text}"
    try:
        retriable = bool(ErrorCode(code).retriable)
    except ValueError:
        retriable = False
    return KafkaClientError(text, name=name, retriable=retriable, hint=HINTS.get(name),
                            resource=resource)


def _millis(value: Any) -> int:
    from strom.protocol.schema import millis

    return millis(value)


def _optional(value: int) -> int | None:
    return None if value < 0 else value


class _Connection:
    """One socket to one broker: TLS and SASL as `security` says, ApiVersions once, then
    request/answer in turn."""

    def __init__(self, host: str, port: int, timeout: float, client_id: str,
                 security: ClientSecurity | None = None) -> None:
        security = security or ClientSecurity()
        self.address = f"{host}:{port}"
        self.sock: socket.socket = security.open(host, port, timeout)
        self.client_id = client_id
        self._correlation = 0
        self.versions: dict[int, tuple[int, int]] = {}
        try:
            security.login(self.call_version, self.address)
            self._negotiate()
        except BaseException:
            self.sock.close()
            raise

    def _negotiate(self) -> None:
        """ApiVersions v3, or v0 from a broker that answers v3 with UNSUPPORTED_VERSION."""
        raw = self._exchange(API_VERSIONS, 3, {"client_software_name": "strom",
                                               "client_software_version": "1.0"})
        version = 3
        if struct.unpack_from(">h", raw, 4)[0] == UNSUPPORTED_VERSION:
            version, raw = 0, self._exchange(API_VERSIONS, 0, {})
        body = self._decode(raw, API_VERSIONS, version)
        if int(body.error_code) != 0:
            raise client_error(int(body.error_code), None, f"ApiVersions from {self.address}")
        self.versions = {int(k.api_key): (int(k.min_version), int(k.max_version))
                         for k in body.api_keys}

    def version(self, api_key: int) -> int:
        """The highest version of `api_key` both sides speak."""
        low, high = SPOKEN[api_key]
        theirs = self.versions.get(api_key)
        if theirs is None or max(low, theirs[0]) > min(high, theirs[1]):
            raise KafkaClientError(
                f"broker {self.address} does not support {API_NAMES[api_key]} versions "
                f"{low}-{high}", name="UNSUPPORTED_VERSION", hint=HINTS["UNSUPPORTED_VERSION"])
        return min(high, theirs[1])

    def call(self, api_key: int, fields: Mapping[str, Any]) -> tuple[int, Any]:
        """(version used, answer body) of one request."""
        version = self.version(api_key)
        return version, self.call_version(api_key, version, fields)

    def call_version(self, api_key: int, version: int, fields: Mapping[str, Any]) -> Any:
        """The answer body of one request at a version the caller chose."""
        return self._decode(self._exchange(api_key, version, fields), api_key, version)

    def _exchange(self, api_key: int, version: int, fields: Mapping[str, Any]) -> bytes:
        from strom.protocol import apis, framing
        from strom.protocol.schema import build

        spec = apis.request_spec(api_key, version)
        assert spec is not None, (api_key, version)
        self._correlation += 1
        self.sock.sendall(framing.encode_request(
            self._correlation, api_key, version, build(spec.request_type, fields), self.client_id))
        size = struct.unpack(">i", self._read(4))[0]
        frame = self._read(size)
        if struct.unpack_from(">i", frame, 0)[0] != self._correlation:
            raise KafkaClientError(f"{self.address} answered out of turn", name="_BAD_MSG")
        return frame

    @staticmethod
    def _decode(frame: bytes, api_key: int, version: int) -> Any:
        from strom.protocol import framing

        return framing.decode_response(frame, api_key, version).body

    def _read(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(min(left, 1 << 20))
            if not chunk:
                raise KafkaClientError(f"{self.address} closed the connection",
                                       name="_TRANSPORT", retriable=True)
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


@dataclass
class _Cluster:
    """What the last Metadata said."""

    brokers: dict[int, BrokerNode] = field(default_factory=dict)
    partitions: dict[TopicPartition, PartitionInfo] = field(default_factory=dict)


class ProtocolAdmin:
    """Transactions' admin calls over the Kafka protocol (see the module docstring).

        with ProtocolAdmin("localhost:9092") as admin:
            for txn in admin.list_transactions().transactions:
                print(txn.transactional_id, txn.state)
    """

    def __init__(self, bootstrap_servers: str, *, timeout: float = DEFAULT_TIMEOUT_S,
                 client_id: str = DEFAULT_CLIENT_ID,
                 security: ClientSecurity | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self.client_id = client_id
        self.security = security or ClientSecurity()
        self._connections: dict[tuple[str, int], _Connection] = {}
        self._cluster = _Cluster()

    @classmethod
    def from_properties(cls, bootstrap_servers: str, properties: Mapping[str, Any], *,
                        timeout: float = DEFAULT_TIMEOUT_S,
                        client_id: str = DEFAULT_CLIENT_ID) -> ProtocolAdmin:
        """An admin configured as librdkafka would be by the same properties: the
        security ones (`strom.client.security`), `client.id`, and `request.timeout.ms`
        or `socket.timeout.ms` for `timeout`. Others are librdkafka's business and are
        left alone, so one profile serves every command."""
        for name in ("request.timeout.ms", "socket.timeout.ms"):
            if name in properties:
                timeout = _positive_ms(name, properties[name]) / 1000
                break
        return cls(bootstrap_servers, timeout=timeout,
                   client_id=str(properties.get("client.id") or client_id),
                   security=ClientSecurity.from_properties(properties))

    def __enter__(self) -> ProtocolAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    # --- connections ------------------------------------------------------------------

    def _connection(self, host: str, port: int) -> _Connection:
        key = (host, port)
        connection = self._connections.get(key)
        if connection is None:
            try:
                connection = _Connection(host, port, self.timeout, self.client_id,
                                         self.security)
            except TimeoutError:
                raise ClientTimeoutError(f"{host}:{port}", self.timeout) from None
            except ssl.SSLError as exc:
                raise KafkaClientError(f"TLS with {host}:{port} failed: "
                                       f"{exc.reason or exc}", name="_SSL") from exc
            except OSError as exc:
                raise KafkaClientError(f"cannot connect to {host}:{port}: {exc.strerror or exc}",
                                       name="_TRANSPORT", retriable=True) from exc
            self._connections[key] = connection
        return connection

    def _call(self, host: str, port: int, api_key: int, fields: Mapping[str, Any],
              version: int | None = None) -> tuple[int, Any]:
        """One request (at the highest common version unless `version` is given); a
        broken connection is dropped so the next call opens a new one."""
        connection = self._connection(host, port)
        try:
            if version is not None:
                return version, connection.call_version(api_key, version, fields)
            return connection.call(api_key, fields)
        except TimeoutError:
            self._drop(host, port)
            raise ClientTimeoutError(connection.address, self.timeout) from None
        except OSError as exc:
            self._drop(host, port)
            raise KafkaClientError(f"{connection.address}: {exc}", name="_TRANSPORT",
                                   retriable=True) from exc
        except KafkaClientError as exc:
            if exc.name == "_TRANSPORT":
                self._drop(host, port)
            raise

    def _drop(self, host: str, port: int) -> None:
        connection = self._connections.pop((host, port), None)
        if connection is not None:
            connection.close()

    def _call_broker(self, broker_id: int, api_key: int, fields: Mapping[str, Any]
                     ) -> tuple[int, Any]:
        node = self._cluster.brokers.get(broker_id)
        if node is None:
            self._refresh(None)
            node = self._cluster.brokers.get(broker_id)
        if node is None:
            raise KafkaClientError(f"no broker {broker_id} in the cluster",
                                   name="BROKER_NOT_AVAILABLE", resource=f"broker {broker_id}")
        return self._call(node.host, node.port, api_key, fields)

    def _bootstrap_call(self, api_key: int, fields: Mapping[str, Any],
                        version: int | None = None) -> tuple[int, Any]:
        """A request to the first bootstrap broker (or known broker) that answers."""
        addresses = [(n.host, n.port) for n in self._cluster.brokers.values()]
        for item in self.bootstrap_servers.split(","):
            name, _, number = item.strip().rpartition(":")
            if number.isdigit():
                addresses.append((name.strip("[]") or "localhost", int(number)))
        last: KafkaClientError | None = None
        for host, port in dict.fromkeys(addresses):
            try:
                return self._call(host, port, api_key, fields, version)
            except KafkaClientError as exc:
                if exc.name != "_TRANSPORT" and not isinstance(exc, ClientTimeoutError):
                    raise
                last = exc
        if isinstance(last, ClientTimeoutError):
            raise last
        raise BrokerUnreachableError(self.bootstrap_servers, None) from last

    def request(self, api_key: int, version: int, fields: Mapping[str, Any]) -> Any:
        """One request at a version the caller chose, to the first bootstrap broker that
        answers; the answer's body (for requests this class has no method for)."""
        return self._bootstrap_call(api_key, fields, version)[1]

    def _retrying(self, operation: Callable[[], T]) -> T:
        """`operation` again while its failure is one that retrying can cure, up to the
        timeout; cached metadata is dropped between attempts (leaders move)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return operation()
            except KafkaClientError as exc:
                if exc.name not in RETRY or time.monotonic() + RETRY_BACKOFF_S > deadline:
                    raise
            time.sleep(RETRY_BACKOFF_S)
            self._cluster = _Cluster()

    # --- metadata ---------------------------------------------------------------------

    def _refresh(self, topics: Sequence[str] | None) -> _Cluster:
        fields = {"topics": None if topics is None else [{"name": t} for t in topics],
                  "allow_auto_topic_creation": False}
        _, body = self._bootstrap_call(METADATA, fields)
        brokers = {int(b.node_id): BrokerNode(int(b.node_id), b.host, int(b.port))
                   for b in body.brokers}
        partitions = dict(self._cluster.partitions)
        for topic in body.topics:
            if int(topic.error_code) and topics is not None:
                raise client_error(int(topic.error_code), None, f"topic {topic.name!r}")
            for p in topic.partitions:
                code = int(p.error_code)
                partitions[(topic.name, int(p.partition_index))] = PartitionInfo(
                    topic.name, int(p.partition_index), int(p.leader_id),
                    tuple(int(r) for r in p.replica_nodes),
                    error_name(code) if code and code != 9 else None)  # 9: a replica is down
        self._cluster = _Cluster(brokers, partitions)
        return self._cluster

    def brokers(self) -> dict[int, BrokerNode]:
        """The cluster's live brokers by id."""
        return dict(self._retrying(lambda: self._refresh(None)).brokers)

    def topics(self) -> list[str]:
        """The names of the cluster's topics, internal ones left out (as Kafka's
        listTopics does by default)."""
        _, body = self._retrying(lambda: self._bootstrap_call(
            METADATA, {"topics": None, "allow_auto_topic_creation": False}))
        return sorted(t.name for t in body.topics if not t.is_internal and not int(t.error_code))

    def partitions(self, topics: Sequence[str]) -> list[PartitionInfo]:
        """Every partition of `topics`; a missing topic raises UNKNOWN_TOPIC_OR_PARTITION."""
        cluster = self._retrying(lambda: self._refresh(topics))
        wanted = set(topics)
        return sorted((p for k, p in cluster.partitions.items() if k[0] in wanted),
                      key=lambda p: (p.topic, p.partition))

    def _leader(self, tp: TopicPartition) -> int:
        info = self._cluster.partitions.get(tp)
        if info is None:
            info = self._refresh([tp[0]]).partitions.get(tp)
        if info is None:
            raise client_error(3, None, f"{tp[0]}-{tp[1]}")
        if info.leader < 0:
            raise KafkaClientError(f"{tp[0]}-{tp[1]} has no leader",
                                   name="LEADER_NOT_AVAILABLE", retriable=True)
        return info.leader

    # --- transactions -----------------------------------------------------------------

    def list_transactions(self, states: Iterable[str] = (), producer_ids: Iterable[int] = (),
                          duration_ms: int = -1, pattern: str | None = None
                          ) -> TransactionListings:
        """Every broker's transactions, filtered by state, producer id, the time they have
        been open (ms; ListTransactions v1) and a regular expression on the transactional
        id (v2). A broker that coordinates nothing yet contributes none."""
        fields = {"state_filters": list(states), "producer_id_filters": list(producer_ids),
                  "duration_filter": duration_ms, "transactional_id_pattern": pattern}
        found: list[TransactionListing] = []
        unknown: set[str] = set()
        for broker_id in sorted(self.brokers()):
            listings, missing = self._retrying(functools.partial(self._list_on, broker_id, fields))
            found += listings
            unknown |= missing
        found.sort(key=lambda t: t.transactional_id)
        return TransactionListings(found, frozenset(unknown))

    def _list_on(self, broker_id: int, fields: Mapping[str, Any]
                 ) -> tuple[list[TransactionListing], set[str]]:
        version, body = self._call_broker(broker_id, LIST_TRANSACTIONS, fields)
        _check_filters(version, fields)
        name = error_name(int(body.error_code)) if int(body.error_code) else None
        if name == "COORDINATOR_NOT_AVAILABLE":  # no transaction coordinator there yet
            return [], set()
        if name is not None:
            raise client_error(int(body.error_code), None, f"broker {broker_id}")
        listings = [TransactionListing(t.transactional_id, int(t.producer_id),
                                       t.transaction_state, broker_id)
                    for t in body.transaction_states]
        return listings, set(body.unknown_state_filters)

    def coordinator(self, transactional_id: str) -> int:
        """The id of the broker coordinating `transactional_id`."""
        return self._retrying(lambda: self._find_coordinator(transactional_id))

    def _find_coordinator(self, transactional_id: str) -> int:
        version = self._bootstrap_version(FIND_COORDINATOR)
        if version >= 4:
            _, body = self._bootstrap_call(FIND_COORDINATOR, {
                "key_type": TRANSACTION_KEY, "coordinator_keys": [transactional_id]})
            answer = body.coordinators[0]
        else:
            _, answer = self._bootstrap_call(FIND_COORDINATOR, {
                "key_type": TRANSACTION_KEY, "key": transactional_id})
        if int(answer.error_code):
            raise client_error(int(answer.error_code), answer.error_message,
                               f"transactional id {transactional_id!r}")
        node = BrokerNode(int(answer.node_id), answer.host, int(answer.port))
        self._cluster.brokers.setdefault(node.node_id, node)
        return node.node_id

    def _bootstrap_version(self, api_key: int) -> int:
        if not self._connections:
            self._refresh(None)
        return next(iter(self._connections.values())).version(api_key)

    def describe_transaction(self, transactional_id: str) -> TransactionDescription:
        """The coordinator's view of one transactional id; an unknown one raises
        TRANSACTIONAL_ID_NOT_FOUND."""
        return self._retrying(lambda: self._describe_on(self._find_coordinator(transactional_id),
                                                        transactional_id))

    def _describe_on(self, broker_id: int, transactional_id: str) -> TransactionDescription:
        _, body = self._call_broker(broker_id, DESCRIBE_TRANSACTIONS,
                                    {"transactional_ids": [transactional_id]})
        state = body.transaction_states[0]
        if int(state.error_code):
            raise client_error(int(state.error_code), None,
                               f"transactional id {transactional_id!r}")
        partitions = tuple(sorted((t.topic, int(p)) for t in state.topics for p in t.partitions))
        return TransactionDescription(
            transactional_id, broker_id, state.transaction_state, int(state.producer_id),
            int(state.producer_epoch), _millis(state.transaction_timeout),
            _optional(_millis(state.transaction_start_time)), partitions)

    def describe_producers(self, partitions: Iterable[TopicPartition],
                           broker_id: int | None = None
                           ) -> dict[TopicPartition, list[ProducerState] | KafkaClientError]:
        """The producers each partition tracks, asked of its leader (moved leaders are
        followed) or, with `broker_id`, of that replica; a partition's failure is its
        value, as a KafkaClientError."""
        wanted = list(dict.fromkeys(partitions))
        if broker_id is not None:
            return self._retrying(lambda: self._producers_on(broker_id, wanted))
        results: dict[TopicPartition, list[ProducerState] | KafkaClientError] = {}
        deadline = time.monotonic() + self.timeout
        while wanted:
            pending = self._producers_by_leader(wanted, results)
            if not pending or time.monotonic() + RETRY_BACKOFF_S > deadline:
                results.update(pending)
                break
            time.sleep(RETRY_BACKOFF_S)
            self._cluster = _Cluster()
            wanted = list(pending)
        return {tp: results[tp] for tp in dict.fromkeys(partitions)}

    def _producers_by_leader(self, wanted: list[TopicPartition],
                             results: dict[TopicPartition, list[ProducerState] | KafkaClientError]
                             ) -> dict[TopicPartition, KafkaClientError]:
        """One round: each leader asked once; what should be asked again is returned."""
        by_leader: dict[int, list[TopicPartition]] = {}
        retry: dict[TopicPartition, KafkaClientError] = {}
        for tp in wanted:
            try:
                by_leader.setdefault(self._leader(tp), []).append(tp)
            except KafkaClientError as exc:
                (retry if exc.name in RETRY else results)[tp] = exc
        for leader, tps in by_leader.items():
            try:
                answers = self._producers_on(leader, tps)
            except KafkaClientError as exc:
                if exc.name not in RETRY:
                    raise
                retry.update(dict.fromkeys(tps, exc))
                continue
            for tp, answer in answers.items():
                if isinstance(answer, KafkaClientError) and answer.name in RETRY:
                    retry[tp] = answer
                else:
                    results[tp] = answer
        return retry

    def _producers_on(self, broker_id: int, tps: list[TopicPartition]
                      ) -> dict[TopicPartition, list[ProducerState] | KafkaClientError]:
        topics: dict[str, list[int]] = {}
        for topic, index in tps:
            topics.setdefault(topic, []).append(index)
        _, body = self._call_broker(broker_id, DESCRIBE_PRODUCERS, {"topics": [
            {"name": t, "partition_indexes": ids} for t, ids in topics.items()]})
        answers: dict[TopicPartition, list[ProducerState] | KafkaClientError] = {}
        for topic in body.topics:
            for p in topic.partitions:
                tp = (topic.name, int(p.partition_index))
                answers[tp] = (client_error(int(p.error_code), p.error_message,
                                            f"{tp[0]}-{tp[1]}") if int(p.error_code)
                               else [_producer_state(s) for s in p.active_producers])
        return answers

    def abort_transaction(self, topic: str, partition: int, producer_id: int,
                          producer_epoch: int, coordinator_epoch: int) -> None:
        """Write an ABORT marker for the producer's open transaction in one partition
        (WriteTxnMarkers to its leader), as Kafka's Admin.abortTransaction does: the
        partition's last stable offset moves past the transaction."""
        tp = (topic, partition)

        def attempt() -> None:
            _, body = self._call_broker(self._leader(tp), WRITE_TXN_MARKERS, {"markers": [{
                "producer_id": producer_id, "producer_epoch": producer_epoch,
                "transaction_result": False, "coordinator_epoch": coordinator_epoch,
                "transaction_version": 0,
                "topics": [{"name": topic, "partition_indexes": [partition]}]}]})
            for result in body.markers[0].topics:
                for p in result.partitions:
                    if int(p.error_code):
                        raise client_error(int(p.error_code), None, f"{topic}-{partition}")

        self._retrying(attempt)


def _positive_ms(name: str, value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) == 0:
        raise KafkaClientError(f"{name} must be a positive number of ms, got {text!r}",
                               name="_INVALID_ARG")
    return int(text)


def _check_filters(version: int, fields: Mapping[str, Any]) -> None:
    """Filters a broker's ListTransactions version cannot carry are refused, never
    silently dropped."""
    missing = []
    if version < 1 and int(fields.get("duration_filter", -1)) >= 0:
        missing.append("the duration filter (ListTransactions v1)")
    if version < 2 and fields.get("transactional_id_pattern"):
        missing.append("the transactional id pattern (ListTransactions v2)")
    if missing:
        raise KafkaClientError(f"the broker does not support {' or '.join(missing)}",
                               name="UNSUPPORTED_VERSION", hint=HINTS["UNSUPPORTED_VERSION"])


def _producer_state(s: Any) -> ProducerState:
    return ProducerState(int(s.producer_id), int(s.producer_epoch), int(s.last_sequence),
                         int(s.last_timestamp), _optional(int(s.coordinator_epoch)),
                         _optional(int(s.current_txn_start_offset)))

"""Kafka failures as one exception type: the error's name, whether a retry can help, a hint.

librdkafka reports a failure as a `KafkaError` — inside a `KafkaException`, an admin
future, a delivery report or the error callback — whose meaning is its name
(`_TRANSPORT`, `TOPIC_ALREADY_EXISTS`). `KafkaClientError` keeps that name, so callers
branch on it without importing confluent-kafka; `retriable` says whether the same
request may succeed later (Kafka's RetriableException codes, plus librdkafka's own
connection and timeout errors, because its `retriable()` flag is set only for a few
transactional and admin results); `hint` says what a person can check.

The hints name Kafka concepts only. A front end that has its own vocabulary (the CLI
names `strom` commands and flags) replaces them by error name.

Nothing here imports confluent-kafka: `as_client_error` recognises its exceptions only
when the caller already loaded it, so error paths of processes that never used a Kafka
client (such as `strom server`) stay free of it.
"""

from __future__ import annotations

import builtins
import re
import sys
from typing import Protocol


class KafkaErrorLike(Protocol):
    """The part of confluent-kafka's `KafkaError` this package reads."""

    def name(self) -> builtins.str: ...

    def retriable(self) -> bool: ...

    def fatal(self) -> bool: ...

    def str(self) -> builtins.str: ...


class KafkaClientError(Exception):
    """A failed Kafka client operation.

    `name` is Kafka's (or librdkafka's, with a leading underscore) error name,
    `retriable` whether repeating the operation may succeed, `fatal` whether the client
    instance that reported it is unusable, `hint` what to check, `resource` the topic,
    group or config resource it concerns (also named at the start of the message).
    """

    def __init__(self, message: str, *, name: str, retriable: bool = False,
                 fatal: bool = False, hint: str | None = None,
                 resource: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.retriable = retriable
        self.fatal = fatal
        self.hint = hint
        self.resource = resource

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"

    @classmethod
    def from_kafka_error(cls, error: KafkaErrorLike, resource: str | None = None,
                         bootstrap_servers: str | None = None) -> KafkaClientError:
        """The exception for one librdkafka error; with `resource`, the message starts with
        its name (and drops librdkafka's `Broker: ` prefix, which says nothing then)."""
        name = error.name()
        message = error.str()
        if resource is not None:
            message = f"{resource}: {message.removeprefix('Broker: ')}"
        return cls(message, name=name, retriable=is_retriable(error), fatal=error.fatal(),
                   hint=hint_for(name, bootstrap_servers), resource=resource)


class BrokerUnreachableError(KafkaClientError):
    """No broker of the bootstrap list could be reached; retrying later may succeed."""

    def __init__(self, bootstrap_servers: str, reason: KafkaErrorLike | None,
                 name: str = "_ALL_BROKERS_DOWN") -> None:
        detail = f": {connection_failure(reason.str())}" if reason is not None else ""
        name = reason.name() if reason is not None else name
        super().__init__(f"cannot reach a broker at {bootstrap_servers}{detail}", name=name,
                         retriable=True, hint=hint_for("_ALL_BROKERS_DOWN", bootstrap_servers))
        self.bootstrap_servers = bootstrap_servers


class ClientTimeoutError(KafkaClientError):
    """A request got no answer in time, while no broker was reported down."""

    def __init__(self, bootstrap_servers: str, timeout: float) -> None:
        super().__init__(f"no answer from {bootstrap_servers} within {timeout:g} s",
                         name="_TIMED_OUT", retriable=True,
                         hint=hint_for("_TIMED_OUT", bootstrap_servers))
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout


# librdkafka errors after which waiting longer cannot help.
FATAL_LOCAL = frozenset({"_ALL_BROKERS_DOWN", "_RESOLVE", "_AUTHENTICATION", "_SSL", "_FATAL"})

# Errors that mean "no broker answered": the connection failed, or nothing came back.
BROKER_DOWN = frozenset({"_ALL_BROKERS_DOWN", "_TRANSPORT", "_RESOLVE", "_TIMED_OUT", "_BAD_MSG",
                         "_MSG_TIMED_OUT", "_TIMED_OUT_QUEUE"})

# Kafka's RetriableException codes (librdkafka's names), and librdkafka's transient ones.
RETRIABLE = frozenset({
    "NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PART",
    "REQUEST_TIMED_OUT", "NETWORK_EXCEPTION", "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR", "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "INVALID_MSG", "KAFKA_STORAGE_ERROR", "NOT_CONTROLLER",
    "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH", "OFFSET_NOT_AVAILABLE",
    "UNSTABLE_OFFSET_COMMIT", "THROTTLING_QUOTA_EXCEEDED", "CONCURRENT_TRANSACTIONS",
    "ELIGIBLE_LEADERS_NOT_AVAILABLE", "PREFERRED_LEADER_NOT_AVAILABLE", "LISTENER_NOT_FOUND",
    "FETCH_SESSION_ID_NOT_FOUND", "INVALID_FETCH_SESSION_EPOCH",
    "_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_MSG_TIMED_OUT", "_TIMED_OUT_QUEUE",
    "_WAIT_COORD",
})

_DOWN_HINT = "is a broker running at {bootstrap}? Check bootstrap.servers"
_OFFSET_HINT = "the offset is outside the partition's log (before its start or past its end)"

HINTS: dict[str, str] = {
    **dict.fromkeys(BROKER_DOWN, _DOWN_HINT),
    "_AUTHENTICATION": "check security.protocol, sasl.mechanism, sasl.username and "
                       "sasl.password",
    "_SSL": "check security.protocol and the ssl.* properties",
    "_INVALID_ARG": "client properties take librdkafka names; see "
                    "https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md",
    "TOPIC_ALREADY_EXISTS": "a topic of this name exists already",
    "UNKNOWN_TOPIC_OR_PART": "no such topic (or partition) on this cluster",
    "_UNKNOWN_TOPIC": "no such topic on this cluster",
    "_UNKNOWN_PARTITION": "the topic has fewer partitions",
    "INVALID_PARTITIONS": "the new count must be larger than the current one",
    "INVALID_REPLICATION_FACTOR": "it cannot exceed the number of brokers",
    "INVALID_CONFIG": "DescribeConfigs lists the topic's config names, values and sources",
    "TOPIC_EXCEPTION": "names use ASCII letters, digits, '.', '_' and '-', up to "
                       "249 characters",
    "TOPIC_DELETION_DISABLED": "the broker runs with delete.topic.enable=false",
    "GROUP_ID_NOT_FOUND": "no group of this id exists",
    "NON_EMPTY_GROUP": "stop the group's consumers first",
    "REBALANCE_IN_PROGRESS": "the group has active members; stop its consumers first",
    "UNKNOWN_MEMBER_ID": "the group has active members; stop its consumers first",
    "MSG_SIZE_TOO_LARGE": "raise max.message.bytes on the topic",
    "RECORD_LIST_TOO_LARGE": "raise max.message.bytes on the topic",
    "NOT_ENOUGH_REPLICAS": "fewer in-sync replicas than min.insync.replicas",
    "POLICY_VIOLATION": "the broker's policy refused the request",
    "_AUTO_OFFSET_RESET": _OFFSET_HINT,
    "OFFSET_OUT_OF_RANGE": _OFFSET_HINT,
    "TOPIC_AUTHORIZATION_FAILED": "the principal lacks an ACL for this topic",
    "GROUP_AUTHORIZATION_FAILED": "the principal lacks an ACL for this group",
    "CLUSTER_AUTHORIZATION_FAILED": "the principal lacks a cluster ACL",
}


def hint_for(name: str, bootstrap_servers: str | None = None) -> str | None:
    """The hint for an error name, with the bootstrap list filled in where it helps."""
    hint = HINTS.get(name)
    if hint is None:
        return None
    return hint.format(bootstrap=bootstrap_servers or "the bootstrap servers")


def is_retriable(error: KafkaErrorLike) -> bool:
    """Whether repeating the operation may succeed (never for a fatal error)."""
    if error.fatal():
        return False
    return error.retriable() or error.name() in RETRIABLE


def connection_failure(message: str) -> str:
    """The reason inside librdkafka's connection report:
    'h:p/bootstrap: Connect to ipv4#h:p failed: Connection refused (after 0ms in state
    CONNECT)' → 'Connection refused'."""
    reason = message.rsplit("failed: ", 1)[-1]
    return re.sub(r"\s*\(after \d+ms in state \w+\)$", "", reason)


def kafka_error_of(exc: BaseException) -> KafkaErrorLike | None:
    """The KafkaError inside a KafkaException (or a KafkaError itself), else None."""
    ck = sys.modules.get("confluent_kafka")
    if ck is None:  # nothing can have raised one
        return None
    if isinstance(exc, ck.KafkaError):
        return exc
    if isinstance(exc, ck.KafkaException) and exc.args and isinstance(exc.args[0], ck.KafkaError):
        return exc.args[0]
    return None


def as_client_error(exc: BaseException, resource: str | None = None,
                    bootstrap_servers: str | None = None) -> KafkaClientError | None:
    """`exc` as a KafkaClientError if it came from a Kafka client, else None."""
    if isinstance(exc, KafkaClientError):
        return exc
    error = kafka_error_of(exc)
    if error is not None:
        return KafkaClientError.from_kafka_error(error, resource, bootstrap_servers)
    ck = sys.modules.get("confluent_kafka")
    if ck is not None and isinstance(exc, ck.KafkaException):
        return KafkaClientError(str(exc), name="KAFKA_EXCEPTION", resource=resource)
    if isinstance(exc, ValueError | TypeError) and "confluent_kafka" in repr(type(exc)):
        return KafkaClientError(str(exc), name="INVALID_ARGUMENT", resource=resource)
    return None

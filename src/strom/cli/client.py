"""confluent-kafka clients for the CLI, configured to fail fast and explain themselves.

`Clients` builds AdminClient, Producer and Consumer from `-b` and `-X` with short
connection timeouts, routes librdkafka's own log lines to a logger that is quiet unless
`STROM_CLI_DEBUG` is set, and watches the error callback: when every broker is down the
next `wait`/`check` raises at once instead of letting a request run to its timeout. So a
missing broker is reported within a second or two (connection refused) or
`socket.connection.setup.timeout.ms` (5 s, for an unreachable address).

`as_cli_error` turns a KafkaException into one line with Kafka's error name and a hint.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from strom.cli.common import DEFAULT_BROKERS, CliError, OutputFormat, parse_kv

DEFAULT_TIMEOUT_S = 15.0

_LIB_LOG = logging.getLogger("strom.cli.librdkafka")
if not os.environ.get("STROM_CLI_DEBUG"):
    _LIB_LOG.addHandler(logging.NullHandler())
    _LIB_LOG.propagate = False
else:  # pragma: no cover - a debugging aid
    logging.basicConfig(level=logging.DEBUG)

# librdkafka errors after which waiting longer cannot help.
_FATAL_LOCAL = {"_ALL_BROKERS_DOWN", "_RESOLVE", "_AUTHENTICATION", "_SSL", "_FATAL"}
_BROKER_DOWN = {"_ALL_BROKERS_DOWN", "_TRANSPORT", "_RESOLVE", "_TIMED_OUT", "_BAD_MSG",
                "_MSG_TIMED_OUT", "_TIMED_OUT_QUEUE"}


def _hints(brokers: str) -> dict[str, str]:
    down = (f"is a broker running at {brokers}? Start one with `strom server`, or point "
            "-b/--brokers (or STROM_BROKERS) at one")
    return {
        **{name: down for name in _BROKER_DOWN},
        "_AUTHENTICATION": "check -X security.protocol, sasl.mechanism, sasl.username and "
                           "sasl.password",
        "_SSL": "check -X security.protocol and the ssl.* properties",
        "_INVALID_ARG": "-X takes librdkafka property names; see "
                        "https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md",
        "TOPIC_ALREADY_EXISTS": "pass --if-not-exists to accept an existing topic",
        "UNKNOWN_TOPIC_OR_PART": "`strom topic list` shows the topics that exist",
        "_UNKNOWN_TOPIC": "`strom topic list` shows the topics that exist",
        "_UNKNOWN_PARTITION": "`strom topic describe TOPIC` shows its partitions",
        "INVALID_PARTITIONS": "the new count must be larger than the current one "
                              "(`strom topic describe TOPIC`)",
        "INVALID_REPLICATION_FACTOR": "it cannot exceed the number of brokers "
                                      "(`strom cluster info`)",
        "INVALID_CONFIG": "`strom topic describe TOPIC` lists config names, values and sources",
        "INVALID_TOPIC_EXCEPTION": "names use ASCII letters, digits, '.', '_' and '-', up to "
                                   "249 characters",
        "TOPIC_DELETION_DISABLED": "the broker runs with delete.topic.enable=false",
        "GROUP_ID_NOT_FOUND": "`strom group list` shows the groups",
        "NON_EMPTY_GROUP": "stop the group's consumers first",
        "REBALANCE_IN_PROGRESS": "the group has active members; stop its consumers first",
        "UNKNOWN_MEMBER_ID": "the group has active members; stop its consumers first",
        "MSG_SIZE_TOO_LARGE": "raise max.message.bytes on the topic "
                              "(`strom topic alter-config TOPIC --set max.message.bytes=N`)",
        "RECORD_LIST_TOO_LARGE": "raise max.message.bytes on the topic",
        "NOT_ENOUGH_REPLICAS": "fewer in-sync replicas than min.insync.replicas; see "
                               "`strom topic describe TOPIC`",
        "POLICY_VIOLATION": "the broker's policy refused the request",
        "_AUTO_OFFSET_RESET": "the offset is outside the partition's log; see its watermarks "
                              "with `strom topic describe TOPIC`",
        "OFFSET_OUT_OF_RANGE": "the offset is outside the partition's log; see its watermarks "
                               "with `strom topic describe TOPIC`",
        "TOPIC_AUTHORIZATION_FAILED": "the principal lacks an ACL for this topic",
        "GROUP_AUTHORIZATION_FAILED": "the principal lacks an ACL for this group",
        "CLUSTER_AUTHORIZATION_FAILED": "the principal lacks a cluster ACL",
    }


def kafka_error_of(exc: BaseException) -> Any | None:
    """The KafkaError inside a KafkaException (or a KafkaError itself), else None."""
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(exc, KafkaError):
        return exc
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def error_line_parts(error: Any, brokers: str | None = None) -> CliError:
    name = error.name()
    message = error.str()
    hint = _hints(brokers or DEFAULT_BROKERS).get(name)
    return CliError(message, name=name, hint=hint)


def as_cli_error(exc: BaseException, brokers: str | None = None) -> CliError | None:
    if isinstance(exc, CliError):
        return exc
    try:
        error = kafka_error_of(exc)
    except ImportError:
        error = None
    if error is not None:
        return error_line_parts(error, brokers)
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
        return CliError(str(exc), name=type(exc).__name__)
    if type(exc).__name__ == "KafkaException":
        return CliError(str(exc), name="KAFKA_EXCEPTION")
    if isinstance(exc, ValueError | TypeError) and "confluent_kafka" in repr(type(exc)):
        return CliError(str(exc), name="INVALID_ARGUMENT")
    return None


def _reason(message: str) -> str:
    """'host:port/bootstrap: Connect to ipv4#... failed: Connection refused (after 0ms in
    state CONNECT)' → 'Connection refused'."""
    reason = message.rsplit("failed: ", 1)[-1]
    return re.sub(r"\s*\(after \d+ms in state \w+\)$", "", reason)


class Clients:
    """Factory for configured clients plus fail-fast waiting on their results."""

    def __init__(self, brokers: str, props: list[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.brokers = brokers
        self.extra = parse_kv(props)
        self.timeout = timeout
        self.errors: list[Any] = []  # KafkaErrors seen by error_cb, newest last
        self._down: Any | None = None
        self._admin: Any | None = None

    # --- configuration ----------------------------------------------------------------

    def config(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.brokers,
            "client.id": "strom-cli",
            "socket.connection.setup.timeout.ms": 5000,
            "socket.timeout.ms": int(self.timeout * 1000),
            "error_cb": self._on_error,
            "logger": _LIB_LOG,
        }
        conf.update(defaults or {})
        conf.update(self.extra)
        return conf

    def _on_error(self, error: Any) -> None:
        self.errors.append(error)
        del self.errors[:-20]
        if error.name() in _FATAL_LOCAL or error.fatal():
            self._down = error

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:  # its metadata requests must not create topics
            self._admin = AdminClient(self.config({"allow.auto.create.topics": False}))
        return self._admin

    def producer(self, defaults: Mapping[str, Any] | None = None) -> Any:
        from confluent_kafka import Producer

        return Producer(self.config(defaults))

    def consumer(self, defaults: Mapping[str, Any] | None = None) -> Any:
        from confluent_kafka import Consumer

        return Consumer(self.config(defaults))

    # --- failing fast -----------------------------------------------------------------

    def check(self) -> None:
        """Raise if the clients reported that no broker can be reached."""
        if self._down is None:
            return
        down = self._down
        cause = next((e for e in reversed(self.errors) if e.name() != "_ALL_BROKERS_DOWN"),
                     None)
        if down.name() == "_ALL_BROKERS_DOWN":
            detail = f": {_reason(cause.str())}" if cause is not None else ""
            raise CliError(f"cannot reach a broker at {self.brokers}{detail}",
                           name=cause.name() if cause is not None else down.name(),
                           hint=_hints(self.brokers)["_ALL_BROKERS_DOWN"])
        raise error_line_parts(down, self.brokers)

    def wait(self, futures: Iterable[concurrent.futures.Future[Any]],
             timeout: float | None = None) -> None:
        """Wait for admin futures, polling the admin client; raise early if brokers are down."""
        pending = set(futures)
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        admin = self._admin
        while pending:
            _, pending = concurrent.futures.wait(pending, timeout=0.05)
            if admin is not None:
                admin.poll(0)
            if pending:
                self.check()
                if time.monotonic() > deadline:
                    raise CliError(f"no answer from {self.brokers} within {self.timeout:g} s",
                                   name="_TIMED_OUT", hint=_hints(self.brokers)["_TIMED_OUT"])

    def result(self, future: concurrent.futures.Future[Any], timeout: float | None = None) -> Any:
        self.wait([future], timeout)
        return future.result()

    # --- metadata helpers -------------------------------------------------------------

    def topic_metadata(self, topics: Iterable[str], client: Any | None = None) -> dict[str, Any]:
        """Metadata of the named topics; unknown topics raise CliError.

        `client` is the admin client by default; a producer may be passed so that the
        broker auto-creates the topic where it is configured to (as producing would).
        """
        found: dict[str, Any] = {}
        for topic in topics:
            metadata = self.list_topics(topic, client)
            info = metadata.topics.get(topic)
            if info is None or info.error is not None:
                error = info.error if info is not None else None
                name = error.name() if error is not None else "UNKNOWN_TOPIC_OR_PART"
                raise CliError(f"topic {topic!r} does not exist" if name.startswith("UNKNOWN")
                               else f"topic {topic!r}: {error.str() if error else name}",
                               name=name, hint=_hints(self.brokers).get(name))
            found[topic] = info
        return found

    def list_topics(self, topic: str | None = None, client: Any | None = None) -> Any:
        """ClusterMetadata, asked in short slices with `client` (an admin client or a
        producer) polled in between, so that a broker-down report ends the wait."""
        from confluent_kafka import KafkaException

        client = client if client is not None else self.admin()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return client.list_topics(topic, 0.5)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                client.poll(0)
                self.check()
                if error is None or error.name() != "_TIMED_OUT" or time.monotonic() > deadline:
                    raise


# --- per-resource admin results ---------------------------------------------------------


def config_source(entry: Any) -> str:
    """DEFAULT, DYNAMIC_TOPIC, STATIC_BROKER, ... (Kafka's names without `_CONFIG`)."""
    from confluent_kafka.admin import ConfigSource

    source = entry.source
    with contextlib.suppress(ValueError, TypeError):
        source = ConfigSource(int(source))
    name = getattr(source, "name", str(source))
    return name.removesuffix("_CONFIG")


def results(clients: Any, futures: dict[Any, Any]) -> dict[Any, Any]:
    """Wait for per-resource futures; the first failure raises, naming its resource."""
    clients.wait(futures.values())
    found = {}
    for resource, future in futures.items():
        try:
            found[resource] = future.result()
        except Exception as exc:
            error = as_cli_error(exc, clients.brokers)
            if error is None:
                raise
            name = getattr(resource, "name", resource)
            error.message = f"{name}: {error.message.removeprefix('Broker: ')}"
            raise error from None
    return found


def per_resource(clients: Any, futures: dict[Any, Any], fmt: OutputFormat,
                 ok_status: str, label: str = "TOPIC") -> None:
    """Print one row per resource with its outcome (a future returning a string replaces
    `ok_status`); failures also as error lines on stderr, and exit 1 if any failed."""
    import typer

    from strom.cli.common import print_error
    from strom.cli.output import Output

    clients.wait(futures.values())
    rows = []
    failed: list[CliError] = []
    for resource, future in futures.items():
        name = getattr(resource, "name", resource)
        try:
            outcome = future.result()
            rows.append({label.lower(): name, "status": outcome if isinstance(outcome, str)
                         else ok_status, "error": None})
        except Exception as exc:
            error = as_cli_error(exc, clients.brokers)
            if error is None:
                raise
            error.message = f"{name}: {error.message.removeprefix('Broker: ')}"
            failed.append(error)
            rows.append({label.lower(): name, "status": "failed", "error": error.name,
                         "message": error.message})
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
    else:
        out.table([label, "STATUS"], [[r[label.lower()], r["status"] if not r["error"]
                                       else f"{r['error']}"] for r in rows])
    for error in failed:
        print_error(error)
    if failed:
        raise typer.Exit(1)

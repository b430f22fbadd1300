"""The CLI's mapping of strom.client failures to one line: the same lines the CLI printed
before strom.client existed (recorded from that code), with hints naming strom commands."""

from __future__ import annotations

import concurrent.futures

import pytest

from strom.cli.client import as_cli_error, cli_error, clients_for, delivery_error
from strom.cli.common import CliError
from strom.client import KafkaClientError
from strom.client.admin import results
from strom.client.health import BrokerHealth

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaError, KafkaException  # noqa: E402

DOWN = ("Hint: is a broker running at 127.0.0.1:1? Start one with `strom server`, or point "
        "-b/--brokers (or STROM_BROKERS) at one")
REFUSED = ("127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
           "(after 0ms in state CONNECT)")


@pytest.mark.parametrize(("name", "line"), [
    ("TOPIC_ALREADY_EXISTS", "TOPIC_ALREADY_EXISTS: orders: Topic already exists. Hint: pass "
                             "--if-not-exists to accept an existing topic"),
    ("INVALID_CONFIG", "INVALID_CONFIG: orders: Configuration is invalid. Hint: `strom topic "
                       "describe TOPIC` lists config names, values and sources"),
    ("POLICY_VIOLATION", "POLICY_VIOLATION: orders: Policy violation. Hint: the broker's policy "
                         "refused the request"),
    ("_MSG_TIMED_OUT", f"_MSG_TIMED_OUT: orders: Local: Message timed out. {DOWN}"),
    ("INVALID_REPLICATION_FACTOR", "INVALID_REPLICATION_FACTOR: orders: Invalid replication "
                                   "factor. Hint: it cannot exceed the number of brokers "
                                   "(`strom cluster info`)"),
    ("UNKNOWN_TOPIC_OR_PART", "UNKNOWN_TOPIC_OR_PART: orders: Unknown topic or partition. Hint: "
                              "`strom topic list` shows the topics that exist"),
])
def test_per_resource_failures_read_as_before(name: str, line: str) -> None:
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    future.set_exception(KafkaException(KafkaError(getattr(KafkaError, name))))
    with pytest.raises(KafkaClientError) as caught:
        results(clients_for("127.0.0.1:1", None), {"orders": future})
    assert cli_error(caught.value, "127.0.0.1:1").line() == f"strom: error: {line}"


def test_client_exceptions_read_as_before() -> None:
    invalid = KafkaException(KafkaError(KafkaError._INVALID_ARG,
                                        'No such configuration property: "no.such"'))
    assert _line(invalid) == (
        'strom: error: _INVALID_ARG: No such configuration property: "no.such". Hint: -X takes '
        "librdkafka property names; see "
        "https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md")
    assert _line(KafkaException("plain")) == "strom: error: KAFKA_EXCEPTION: plain"
    assert delivery_error(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), "h:1").line() == (
        "strom: error: MSG_SIZE_TOO_LARGE: Broker: Message size too large. Hint: raise "
        "max.message.bytes on the topic (`strom topic alter-config TOPIC --set "
        "max.message.bytes=N`)")
    assert _line(FileNotFoundError(2, "No such file", "in.txt")) == (
        "strom: error: FileNotFoundError: [Errno 2] No such file: 'in.txt'")
    usage = CliError("bad", name="INVALID_ARGUMENT")
    assert as_cli_error(usage) is usage
    assert as_cli_error(RuntimeError("a bug shows its traceback")) is None


def _line(exc: BaseException) -> str:
    error = as_cli_error(exc, "h:1")
    assert error is not None
    return error.line()


def test_broker_down_reads_as_before() -> None:
    health = BrokerHealth("127.0.0.1:1")
    health.on_error(KafkaError(KafkaError._TRANSPORT, REFUSED))
    health.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert _raised(health) == ("strom: error: _TRANSPORT: cannot reach a broker at 127.0.0.1:1: "
                               f"Connection refused. {DOWN}")
    alone = BrokerHealth("127.0.0.1:1")
    alone.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert _raised(alone) == f"strom: error: _ALL_BROKERS_DOWN: cannot reach a broker at 127.0.0.1:1. {DOWN}"
    resolve = BrokerHealth("127.0.0.1:1")
    resolve.on_error(KafkaError(KafkaError._RESOLVE, "nohost:9092/bootstrap: Failed to resolve "
                                                     "'nohost:9092': Name or service not known"))
    assert _raised(resolve) == ("strom: error: _RESOLVE: nohost:9092/bootstrap: Failed to resolve "
                                f"'nohost:9092': Name or service not known. {DOWN}")


def _raised(health: BrokerHealth) -> str:
    with pytest.raises(KafkaClientError) as caught:
        health.check()
    return cli_error(caught.value, "127.0.0.1:1").line()


def test_a_timeout_reads_as_before() -> None:
    clients = clients_for("127.0.0.1:1", None)
    never: concurrent.futures.Future[None] = concurrent.futures.Future()
    with pytest.raises(KafkaClientError) as caught:
        clients.wait([never], timeout=0.2)
    assert cli_error(caught.value, "127.0.0.1:1").line() == (
        f"strom: error: _TIMED_OUT: no answer from 127.0.0.1:1 within 0.2 s. {DOWN}")


def test_clients_for_parses_x_properties_and_names_the_cli() -> None:
    clients = clients_for("h:1", ["linger.ms=5", "sasl.password=a=b"])
    conf = clients.config()
    assert conf["linger.ms"] == "5" and conf["sasl.password"] == "a=b"
    assert conf["client.id"] == "strom-cli"
    with pytest.raises(CliError, match="key=value"):
        clients_for("h:1", ["novalue"])

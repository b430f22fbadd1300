"""strom.client.errors and health: librdkafka's errors as KafkaClientError with name,
retriable flag and hint; the error callback's reports ending waits."""

from __future__ import annotations

import concurrent.futures

import pytest

from strom.client import BrokerUnreachableError, ClientTimeoutError, KafkaClientError, KafkaClients
from strom.client.errors import (
    HINTS,
    RETRIABLE,
    as_client_error,
    connection_failure,
    hint_for,
    kafka_error_of,
)
from strom.client.health import BrokerHealth

ck = pytest.importorskip("confluent_kafka")
KafkaError = ck.KafkaError
KafkaException = ck.KafkaException

REFUSED = ("127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
           "(after 0ms in state CONNECT)")


def test_a_kafka_error_keeps_its_name_and_message_and_gets_a_hint() -> None:
    error = KafkaClientError.from_kafka_error(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS))
    assert (error.name, error.message) == ("TOPIC_ALREADY_EXISTS", "Broker: Topic already exists")
    assert error.hint == "a topic of this name exists already"
    assert not error.retriable and not error.fatal and error.resource is None
    assert str(error) == "TOPIC_ALREADY_EXISTS: Broker: Topic already exists"


def test_a_resource_is_named_first_without_the_broker_prefix() -> None:
    error = KafkaClientError.from_kafka_error(KafkaError(KafkaError.INVALID_CONFIG), "orders")
    assert error.message == "orders: Configuration is invalid" and error.resource == "orders"


@pytest.mark.parametrize(("code", "retriable"), [
    (KafkaError.NOT_LEADER_FOR_PARTITION, True),
    (KafkaError.LEADER_NOT_AVAILABLE, True),
    (KafkaError.NOT_ENOUGH_REPLICAS, True),
    (KafkaError.COORDINATOR_LOAD_IN_PROGRESS, True),
    (KafkaError._TRANSPORT, True),
    (KafkaError._MSG_TIMED_OUT, True),
    (KafkaError.TOPIC_ALREADY_EXISTS, False),
    (KafkaError.INVALID_CONFIG, False),
    (KafkaError.MSG_SIZE_TOO_LARGE, False),
    (KafkaError.TOPIC_AUTHORIZATION_FAILED, False),
])
def test_retriable_follows_kafkas_retriable_exceptions(code: int, retriable: bool) -> None:
    assert KafkaClientError.from_kafka_error(KafkaError(code)).retriable is retriable


def test_a_fatal_error_is_never_retriable() -> None:
    fatal = KafkaError(KafkaError._TRANSPORT, "gone", fatal=True)
    error = KafkaClientError.from_kafka_error(fatal)
    assert error.fatal and not error.retriable


def test_every_named_error_is_one_librdkafka_knows() -> None:
    """A misspelt name in the tables would silently never match."""
    known = {KafkaError(code).name() for code in range(-200, 130)}
    assert (RETRIABLE | set(HINTS)) - known == set()


def test_hints_fill_in_the_bootstrap_servers() -> None:
    assert hint_for("_TRANSPORT", "h:9") == "is a broker running at h:9? Check bootstrap.servers"
    assert "the bootstrap servers" in (hint_for("_ALL_BROKERS_DOWN") or "")
    assert hint_for("NO_SUCH_ERROR") is None


def test_as_client_error_unwraps_what_confluent_kafka_raises() -> None:
    inner = KafkaError(KafkaError._INVALID_ARG, 'No such configuration property: "x"')
    assert kafka_error_of(KafkaException(inner)) is inner
    assert kafka_error_of(inner) is inner
    converted = as_client_error(KafkaException(inner))
    assert converted is not None and converted.name == "_INVALID_ARG"
    bare = as_client_error(KafkaException("plain"))
    assert bare is not None and (bare.name, bare.message) == ("KAFKA_EXCEPTION", "plain")
    same = KafkaClientError("m", name="N")
    assert as_client_error(same) is same
    assert as_client_error(ValueError("ours")) is None
    assert as_client_error(RuntimeError("bug")) is None


def test_connection_failure_keeps_the_reason_only() -> None:
    assert connection_failure(REFUSED) == "Connection refused"
    assert connection_failure("something else") == "something else"


def test_all_brokers_down_raises_once_with_the_cause() -> None:
    health = BrokerHealth("127.0.0.1:1")
    health.check()  # nothing reported
    health.on_error(KafkaError(KafkaError._TRANSPORT, REFUSED))
    health.check()  # one failed connection is no reason to stop waiting
    health.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    with pytest.raises(BrokerUnreachableError) as caught:
        health.check()
    error = caught.value
    assert error.name == "_TRANSPORT" and error.retriable and error.bootstrap_servers == "127.0.0.1:1"
    assert error.message == "cannot reach a broker at 127.0.0.1:1: Connection refused"
    assert error.hint == "is a broker running at 127.0.0.1:1? Check bootstrap.servers"
    health.check()  # raised once: a retry after the brokers came back is not refused


def test_all_brokers_down_without_a_cause() -> None:
    health = BrokerHealth("b:1")
    health.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    with pytest.raises(BrokerUnreachableError, match=r"^_ALL_BROKERS_DOWN: cannot reach a broker "
                                                     r"at b:1$"):
        health.check()


def test_other_local_failures_raise_as_themselves_and_fatal_ones_stay() -> None:
    health = BrokerHealth("nohost:9092")
    health.on_error(KafkaError(KafkaError._RESOLVE, "Failed to resolve 'nohost:9092'"))
    with pytest.raises(KafkaClientError) as caught:
        health.check()
    assert caught.value.name == "_RESOLVE" and not isinstance(caught.value, BrokerUnreachableError)
    health.on_error(KafkaError(KafkaError._FATAL, "producer fenced", fatal=True))
    health.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "later"))
    for _ in range(2):
        with pytest.raises(KafkaClientError) as caught:
            health.check()
        assert caught.value.fatal and caught.value.name == "_FATAL"
    assert len(health.recent) == 3


def test_a_wait_ends_at_the_report_or_at_its_timeout() -> None:
    clients = KafkaClients("127.0.0.1:1", timeout=0.2)
    never: concurrent.futures.Future[int] = concurrent.futures.Future()
    with pytest.raises(ClientTimeoutError, match=r"no answer from 127.0.0.1:1 within 0.2 s"):
        clients.wait([never])
    clients.health.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "down"))
    with pytest.raises(BrokerUnreachableError):
        clients.wait([never], timeout=30)


def test_a_result_comes_back_or_fails_as_a_client_error() -> None:
    clients = KafkaClients("127.0.0.1:1")
    done: concurrent.futures.Future[int] = concurrent.futures.Future()
    done.set_result(7)
    assert clients.result(done) == 7
    failed: concurrent.futures.Future[int] = concurrent.futures.Future()
    failed.set_exception(KafkaException(KafkaError(KafkaError.GROUP_ID_NOT_FOUND)))
    with pytest.raises(KafkaClientError) as caught:
        clients.result(failed)
    assert caught.value.name == "GROUP_ID_NOT_FOUND"
    bug: concurrent.futures.Future[int] = concurrent.futures.Future()
    bug.set_exception(RuntimeError("not ours"))
    with pytest.raises(RuntimeError):
        clients.result(bug)


class _SlowProducer:
    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    def flush(self, timeout: float = -1) -> int:
        self.rounds -= 1
        return max(self.rounds, 0)


def test_flush_drains_and_fails_fast() -> None:
    clients = KafkaClients("b:1")
    producer = _SlowProducer(3)
    clients.flush(producer)
    assert producer.rounds == 0
    clients.health.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "down"))
    with pytest.raises(BrokerUnreachableError):
        clients.flush(_SlowProducer(100))
    with pytest.raises(ClientTimeoutError):
        clients.flush(_SlowProducer(10**9), timeout=0.05)

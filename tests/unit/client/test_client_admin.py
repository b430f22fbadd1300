"""strom.client.admin: per-resource futures waited for together, failures named by
resource (no broker: the futures are completed by the test)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest

from strom.client import KafkaClientError, KafkaClients
from strom.client.admin import config_source, outcomes, resource_name, results

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaError, KafkaException, TopicPartition  # noqa: E402
from confluent_kafka.admin import ConfigResource  # noqa: E402


def _done(value: Any = None, error: int | None = None) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(KafkaException(KafkaError(error)))
    return future


def test_results_give_every_value_or_raise_the_first_failure_by_name() -> None:
    clients = KafkaClients("b:1")
    assert results(clients, {"a": _done(1), "b": _done(2)}) == {"a": 1, "b": 2}
    with pytest.raises(KafkaClientError) as caught:
        results(clients, {"a": _done(1), "b": _done(error=KafkaError.TOPIC_ALREADY_EXISTS),
                          "c": _done(error=KafkaError.INVALID_CONFIG)})
    assert caught.value.message == "b: Topic already exists"
    assert caught.value.name == "TOPIC_ALREADY_EXISTS" and caught.value.resource == "b"


def test_outcomes_report_each_resource() -> None:
    clients = KafkaClients("b:1")
    found = outcomes(clients, {"ok": _done("fine"), "bad": _done(error=KafkaError.NON_EMPTY_GROUP)})
    assert found["ok"] == "fine"
    bad = found["bad"]
    assert isinstance(bad, KafkaClientError) and bad.name == "NON_EMPTY_GROUP"
    assert bad.hint == "stop the group's consumers first"


def test_resources_are_named_as_kafka_names_them() -> None:
    assert resource_name("orders") == "orders"
    assert resource_name(ConfigResource("TOPIC", "orders")) == "orders"
    assert resource_name(TopicPartition("orders", 3)) == "orders-3"


def test_config_sources_lose_their_suffix() -> None:
    class Entry:
        def __init__(self, source: Any) -> None:
            self.source = source

    assert config_source(Entry(5)) == "DEFAULT"
    assert config_source(Entry(1)) == "DYNAMIC_TOPIC"
    assert config_source(Entry("SOMETHING_NEW")) == "SOMETHING_NEW"

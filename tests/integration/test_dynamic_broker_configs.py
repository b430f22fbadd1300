"""Dynamic broker configs on a live broker: set per broker ("0") and cluster-wide (""),
persisted across restarts, applied without one (retention of running logs, the produce
size limit, connection limits), reported by DescribeConfigs with Kafka's sources and
synonyms, and refused with Kafka 4.4's answers where Kafka refuses them.

librdkafka cannot name the cluster-wide default resource (an empty broker name), so the
raw client sends those requests; per-broker ones go through confluent-kafka's admin.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess, wait_until
from support.clients import Msg, create_topic, produce, unique_topic, watermarks
from support.raw_client import RawClient

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

BROKER, TOPIC = 4, 2
SET, DELETE = 0, 1
DYN_BROKER, DYN_DEFAULT, STATIC, DEFAULT = 2, 3, 4, 5



def incremental(raw: RawClient, kind: int, name: str, *ops: tuple[str, int, str | None],
                validate_only: bool = False) -> tuple[int, str | None]:
    body = raw.request(44, 1, validate_only=validate_only, resources=[
        {"resource_type": kind, "resource_name": name,
         "configs": [{"name": k, "config_operation": op, "value": v} for k, op, v in ops]}]).body
    answer = body.responses[0]
    return int(answer.error_code), answer.error_message


def legacy(raw: RawClient, name: str, configs: dict[str, str]) -> tuple[int, str | None]:
    body = raw.request(33, 2, validate_only=False, resources=[
        {"resource_type": BROKER, "resource_name": name,
         "configs": [{"name": k, "value": v} for k, v in configs.items()]}]).body
    return int(body.responses[0].error_code), body.responses[0].error_message


def describe(raw: RawClient, kind: int, name: str, keys: list[str] | None = None
             ) -> dict[str, tuple[str | None, int, list[tuple[str, str | None, int]]]]:
    body = raw.request(32, 4, include_synonyms=True, include_documentation=False, resources=[
        {"resource_type": kind, "resource_name": name, "configuration_keys": keys}]).body
    result = body.results[0]
    assert result.error_code == 0, result.error_message
    return {e.name: (e.value, int(e.config_source),
                     [(s.name, s.value, int(s.source)) for s in e.synonyms])
            for e in result.configs}


def admin_set(admin: AdminClient, broker: str, key: str, value: str | None,
              op: AlterConfigOpType = AlterConfigOpType.SET) -> None:
    resource = ConfigResource(ResourceType.BROKER, broker, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op)])
    admin.incremental_alter_configs([resource], request_timeout=20)[resource].result()


def test_set_describe_and_survive_a_restart(broker_factory: Any) -> None:
    broker: BrokerProcess = broker_factory({"log.retention.hours": "100"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with RawClient(broker.bootstrap) as raw:
        assert incremental(raw, BROKER, "", ("log.retention.ms", SET, "3600000"),
                           ("log.cleaner.threads", SET, "2")) == (0, None)
    admin_set(admin, "0", "log.retention.ms", "7200000")
    admin_set(admin, "0", "message.max.bytes", "2000000")
    described = admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")],
                                       request_timeout=20)
    entries = next(iter(described.values())).result()
    assert entries["message.max.bytes"].value == "2000000"
    assert int(entries["message.max.bytes"].source) == DYN_BROKER
    for attempt in ("before", "after"):
        with RawClient(broker.bootstrap) as raw:
            mine = describe(raw, BROKER, "0", ["log.retention.ms", "log.retention.hours",
                                               "log.cleaner.threads", "message.max.bytes"])
            assert mine["log.retention.ms"] == ("7200000", DYN_BROKER, [
                ("log.retention.ms", "7200000", DYN_BROKER),
                ("log.retention.ms", "3600000", DYN_DEFAULT),
                ("log.retention.hours", "100", STATIC),
                ("log.retention.hours", "168", DEFAULT)]), attempt
            assert mine["log.cleaner.threads"][:2] == ("2", DYN_DEFAULT), attempt
            defaults = describe(raw, BROKER, "")
            assert defaults == {
                "log.retention.ms": ("3600000", DYN_DEFAULT,
                                     [("log.retention.ms", "3600000", DYN_DEFAULT)]),
                "log.cleaner.threads": ("2", DYN_DEFAULT,
                                        [("log.cleaner.threads", "2", DYN_DEFAULT)])}, attempt
        if attempt == "before":
            broker.restart()
    # legacy AlterConfigs replaces this broker's whole set; DELETE drops one default
    with RawClient(broker.bootstrap) as raw:
        assert legacy(raw, "0", {"message.max.bytes": "3000000"}) == (0, None)
        assert incremental(raw, BROKER, "", ("log.cleaner.threads", DELETE, None)) == (0, None)
        mine = describe(raw, BROKER, "0", ["log.retention.ms", "message.max.bytes",
                                           "log.cleaner.threads"])
        assert mine["message.max.bytes"][:2] == ("3000000", DYN_BROKER)
        assert mine["log.retention.ms"][:2] == ("3600000", DYN_DEFAULT)
        assert mine["log.cleaner.threads"][:2] == ("1", DEFAULT)


@pytest.mark.parametrize(("name", "ops", "expected"), [
    ("", [("log.dirs", SET, "/x"), ("log.retention.hours", SET, "1"),
          ("num.partitions", SET, "3")],
     (ErrorCode.invalid_request,
      "Cannot update these configs dynamically: [log.retention.hours, num.partitions, log.dirs]")),
    ("", [("log.retention.ms", SET, "abc")],
     (ErrorCode.invalid_request,
      "Invalid value abc for configuration log.retention.ms: Not a number of type LONG")),
    ("7", [("log.retention.ms", SET, "5")],
     (ErrorCode.invalid_request, "Unexpected broker id, expected 0, but received 7")),
    ("abc", [("log.retention.ms", SET, "5")],
     (ErrorCode.invalid_request, "Node id must be an integer, but it is: abc")),
    ("0", [("log.retention.ms", 2, "5")],
     (ErrorCode.invalid_config, "Config value append is not allowed for config key: "
                                "log.retention.ms")),
    ("0", [("log.retention.ms", SET, None)],
     (ErrorCode.invalid_request, "Null value not supported for : log.retention.ms")),
    ("0", [("log.retention.ms", SET, "1"), ("log.retention.ms", SET, "2")],
     (ErrorCode.invalid_request, "Error due to duplicate config keys")),
])
def test_refusals_are_kafkas(broker: BrokerProcess, name: str,
                             ops: list[tuple[str, int, str | None]],
                             expected: tuple[int, str]) -> None:
    with RawClient(broker.bootstrap) as raw:
        for validate_only in (True, False):
            assert incremental(raw, BROKER, name, *ops, validate_only=validate_only) == expected
        assert describe(raw, BROKER, "") == {}


def test_validate_only_changes_nothing(broker: BrokerProcess) -> None:
    with RawClient(broker.bootstrap) as raw:
        assert incremental(raw, BROKER, "0", ("message.max.bytes", SET, "5"),
                           validate_only=True) == (0, None)
        assert describe(raw, BROKER, "0", ["message.max.bytes"])["message.max.bytes"][:2] == (
            "1048588", DEFAULT)


def test_a_cluster_wide_retention_change_reaches_running_logs(broker_factory: Any) -> None:
    broker = broker_factory({"log.segment.bytes": "20000",
                             "log.retention.check.interval.ms": "300"})
    plain = create_topic(broker.bootstrap, unique_topic("dyn-retention"))
    pinned = create_topic(broker.bootstrap, unique_topic("dyn-pinned"), 1,
                          {"retention.ms": "86400000"})
    old = int(time.time() * 1000) - 3_600_000
    for topic in (plain, pinned):
        produce("confluent", broker.bootstrap, topic,
                [Msg(0, None, b"%06d" % i + b"." * 1000, timestamp=old + i) for i in range(120)],
                "none", librdkafka={"batch.num.messages": 5})
    time.sleep(1.0)  # several retention passes: nothing is an hour past 7 days
    assert watermarks(broker.bootstrap, plain)[0] == 0
    with RawClient(broker.bootstrap) as raw:
        assert incremental(raw, BROKER, "", ("log.retention.ms", SET, "60000")) == (0, None)
        topic_view = describe(raw, TOPIC, plain, ["retention.ms"])["retention.ms"]
        assert topic_view == ("60000", DYN_DEFAULT, [
            ("log.retention.ms", "60000", DYN_DEFAULT), ("log.retention.hours", "168", DEFAULT)])
        assert describe(raw, TOPIC, pinned, ["retention.ms"])["retention.ms"][:2] == (
            "86400000", 1)
    wait_until(lambda: watermarks(broker.bootstrap, plain)[0] > 0,
               30, "the plain topic's expired segments to go")
    assert watermarks(broker.bootstrap, pinned)[0] == 0, "a topic override still wins"


def test_message_max_bytes_applies_to_the_next_produce(broker: BrokerProcess) -> None:
    topic = create_topic(broker.bootstrap, unique_topic("dyn-size"))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    value = b"x" * 20000
    produce("confluent", broker.bootstrap, topic, [Msg(0, None, value)])
    admin_set(admin, "0", "message.max.bytes", "10000")
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 100000,
                             "compression.type": "none", "retries": 0})
        errors: list[KafkaError] = []
        producer.produce(topic, value, partition=0, on_delivery=lambda e, _: errors.append(e))
        assert producer.flush(20) == 0
        assert errors and errors[0] is not None
        assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    finally:
        admin_set(admin, "0", "message.max.bytes", None, AlterConfigOpType.DELETE)
    produce("confluent", broker.bootstrap, topic, [Msg(0, None, value)])
    assert watermarks(broker.bootstrap, topic)[1] == 2


def test_max_connections_applies_to_new_connections(broker_factory: Any) -> None:
    broker = broker_factory()
    with RawClient(broker.bootstrap) as raw:
        assert incremental(raw, BROKER, "0", ("max.connections", SET, "3")) == (0, None)
        extra = [RawClient(broker.bootstrap) for _ in range(3)]
        try:
            closed = [c.is_closed_by_peer(timeout=2.0) for c in extra]
            assert closed.count(True) >= 1, "a connection over max.connections must be refused"
        finally:
            for client in extra:
                client.close()
        assert incremental(raw, BROKER, "0", ("max.connections", DELETE, None)) == (0, None)
    with RawClient(broker.bootstrap) as again:
        assert not again.is_closed_by_peer(timeout=0.5)


def test_topic_configs_report_a_dynamic_broker_value(broker_factory: Any) -> None:
    broker = broker_factory()
    topic = create_topic(broker.bootstrap, unique_topic("dyn-describe"))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin_set(admin, "0", "log.cleanup.policy", "compact", AlterConfigOpType.APPEND)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=20)[resource].result()
    assert entries["cleanup.policy"].value == "delete,compact"
    assert int(entries["cleanup.policy"].source) == DYN_BROKER
    with pytest.raises(KafkaException) as refused:
        admin_set(admin, "0", "log.dirs", "/elsewhere")
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST

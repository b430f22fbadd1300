"""Admin calls Kafka 4.4's AdminClient and tools make for topics and configs, on the wire
(each answer as a Kafka 4.4.0 broker gave it to the same request): Metadata by topic id
as the Java client sends it, ListConfigResources, DescribeClientQuotas and the
BROKER_LOGGER config resource, DescribeLogDirs."""

from __future__ import annotations

from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.raw_client import RawClient, create_topic, produce, record_batch, topic_id

pytestmark = pytest.mark.timeout(120)
TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32


def test_metadata_by_topic_id_with_an_empty_name(raw: RawClient) -> None:
    """The Java client asks by id with name "" (not null); Kafka answers by the id."""
    assert create_topic(raw, "by-id-empty-name", 2).error_code == 0
    wanted = topic_id(raw, "by-id-empty-name")
    body = raw.request(3, 13, topics=[{"name": "", "topic_id": wanted}],
                       allow_auto_topic_creation=False,
                       include_topic_authorized_operations=False).body
    assert [(t.name, t.topic_id, t.error_code, len(t.partitions)) for t in body.topics] == [
        ("by-id-empty-name", wanted, ErrorCode.none, 2)]


def _resources(raw: RawClient, types: list[int], version: int = 1) -> tuple[int, list[Any]]:
    fields: dict[str, Any] = {"resource_types": types} if version else {}
    body = raw.request(74, version, **fields).body
    return int(body.error_code), sorted((int(r.resource_type), r.resource_name)
                                        for r in body.config_resources)


def test_list_config_resources(raw: RawClient) -> None:
    assert create_topic(raw, "listed-resource").error_code == 0
    code, everything = _resources(raw, [])
    assert code == 0
    assert (TOPIC, "listed-resource") in everything
    assert (BROKER, "0") in everything and (BROKER_LOGGER, "0") in everything
    assert {kind for kind, _ in everything} == {TOPIC, BROKER, BROKER_LOGGER}
    assert _resources(raw, [BROKER]) == (0, [(BROKER, "0")])
    assert _resources(raw, [GROUP, CLIENT_METRICS]) == (0, [])
    assert _resources(raw, [99]) == (int(ErrorCode.unsupported_version), [])
    assert _resources(raw, [1]) == (int(ErrorCode.unsupported_version), [])
    assert _resources(raw, [], version=0) == (0, [])  # v0: client-metrics resources only


@pytest.mark.parametrize(("components", "expected"), [
    ([], (0, "", ())),
    ([{"entity_type": "user", "match_type": 0, "match": "bob"}], (0, "", ())),
    ([{"entity_type": "foo", "match_type": 0, "match": "bob"}],
     (35, "Unsupported entity type foo", None)),
    ([{"entity_type": "user", "match_type": 0, "match": None}],
     (42, "Request specified MATCH_TYPE_EXACT, but set match string to null.", None)),
    ([{"entity_type": "user", "match_type": 1, "match": "x"}],
     (42, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.", None)),
    ([{"entity_type": "user", "match_type": 2, "match": "x"}],
     (42, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.", None)),
    ([{"entity_type": "user", "match_type": 2, "match": None}] * 2,
     (42, "Entity type user cannot appear more than once in the filter.", None)),
    ([{"entity_type": "user", "match_type": 5, "match": None}], (42, "Unknown match type 5", None)),
    ([{"entity_type": "client-id", "match_type": 1, "match": None},
      {"entity_type": "ip", "match_type": 0, "match": "1.2.3.4"}],
     (42, "Invalid entity filter component combination. IP filter component should not be "
          "used with user or clientId filter component.", None)),
])
def test_describe_client_quotas(raw: RawClient, components: list[dict[str, Any]],
                                expected: tuple[int, str, Any]) -> None:
    body = raw.request(48, 1, components=components, strict=False).body
    assert (int(body.error_code), body.error_message, body.entries) == expected


def _loggers(raw: RawClient, name: str = "0", keys: list[str] | None = None
             ) -> tuple[int, str | None, dict[str, tuple[str | None, int, bool]]]:
    result = raw.request(32, 4, include_synonyms=True, include_documentation=False, resources=[
        {"resource_type": BROKER_LOGGER, "resource_name": name,
         "configuration_keys": keys}]).body.results[0]
    return (int(result.error_code), result.error_message,
            {e.name: (e.value, int(e.config_source), e.read_only) for e in result.configs})


def _set_loggers(raw: RawClient, *ops: tuple[str, int, str | None], name: str = "0",
                 api: int = 44) -> tuple[int, str | None]:
    if api == 44:
        body = raw.request(44, 1, validate_only=False, resources=[
            {"resource_type": BROKER_LOGGER, "resource_name": name,
             "configs": [{"name": k, "config_operation": op, "value": v} for k, op, v in ops]}])
    else:
        body = raw.request(33, 2, validate_only=False, resources=[
            {"resource_type": BROKER_LOGGER, "resource_name": name,
             "configs": [{"name": k, "value": v} for k, _, v in ops]}])
    answer = body.body.responses[0]
    return int(answer.error_code), answer.error_message


def test_broker_loggers_are_described_and_changed_at_runtime(raw: RawClient) -> None:
    code, _, loggers = _loggers(raw)
    assert code == 0 and loggers["root"][1:] == (6, False)  # DYNAMIC_BROKER_LOGGER_CONFIG
    name = "strom.broker.server"
    assert loggers[name][0] == "INFO"
    assert _set_loggers(raw, (name, 0, "DEBUG")) == (0, None)
    assert _loggers(raw, keys=[name])[2] == {name: ("DEBUG", 6, False)}
    assert _set_loggers(raw, (name, 1, None)) == (0, None)
    assert _loggers(raw, keys=[name])[2][name][0] == loggers["root"][0]

    levels = "DEBUG, ERROR, FATAL, INFO, TRACE, WARN"
    assert _set_loggers(raw, (name, 0, "debug")) == (
        40, f"Cannot set the log level of {name} to debug as it is not a supported log "
            f"level. Valid log levels are {levels}")
    assert _set_loggers(raw, ("no.such.logger", 0, "WARN")) == (
        40, "Logger no.such.logger does not exist!")
    assert _set_loggers(raw, ("root", 1, None)) == (
        42, "Removing the log level of the root logger is not allowed")
    assert _set_loggers(raw, (name, 2, "x")) == (
        42, "APPEND operation is not allowed for the BROKER_LOGGER resource")
    assert _set_loggers(raw, (name, 0, "WARN"), name="7") == (
        42, "Unexpected node id. Expected 0, but received 7")
    assert _set_loggers(raw, (name, 0, "WARN"), api=33) == (42, "Unknown resource type 8")
    assert _loggers(raw, name="7")[:2] == (42, "Unexpected broker id, expected 0 but received 7")
    assert _loggers(raw, name="x")[:2] == (42, "Broker id must be an integer, but it is: x")
    assert _loggers(raw, name="")[:2] == (42, "Broker id must not be empty")


@pytest.mark.parametrize("version", [1, 4, 5])
def test_describe_log_dirs(broker: BrokerProcess, raw: RawClient, version: int) -> None:
    name = f"log-dirs-v{version}"
    assert create_topic(raw, name, 2).error_code == 0
    assert produce(raw, name, record_batch([b"x" * 100])).error_code == 0
    body = raw.request(35, version, topics=None).body
    [result] = body.results
    assert result.error_code == 0 and result.log_dir == str(broker.data_dir.resolve())
    sizes = {t.name: {p.partition_index: (p.partition_size, p.offset_lag, p.is_future_key)
                      for p in t.partitions} for t in result.topics}
    assert sizes[name][0][0] > 100 and sizes[name][1][0] == 0
    assert sizes[name][0][1:] == (0, False)
    if version >= 4:
        assert result.total_bytes > 0 and 0 <= result.usable_bytes <= result.total_bytes
    asked = raw.request(35, version, topics=[{"topic": name, "partitions": [1]},
                                             {"topic": "no-such-topic", "partitions": [0]}]).body
    assert [(t.name, [p.partition_index for p in t.partitions])
            for t in asked.results[0].topics] == [(name, [1])]

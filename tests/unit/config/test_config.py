"""Properties parsing, broker defaults and topic config resolution."""

from __future__ import annotations

import pytest

from strom.config.broker import BrokerConfig
from strom.config.defs import ConfigSource, InvalidConfig
from strom.config.properties import parse_properties
from strom.config.topic import resolve_topic_config, validate_topic_overrides


def test_properties_syntax():
    text = "# comment\n! also\na=1\nb : 2\nc 3\nlong=x\\\n   y\nesc=tab\\there\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "long": "xy",
                                      "esc": "tab\there"}


def test_broker_defaults_and_overrides():
    config = BrokerConfig({"num.partitions": "3", "log.dirs": "/a,/b"})
    assert config.get_int("num.partitions") == 3
    assert config.get_int("default.replication.factor") == 1
    assert [str(p) for p in config.log_dirs] == ["/a", "/b"]
    assert config.listeners[0].port == 9092


def test_invalid_broker_value_is_refused():
    with pytest.raises(InvalidConfig):
        BrokerConfig({"num.partitions": "many"})


def test_topic_value_falls_back_through_broker_synonyms():
    resolved = resolve_topic_config("retention.ms", {}, {"log.retention.hours": "2"})
    assert resolved.value == str(2 * 3600 * 1000)
    assert resolved.source == ConfigSource.STATIC_BROKER_CONFIG  # what CreateTopics reports
    # DescribeConfigs, as Kafka 4.4: the chain starts at log.retention.ms, which is unset
    assert resolved.described_source == ConfigSource.DEFAULT_CONFIG
    assert resolved.synonyms == ()
    by_ms = resolve_topic_config("retention.ms", {}, {"log.retention.ms": "5",
                                                      "log.retention.hours": "2"})
    assert by_ms.value == "5" and by_ms.described_source == ConfigSource.STATIC_BROKER_CONFIG
    assert by_ms.synonyms == (
        ("log.retention.ms", "5", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", "2", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG))


def test_topic_override_wins_and_default_is_reported():
    resolved = resolve_topic_config("cleanup.policy", {"cleanup.policy": "compact"}, {})
    assert (resolved.value, resolved.source) == ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    default = resolve_topic_config("segment.bytes", {}, {})
    assert (default.value, default.source) == (str(1 << 30), ConfigSource.DEFAULT_CONFIG)


def _refusal(overrides: dict[str, str]) -> str:
    with pytest.raises(InvalidConfig) as refused:
        validate_topic_overrides(overrides)
    return str(refused.value)


def test_validation_rejects_bad_values_and_unknown_names():
    assert _refusal({"retention.ms": "soon"}) == (
        "Invalid value soon for configuration retention.ms: Not a number of type LONG")
    assert _refusal({"cleanup.policy": "compact,shred"}) == (
        "Invalid value shred for configuration cleanup.policy: String must be one of: "
        "compact, delete")
    assert _refusal({"confluent.x": "true"}) == "Unknown topic config name: confluent.x"
    # an unknown name the topic already had (kept by older releases) may stay as it is
    assert validate_topic_overrides({"confluent.x": "1", "retention.ms": "5"},
                                    kept={"confluent.x": "1"}) == {"confluent.x": "1",
                                                                   "retention.ms": "5"}
    with pytest.raises(InvalidConfig):
        validate_topic_overrides({"confluent.x": "2"}, kept={"confluent.x": "1"})

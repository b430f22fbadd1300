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
    assert resolved.source == ConfigSource.STATIC_BROKER_CONFIG
    assert [s[0] for s in resolved.synonyms] == ["log.retention.hours", "log.retention.ms"]


def test_topic_override_wins_and_default_is_reported():
    resolved = resolve_topic_config("cleanup.policy", {"cleanup.policy": "compact"}, {})
    assert (resolved.value, resolved.source) == ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    default = resolve_topic_config("segment.bytes", {}, {})
    assert (default.value, default.source) == (str(1 << 30), ConfigSource.DEFAULT_CONFIG)


def test_validation_rejects_bad_values_but_keeps_unknown_names():
    with pytest.raises(InvalidConfig):
        validate_topic_overrides({"retention.ms": "soon"})
    with pytest.raises(InvalidConfig):
        validate_topic_overrides({"cleanup.policy": "shred"})
    assert validate_topic_overrides({"confluent.value.schema.validation": "true"})

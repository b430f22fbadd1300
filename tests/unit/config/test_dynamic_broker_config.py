"""Dynamic broker configs without a broker: the four levels, what a change tells its
subscribers, what DescribeConfigs lists for a broker, and which changes are refused,
with the answers a Kafka 4.4.0 broker gave to the same requests."""

from __future__ import annotations

import pytest

from strom.config.broker import BrokerConfig, BrokerConfigChange
from strom.config.defs import ConfigSource
from strom.config.dynamic import (
    DynamicConfigRefused,
    describe_broker,
    java_set,
    validate_update,
)
from strom.config.topic import resolve_topic_config

DYN_BROKER = ConfigSource.DYNAMIC_BROKER_CONFIG
DYN_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
STATIC, DEFAULT = ConfigSource.STATIC_BROKER_CONFIG, ConfigSource.DEFAULT_CONFIG


def test_levels_merge_highest_first_and_subscribers_hear_what_changed() -> None:
    config = BrokerConfig({"log.retention.hours": "3", "message.max.bytes": "2000000"})
    heard: list[BrokerConfigChange] = []
    config.subscribe(heard.append)
    config.set_dynamic({"log.retention.ms": "3600000"}, {"message.max.bytes": "3000000"})
    assert config.get_int("message.max.bytes") == 3000000
    assert config.props.get("log.retention.ms") == "3600000"
    assert "log.retention.hours" not in config.props  # hidden by the dynamic synonym
    assert config.static["log.retention.hours"] == "3"
    assert heard[-1].changed == {"log.retention.ms", "log.retention.hours", "message.max.bytes"}
    assert config.set_dynamic({"log.retention.ms": "3600000"},
                              {"message.max.bytes": "3000000"}) is None  # nothing new
    config.set_dynamic({}, {})
    assert config.get_int("message.max.bytes") == 2000000
    assert config.props["log.retention.hours"] == "3"
    assert heard[-1].touches("message.max.bytes", "x")


def test_stored_configs_that_cannot_apply_are_left_out() -> None:
    config = BrokerConfig({})
    config.set_dynamic({"log.dirs": "/elsewhere", "log.retention.ms": "soon"},
                       {"my.plugin.setting": "on"})
    assert config.dynamic_default == {} and config.dynamic_broker == {"my.plugin.setting": "on"}


def test_topic_configs_follow_a_dynamic_synonym() -> None:
    config = BrokerConfig({"log.retention.hours": "3"})
    config.set_dynamic({"log.retention.ms": "3600000"}, {"log.retention.ms": "7200000"})
    resolved = resolve_topic_config("retention.ms", {}, config.props)
    assert resolved.value == "7200000" and resolved.source == DYN_BROKER
    assert resolved.synonyms == (("log.retention.ms", "7200000", DYN_BROKER),
                                 ("log.retention.ms", "3600000", DYN_DEFAULT),
                                 ("log.retention.hours", "3", STATIC),
                                 ("log.retention.hours", "168", DEFAULT))
    override = resolve_topic_config("retention.ms", {"retention.ms": "5"}, config.props)
    assert override.value == "5" and override.synonyms[0] == (
        "retention.ms", "5", ConfigSource.DYNAMIC_TOPIC_CONFIG)


def _rows(config: BrokerConfig, per_broker: bool) -> dict[str, tuple[object, ...]]:
    return {e.name: (e.value, e.source, e.synonyms, e.read_only, e.sensitive)
            for e in describe_broker(config, per_broker)}


def test_a_broker_resource_lists_every_config_with_its_chain() -> None:
    config = BrokerConfig({"log.dirs": "/data", "num.partitions": "2"})
    config.set_dynamic({"log.retention.ms": "3600000", "log.cleaner.threads": "2"},
                       {"log.retention.ms": "7200000", "custom.x": "y"})
    rows = _rows(config, per_broker=True)
    assert rows["log.retention.ms"] == ("7200000", DYN_BROKER, (
        ("log.retention.ms", "7200000", DYN_BROKER),
        ("log.retention.ms", "3600000", DYN_DEFAULT),
        ("log.retention.hours", "168", DEFAULT)), False, False)
    assert rows["log.retention.hours"] == (
        "168", DEFAULT, (("log.retention.hours", "168", DEFAULT),), True, False)
    assert rows["num.partitions"] == ("2", STATIC, (("num.partitions", "2", STATIC),
                                                    ("num.partitions", "1", DEFAULT)), True, False)
    assert rows["log.cleaner.threads"][:2] == ("2", DYN_DEFAULT)
    # a name of no known type may be a secret: no value, read-only, as Kafka shows it
    assert rows["custom.x"] == (None, DYN_BROKER, (("custom.x", None, DYN_BROKER),), True, True)
    assert rows["log.flush.interval.ms"] == (None, DEFAULT, (), False, False)


def test_the_default_resource_lists_only_the_dynamic_defaults() -> None:
    config = BrokerConfig({"num.partitions": "2"})
    config.set_dynamic({"log.retention.ms": "3600000"}, {"log.retention.ms": "1"})
    assert _rows(config, per_broker=False) == {"log.retention.ms": (
        "3600000", DYN_DEFAULT, (("log.retention.ms", "3600000", DYN_DEFAULT),), False, False)}


@pytest.mark.parametrize(("update", "per_broker", "message"), [
    ({"log.retention.hours": "1"}, False,
     "Cannot update these configs dynamically: [log.retention.hours]"),
    ({"log.dirs": "/x", "log.retention.hours": "1", "num.partitions": "3"}, False,
     "Cannot update these configs dynamically: [log.retention.hours, num.partitions, log.dirs]"),
    ({"log.retention.ms": "abc"}, False,
     "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"),
    ({"message.max.bytes": "-5"}, True,
     "Invalid value -5 for configuration message.max.bytes: Value must be at least 0"),
    ({"log.cleaner.threads": "5"}, True,
     "Invalid value org.apache.kafka.common.config.ConfigException: Log cleaner threads "
     "cannot be increased to more than double the current value 1 for configuration "
     "Invalid dynamic configuration"),
    ({"num.io.threads": "100"}, True,
     "Invalid value org.apache.kafka.common.config.ConfigException: Dynamic thread count "
     "update validation failed for num.io.threads=100, value should not be greater than "
     "double the current value 8 for configuration Invalid dynamic configuration"),
])
def test_refused_changes_say_what_kafka_says(update: dict[str, str], per_broker: bool,
                                             message: str) -> None:
    with pytest.raises(DynamicConfigRefused) as refused:
        validate_update(BrokerConfig({}), update, per_broker)
    assert str(refused.value) == message


def test_accepted_changes() -> None:
    config = BrokerConfig({})
    for update in ({"log.retention.ms": "-5"}, {"my.plugin.setting": "1"},
                   {"log.cleaner.threads": "2"}, {"num.io.threads": "16"},
                   {"log.cleanup.policy": "compact,delete"}, {"max.connections": "100"}):
        validate_update(config, update, per_broker=True)


def test_java_set_order_grows_with_the_set() -> None:
    assert java_set(["a"]) == "[a]"
    names = [f"config.{i}" for i in range(20)]
    text = java_set(names)
    assert sorted(text.strip("[]").split(", ")) == sorted(names)

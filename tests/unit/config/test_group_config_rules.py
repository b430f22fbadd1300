"""Group configs (`strom.config.group`): Kafka 4.4's names, defaults, order, refusals and
messages (each case below is what a Kafka 4.4 broker answered to the same change), the
broker's bounds, and the resolved values the coordinators read."""

from __future__ import annotations

import re

import pytest

from strom.config.defs import ConfigSource, InvalidConfig
from strom.config.group import (
    DESCRIBE_ORDER,
    GroupConfigs,
    describe_group_configs,
    validate_group_configs,
)

RANGE = "{} must be in the range {} to {} inclusive."
OFFSET_RESET = ("Invalid value {0} for configuration share.auto.offset.reset: Invalid value "
                "`{0}` for configuration share.auto.offset.reset. The value must be either "
                "'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.")

REFUSED = [
    ({"consumer.session.timeout.ms": "10"},
     RANGE.format("consumer.session.timeout.ms", 45000, 60000)),
    ({"consumer.session.timeout.ms": "abc"},
     "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"),
    ({"consumer.session.timeout.ms": ""},
     "Invalid value  for configuration consumer.session.timeout.ms: Not a number of type INT"),
    ({"consumer.heartbeat.interval.ms": "4000"},
     RANGE.format("consumer.heartbeat.interval.ms", 5000, 15000)),
    ({"share.record.lock.duration.ms": "1000"},
     RANGE.format("share.record.lock.duration.ms", 15000, 60000)),
    ({"share.auto.offset.reset": "none"}, OFFSET_RESET.format("none")),
    ({"share.auto.offset.reset": "bogus"}, OFFSET_RESET.format("bogus")),
    ({"share.isolation.level": "READ_COMMITTED"},
     "Invalid value READ_COMMITTED for configuration share.isolation.level: String must be "
     "one of: read_committed, read_uncommitted"),
    ({"share.delivery.count.limit": "1"},
     "Invalid value 1 for configuration share.delivery.count.limit: Value must be at least 2"),
    ({"share.delivery.count.limit": "11"}, RANGE.format("share.delivery.count.limit", 2, 10)),
    ({"bogus.name": "1"}, "Unknown group config name: bogus.name"),
    ({"streams.num.standby.replicas": "5"},
     "streams.num.standby.replicas must be less than or equal to 2"),
    ({"streams.assignor.name": "foo"},
     "streams.assignor.name 'foo' is not a registered task assignor. Registered assignors "
     "are: [sticky]."),
    ({"errors.deadletterqueue.topic.name": "__x"},
     "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'"),
    ({"streams.rack.aware.assignment.tags": "a,a"},
     "streams.rack.aware.assignment.tags must not contain duplicate tag keys."),
    ({"consumer.session.timeout.ms": "45000", "consumer.heartbeat.interval.ms": "15000",
      "share.session.timeout.ms": "45000", "share.heartbeat.interval.ms": "15000"},
     None),  # accepted: 45000 > 15000
]


@pytest.mark.parametrize(("configs", "message"), REFUSED)
def test_refusals_read_as_kafkas(configs: dict[str, str], message: str | None) -> None:
    if message is None:
        validate_group_configs(configs, {})
        return
    with pytest.raises(InvalidConfig) as caught:
        validate_group_configs(configs, {})
    assert str(caught.value) == message


def test_accepted_values() -> None:
    accepted = {"share.auto.offset.reset": "by_duration:PT1H", "share.isolation.level":
                "read_committed", "consumer.assignor.offload.enable": "true",
                "streams.num.warmup.replicas": "3", "consumer.session.timeout.ms": "50000"}
    assert validate_group_configs(accepted, {})["consumer.session.timeout.ms"] == 50000


def test_session_must_exceed_heartbeat_with_the_brokers_bounds() -> None:
    broker = {"group.consumer.min.session.timeout.ms": "1000",
              "group.consumer.min.heartbeat.interval.ms": "1000"}
    with pytest.raises(InvalidConfig, match=re.escape(
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms")):
        validate_group_configs({"consumer.session.timeout.ms": "5000"}, broker)
    validate_group_configs({"consumer.session.timeout.ms": "6000"}, broker)


def test_bounds_follow_the_broker() -> None:
    broker = {"group.consumer.max.session.timeout.ms": "90000"}
    validate_group_configs({"consumer.session.timeout.ms": "90000"}, broker)
    with pytest.raises(InvalidConfig, match="range 45000 to 60000"):
        validate_group_configs({"consumer.session.timeout.ms": "90000"}, {})


def test_described_in_kafkas_order_with_synonyms() -> None:
    entries = describe_group_configs({"consumer.session.timeout.ms": "50000"},
                                     {"group.share.record.lock.duration.ms": "20000"})
    assert [e.name for e in entries] == list(DESCRIBE_ORDER)
    assert len(entries) == 21  # the internal ones are not described
    by_name = {e.name: e for e in entries}
    session = by_name["consumer.session.timeout.ms"]
    assert (session.value, session.source) == ("50000", ConfigSource.DYNAMIC_GROUP_CONFIG)
    assert session.synonyms == (
        ("consumer.session.timeout.ms", "50000", ConfigSource.DYNAMIC_GROUP_CONFIG),
        ("group.consumer.session.timeout.ms", "45000", ConfigSource.DEFAULT_CONFIG))
    lock = by_name["share.record.lock.duration.ms"]
    assert (lock.value, lock.source) == ("20000", ConfigSource.STATIC_BROKER_CONFIG)
    reset = by_name["share.auto.offset.reset"]
    assert reset.synonyms == (("share.auto.offset.reset", "latest",
                               ConfigSource.DEFAULT_CONFIG),)
    assert by_name["streams.assignor.name"].value == "sticky"
    assert all(e.definition.doc for e in entries)  # DescribeConfigs' documentation


def test_for_group_resolves_caps_and_follows_changes() -> None:
    overrides: dict[str, dict[str, str]] = {"g": {"consumer.heartbeat.interval.ms": "12000"}}
    broker = {"group.share.record.lock.duration.ms": "40000"}
    configs = GroupConfigs(lambda g: overrides.get(g, {}), lambda: broker)
    resolved = configs.for_group("g")
    assert resolved.consumer_heartbeat_interval_ms == 12000
    assert resolved.consumer_session_timeout_ms == 45000
    assert resolved.share_record_lock_duration_ms == 40000
    assert resolved.share_auto_offset_reset == "latest"
    assert configs.for_group("other").consumer_heartbeat_interval_ms == 5000
    overrides["g"] = {"consumer.heartbeat.interval.ms": "7000"}  # a new image's dict
    assert configs.for_group("g").consumer_heartbeat_interval_ms == 7000
    broker = {"group.consumer.max.heartbeat.interval.ms": "6000"}  # bounds moved under it
    assert configs.for_group("g").consumer_heartbeat_interval_ms == 6000


def test_a_group_without_overrides_is_resolved_once() -> None:
    """Every heartbeat asks: a group with no overrides (a fresh empty dict per image
    lookup) is not resolved again while the broker's properties stay the same."""
    broker = {"group.consumer.heartbeat.interval.ms": "7000"}
    configs = GroupConfigs(lambda g: {}, lambda: broker)
    first = configs.for_group("g")
    assert configs.for_group("g") is first and first.consumer_heartbeat_interval_ms == 7000

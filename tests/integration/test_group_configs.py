"""Group configs on GROUP resources (type 32) over TCP, with confluent-kafka's
AdminClient and raw requests: described with Kafka 4.4's names, defaults and sources,
changed by IncrementalAlterConfigs and AlterConfigs with Kafka's refusals, kept across a
restart, listed by ListConfigResources, and applied to a live consumer group (the
heartbeat interval a member is given follows its group's
`consumer.heartbeat.interval.ms`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from support.broker_process import BrokerProcess, wait_until
from support.raw_client import RawClient, make_request, nested

pytestmark = [pytest.mark.timeout(120)]
GROUP = 32
ENABLED = {"group.coordinator.rebalance.protocols": "classic,consumer"}
# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
COORDINATOR_NOT_READY = {14, 15, 16}


def _set(admin: AdminClient, group: str, name: str, value: str | None,
         op: AlterConfigOpType = AlterConfigOpType.SET) -> None:
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=op)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()


def _describe(admin: AdminClient, group: str) -> dict[str, Any]:
    futures = admin.describe_configs([ConfigResource(ResourceType.GROUP, group)])
    return next(iter(futures.values())).result()


def _heartbeat_interval(bootstrap: str, group: str, topic: str) -> int:
    """A new member's first ConsumerGroupHeartbeat: the interval it is told to keep.
    Asked again while the coordinator is not there yet (the first group request creates
    __consumer_offsets, whose partitions load after the create answers, as on Kafka)."""
    with RawClient(bootstrap) as raw:
        def answered() -> Any:
            response = raw.request(68, 0, group_id=group, member_id="", member_epoch=0,
                                   rebalance_timeout=30_000, subscribed_topic_names=[topic],
                                   topic_partitions=[])
            return None if response.body.error_code in COORDINATOR_NOT_READY else response

        response = wait_until(answered, 60, "a coordinator for the group", interval=0.2)
    assert response.body.error_code == 0, response.body
    return int(response.body.heartbeat_interval.total_seconds() * 1000)


def test_described_altered_refused_and_kept(broker_factory: Callable[..., BrokerProcess]
                                           ) -> None:
    proc = broker_factory()
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    configs = _describe(admin, "orders")
    assert len(configs) == 21
    assert (configs["consumer.session.timeout.ms"].value,
            configs["consumer.session.timeout.ms"].source) == ("45000", 5)  # DEFAULT_CONFIG
    assert configs["share.auto.offset.reset"].value == "latest"
    _set(admin, "orders", "consumer.session.timeout.ms", "50000")
    _set(admin, "orders", "share.auto.offset.reset", "earliest")
    configs = _describe(admin, "orders")
    assert (configs["consumer.session.timeout.ms"].value,
            configs["consumer.session.timeout.ms"].source) == ("50000", 8)  # DYNAMIC_GROUP
    assert configs["share.auto.offset.reset"].value == "earliest"
    with pytest.raises(KafkaException, match=re.escape(
            "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive.")):
        _set(admin, "orders", "consumer.heartbeat.interval.ms", "1")
    with pytest.raises(KafkaException, match=re.escape("Unknown group config name: no.such")):
        _set(admin, "orders", "no.such", "1")
    _set(admin, "orders", "share.auto.offset.reset", None, AlterConfigOpType.DELETE)
    proc.restart()
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    configs = _describe(admin, "orders")
    assert configs["consumer.session.timeout.ms"].value == "50000"
    assert (configs["share.auto.offset.reset"].value,
            configs["share.auto.offset.reset"].source) == ("latest", 5)


def test_legacy_alter_configs_listing_and_an_empty_group_name(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory()
    with RawClient(proc.bootstrap) as raw:
        resource, entry = nested(33, 2, "AlterConfigsResource"), nested(33, 2, "AlterableConfig")
        body = make_request(33, 2, {"validate_only": False, "resources": (
            resource(resource_type=GROUP, resource_name="g2", configs=(
                entry(name="share.record.lock.duration.ms", value="20000"),)),
            resource(resource_type=GROUP, resource_name="", configs=(
                entry(name="share.record.lock.duration.ms", value="20000"),)))})
        answers = raw.request(33, 2, body).body.responses
        assert [(int(a.error_code), a.error_message) for a in answers] == [
            (0, None), (42, "Default group resources are not allowed.")]
        described = nested(32, 4, "DescribeConfigsResource")
        body = make_request(32, 4, {"include_synonyms": False, "include_documentation": False,
                                    "resources": (
            described(resource_type=GROUP, resource_name="g2",
                      configuration_keys=("share.record.lock.duration.ms",)),
            described(resource_type=GROUP, resource_name="", configuration_keys=None))})
        results = raw.request(32, 4, body).body.results
        listed = raw.request(74, 1, resource_types=[GROUP]).body.config_resources
    assert [(r.resource_name, int(r.resource_type)) for r in listed] == [("g2", GROUP)]
    assert [(c.name, c.value, int(c.config_source)) for c in results[0].configs] == [
        ("share.record.lock.duration.ms", "20000", 8)]
    assert (int(results[1].error_code), results[1].error_message) == (
        42, "Group name must not be empty")


def test_a_live_group_follows_its_heartbeat_interval(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    from support.clients import create_topic

    proc = broker_factory(ENABLED)
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    create_topic(proc.bootstrap, "hb-topic", 1)
    assert _heartbeat_interval(proc.bootstrap, "live", "hb-topic") == 5000
    _set(admin, "live", "consumer.heartbeat.interval.ms", "12000")
    assert _heartbeat_interval(proc.bootstrap, "live", "hb-topic") == 12000
    assert _heartbeat_interval(proc.bootstrap, "other", "hb-topic") == 5000

"""Prometheus metrics of consumer groups: groups counted by type and state (a KIP-848
group beside a classic one), a consumer group's members, and the rebalance and
heartbeat counters moving while librdkafka's consumer protocol runs."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families

from support.broker_process import BrokerProcess
from support.clients import create_topic

pytestmark = [pytest.mark.timeout(120)]
ENABLED = {"group.coordinator.rebalance.protocols": "classic,consumer",
           "group.consumer.heartbeat.interval.ms": "500"}


def _samples(proc: BrokerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(proc.metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _poll_until(consumers: list[Consumer], done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        for consumer in consumers:
            consumer.poll(0.2)
    assert done(), "the consumers did not get their assignments"


def test_groups_by_type_and_state_rebalances_and_heartbeats(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    topic = create_topic(proc.bootstrap, "metrics-t", partitions=2)
    new = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "m-consumer",
                    "group.protocol": "consumer"})
    old = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "m-classic"})
    for consumer in (new, old):
        consumer.subscribe([topic])
    try:
        _poll_until([new, old], lambda: bool(new.assignment()) and bool(old.assignment()))
        before = _samples(proc)
        assert before[("strom_group_count", (("state", "Stable"), ("type", "consumer")))] == 1
        assert before[("strom_group_count", (("state", "Stable"), ("type", "classic")))] == 1
        assert before[("strom_consumer_group_members", (("group", "m-consumer"),))] == 1
        assert before[("strom_consumer_group_rebalances_total", ())] >= 1
        beats = before[("strom_consumer_group_heartbeats_total", ())]
        assert beats >= 1
        _poll_until([new, old], lambda: _samples(proc)[
            ("strom_consumer_group_heartbeats_total", ())] > beats)
    finally:
        new.close()
        old.close()

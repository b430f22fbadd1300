"""`strom group list/describe` name a group's type and its state in Kafka's words: a
KIP-848 consumer group caught mid-rebalance is `Reconciling` (librdkafka's own listing
can only call it UNKNOWN), beside a classic group that is `Stable`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer

from support.broker_process import BrokerProcess
from support.cli import strom, strom_json, table
from support.clients import create_topic
from support.groups import wait_until
from support.raw_client import RawClient

pytestmark = [pytest.mark.timeout(120)]
ENABLED = {"group.coordinator.rebalance.protocols": "classic,consumer"}


def _join(raw: RawClient, group: str, topic: str) -> str:
    body = raw.request(68, 0, group_id=group, member_id="", member_epoch=0,
                       rebalance_timeout=30_000, subscribed_topic_names=[topic],
                       topic_partitions=[]).body
    assert body.error_code == 0, body
    return str(body.member_id)


def test_types_and_the_new_states(broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory(ENABLED)
    b = ("--brokers", proc.bootstrap)
    topic = create_topic(proc.bootstrap, "types-t", partitions=2)
    classic = Consumer({"bootstrap.servers": proc.bootstrap, "group.id": "classic-g",
                        "session.timeout.ms": 30_000})
    classic.subscribe([topic])
    try:
        wait_until(lambda: classic.poll(0.2) is None and bool(classic.assignment()), 30,
                   "the classic member's assignment")
        with RawClient(proc.bootstrap) as raw:
            _join(raw, "kip848-g", topic)  # the first member takes both partitions
            _join(raw, "kip848-g", topic)  # the second waits until the first revokes one
            rows = {r["GROUP"]: r for r in table(strom("group", "list", *b).stdout)}
            assert (rows["kip848-g"]["STATE"], rows["kip848-g"]["TYPE"]) == (
                "Reconciling", "consumer")
            assert (rows["classic-g"]["STATE"], rows["classic-g"]["TYPE"]) == (
                "Stable", "classic")
            [described] = strom_json("group", "describe", "kip848-g", *b)
            assert (described["type"], described["state"]) == ("consumer", "Reconciling")
            assert len(described["members"]) == 2
    finally:
        classic.close()

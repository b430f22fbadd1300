"""The share coordinator's housekeeping on a real broker (Kafka's ShareCoordinatorService
jobs, here with short intervals): idle share-partitions get a fresh snapshot and the
records of `__share_group_state` below the oldest needed snapshot are deleted, so its
log start offset moves forward; a restarted broker loads the pruned partition with
the share state intact (nothing acknowledged comes back, what was only acquired does)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from test_share_groups import ENABLED, acquired, fetch, join, produce, topic_id

from support.broker_process import BrokerProcess
from support.clients import create_topic
from support.raw_client import RawClient

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
STATE = "__share_group_state"
ACCEPT = 1


def _state_log_start(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        low, _high = consumer.get_watermark_offsets(TopicPartition(STATE, 0), timeout=10)
        return int(low)
    finally:
        consumer.close()


def _accept(first: int, last: int) -> list[dict[str, object]]:
    return [{"first_offset": first, "last_offset": last, "acknowledge_types": [ACCEPT]}]


def test_the_state_topic_is_pruned_and_a_restart_keeps_the_state(
        broker_factory: Callable[..., BrokerProcess]) -> None:
    proc = broker_factory({
        **ENABLED, "share.coordinator.state.topic.num.partitions": "1",
        "share.coordinator.state.topic.prune.interval.ms": "300",
        "share.coordinator.cold.partition.snapshot.interval.ms": "300"})
    topic = create_topic(proc.bootstrap, f"prune-{uuid.uuid4().hex[:6]}", partitions=1)
    group, member = "prune-g", str(uuid.uuid4())
    with RawClient(proc.bootstrap) as raw:
        tid = topic_id(raw, topic)
        join(raw, group, member, topic)
        assert fetch(raw, group, member, 0, tid).error_code == 0  # starts at the end (0)
        produce(proc.bootstrap, topic, 20)
        assert acquired(fetch(raw, group, member, 1, tid, wait_ms=5000)) == [(0, 19, 1)]
        for epoch, first in ((2, 0), (3, 5), (4, 10)):  # an update of the state each
            body = fetch(raw, group, member, epoch, tid, _accept(first, first + 4))
            assert body.responses[0].partitions[0].acknowledge_error_code == 0
    deadline = time.monotonic() + 60
    while _state_log_start(proc.bootstrap) == 0:  # a cold snapshot, then the prune
        assert time.monotonic() < deadline, proc.log_text()[-3000:]
        time.sleep(0.3)
    assert "pruned: log start offset" in proc.log_text()
    proc.restart()
    assert _state_log_start(proc.bootstrap) > 0
    other = str(uuid.uuid4())
    with RawClient(proc.bootstrap) as raw:
        join(raw, group, other, topic)
        body = fetch(raw, group, other, 0, tid, wait_ms=5000)
        got = acquired(body) or acquired(fetch(raw, group, other, 1, tid, wait_ms=5000))
    offsets = sorted(o for first, last, _count in got for o in range(first, last + 1))
    assert offsets == list(range(15, 20))  # accepted 0-14 never again; 15-19 released

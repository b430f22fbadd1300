"""Client quotas in a ZooKeeper cluster (issue 15): a quota altered through one broker is
written to Kafka's `/config/...` znodes with a change notice and reaches every broker,
each of which enforces it on its own (Kafka's quotas are per broker): a producer over it
is throttled by a broker that never saw the alteration, and removing it stops that."""

from __future__ import annotations

from typing import Any

import pytest

from support.broker_process import wait_until
from support.cluster import Cluster
from support.raw_client import RawClient, make_request, record_batch

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def _alter(raw: RawClient, client_id: str, value: float | None) -> int:
    body = raw.request(49, 1, validate_only=False, entries=[
        {"entity": [{"entity_type": "client-id", "entity_name": client_id}],
         "ops": [{"key": "producer_byte_rate", "value": value or 0.0,
                  "remove": value is None}]}]).body
    return int(body.entries[0].error_code)


def _described(bootstrap: str, client_id: str) -> list[Any]:
    with RawClient(bootstrap) as raw:
        body = raw.request(48, 1, strict=True, components=[
            {"entity_type": "client-id", "match_type": 0, "match": client_id}]).body
    return [[(v.key, v.value) for v in e.values] for e in body.entries]


def _throttle_ms(raw: RawClient, topic: str, partition: int, client_id: str) -> int:
    body = make_request(0, 9, acks=1, timeout=10_000, transactional_id=None, topic_data=[
        {"name": topic, "partition_data": [
            {"index": partition, "records": record_batch([b"q" * 60_000])}]}])
    raw.send(0, 9, body, client_id=client_id)
    answer = raw.read_response(0, 9).body
    assert answer.responses[0].partition_responses[0].error_code == 0, answer
    return int(answer.throttle_time.total_seconds() * 1000)


def test_a_quota_set_through_one_broker_is_enforced_by_another(cluster: Cluster) -> None:
    cluster.create_topic("quota-cluster", partitions=3, replication_factor=1)
    with RawClient(cluster.brokers[1].bootstrap) as raw:
        assert _alter(raw, "capped", 102400.0) == 0
    for broker_id in (2, 3):
        wait_until(lambda b=broker_id: _described(cluster.brokers[b].bootstrap, "capped")
                   == [[("producer_byte_rate", 102400.0)]], 30, "the quota on every broker")
    view = cluster.partitions("quota-cluster")
    partition, state = next((p, s) for p, s in sorted(view.items()) if s.leader != 1)
    with RawClient(cluster.brokers[state.leader].bootstrap) as raw:
        throttles: list[int] = []
        while len(throttles) < 25 and not any(throttles):
            throttles.append(_throttle_ms(raw, "quota-cluster", partition, "capped"))
    assert throttles[0] == 0 and max(throttles) > 0, throttles
    with RawClient(cluster.brokers[1].bootstrap) as raw:
        assert _alter(raw, "capped", None) == 0
    wait_until(lambda: _described(cluster.brokers[state.leader].bootstrap, "capped") == [],
               30, "the quota removed everywhere")

"""DescribeTopicPartitions (API 75) on Strom and on Apache Kafka: the raw paging rules,
and `kafka-topics.sh --describe`, which uses the API whenever the broker advertises it."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.protocol.api_keys import ApiKey
from support.broker_process import BrokerProcess
from support.interop import Target
from support.raw_client import RawClient, create_topic

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]
KEY = ApiKey.DESCRIBE_TOPIC_PARTITIONS


def _describe(client: RawClient, names: list[str], limit: int,
              cursor: tuple[str, int] | None = None) -> Any:
    return client.request(
        KEY, 0, topics=[{"name": n} for n in names], response_partition_limit=limit,
        cursor=None if cursor is None else {"topic_name": cursor[0],
                                            "partition_index": cursor[1]}).body


def _pages(client: RawClient, names: list[str], limit: int) -> list[list[tuple[str, int]]]:
    pages, cursor = [], None
    for _ in range(20):
        body = _describe(client, names, limit, cursor)
        pages.append([(t.name, p.partition_index) for t in body.topics for p in t.partitions])
        if body.next_cursor is None:
            return pages
        cursor = (body.next_cursor.topic_name, body.next_cursor.partition_index)
    raise AssertionError(f"no end of paging: {pages}")


def _wait_known(client: RawClient, names: list[str]) -> None:
    """Kafka answers CreateTopics before its broker's metadata cache has the topic."""
    deadline = time.monotonic() + 30
    while any(t.error_code for t in _describe(client, names, 2000).topics):
        assert time.monotonic() < deadline, f"{names} not visible after 30 s"
        time.sleep(0.1)


def test_raw_paging_and_unknown_topics(target: Target) -> None:
    prefix = f"dtp-{uuid.uuid4().hex[:6]}"
    a, b = f"{prefix}-a", f"{prefix}-b"
    with RawClient(target.bootstrap) as client:
        for name, count in ((a, 3), (b, 2)):
            assert create_topic(client, name, count).error_code == 0
        _wait_known(client, [a, b])
        assert _pages(client, [b, a], 2) == [[(a, 0), (a, 1)], [(a, 2), (b, 0)], [(b, 1)]]
        assert _pages(client, [a, b], 3) == [[(a, 0), (a, 1), (a, 2)], [(b, 0), (b, 1)]]
        assert _pages(client, [a, b], 0) == [[(a, 0)], [(a, 1)], [(a, 2)], [(b, 0)], [(b, 1)]]

        body = _describe(client, [a, f"{prefix}-nope", "bad/name"], 2000)
        codes = {t.name: t.error_code for t in body.topics}
        assert codes == {a: ErrorCode.none, f"{prefix}-nope": ErrorCode.unknown_topic_or_partition,
                         "bad/name": ErrorCode.invalid_topic_exception}
        assert [t.name for t in body.topics] == sorted(codes)
        known = next(t for t in body.topics if t.name == a)
        leader = target.node_id
        assert [(p.leader_id, p.replica_nodes, p.isr_nodes, p.eligible_leader_replicas,
                 p.last_known_elr, p.offline_replicas) for p in known.partitions] == [
            (leader, (leader,), (leader,), (), (), ())] * 3

        refused = _describe(client, [a, b], 10, cursor=(f"{prefix}-c", 0))
        assert [(t.name, t.error_code) for t in refused.topics] == [
            (a, ErrorCode.invalid_request), (b, ErrorCode.invalid_request)]
        everything = _describe(client, [], 2000, cursor=(b, 1))
        first = everything.topics[0]
        assert (first.name, [p.partition_index for p in first.partitions]) == (b, [1])


def test_kafka_topics_describe_pages_through_partitions(target: Target) -> None:
    topic = f"dtp-tool-{uuid.uuid4().hex[:6]}"
    boot = ["--bootstrap-server", target.bootstrap]
    target.tool_ok("TopicCommand", *boot, "--create", "--topic", topic, "--partitions", "5")
    out = target.tool_ok("TopicCommand", *boot, "--describe", "--topic", topic,
                         "--partition-size-limit-per-response", "2")
    rows = [line for line in out.splitlines() if f"Topic: {topic}\tPartition:" in line]
    assert [int(r.split("Partition: ")[1].split()[0]) for r in rows] == [0, 1, 2, 3, 4], out
    missing = target.tool("TopicCommand", *boot, "--describe", "--topic", f"{topic}-missing")
    assert missing.returncode != 0
    assert "does not exist" in missing.stdout + missing.stderr


@pytest.fixture
def strom_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data").start()
    yield proc
    assert proc.stop() == 0, proc.log_text()


def _requests_served(metrics_url: str, api: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(f'strom_requests_total{{api="{api}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_kafka_topics_describe_uses_describe_topic_partitions_on_strom(
        strom_broker: BrokerProcess, kafka_lib: Path) -> None:
    """The Java admin client falls back to Metadata if the API is missing; on Strom it must
    not need to."""
    target = Target("strom", strom_broker.bootstrap, 0)
    boot = ["--bootstrap-server", target.bootstrap]
    target.tool_ok("TopicCommand", *boot, "--create", "--topic", "paged", "--partitions", "3")
    target.tool_ok("TopicCommand", *boot, "--describe", "--topic", "paged")
    assert _requests_served(strom_broker.metrics_url, "DescribeTopicPartitions") >= 1

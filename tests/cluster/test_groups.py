"""A consumer group keeps consuming through broker failures, and its committed offsets
survive the death of the coordinator's broker.

Two confluent-kafka members (separate processes, see support.groups) consume a topic with
replication factor 3 while an idempotent producer keeps writing. Each member commits
synchronously after every batch and logs each commit once the broker acknowledged it.
The leader of a partition is killed, another broker is paused past its session timeout,
then the broker hosting the group's coordinator is killed with SIGKILL. The coordinator
moves with the leadership of the group's `__consumer_offsets` partition; the members
carry on there. Then the members are killed too, and fresh members of the same group
must resume exactly from the committed offsets: nothing whose offset was committed is
delivered again, and nothing is skipped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from support import chaos
from support.cluster import CLIENT_LOG, Cluster, wait_until
from support.groups import MemberLog, MemberProcess, stop_all

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TOPIC = "grouped"
GROUP = "survivors"
PARTITIONS = 3


def _commits(logs: list[MemberLog], after: float = 0.0) -> list[dict[str, object]]:
    events = [e for log in logs for e in log.events if e["ev"] == "commit" and e["t"] > after]
    return sorted(events, key=lambda e: e["t"])


def _last_committed(logs: list[MemberLog]) -> dict[int, int]:
    """Fold every acknowledged commit of every member in time order."""
    out: dict[int, int] = {}
    for e in _commits(logs):
        offsets = e["offsets"]
        assert isinstance(offsets, dict)
        out.update({int(p): int(o) for p, o in offsets.items()})
    return out


def _processed(logs: list[MemberLog]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for log in logs:
        for p, o in log.processed():
            out[p].add(o)
    return out


def _first_processed(logs: list[MemberLog]) -> dict[int, int]:
    out: dict[int, int] = {}
    for member in logs:
        for p, o in member.processed():
            out[p] = min(o, out.get(p, o))
    return out


def _broker_committed(cluster: Cluster) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "logger": CLIENT_LOG})
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(GROUP)])[GROUP]
    result = future.result(30)
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def test_commits_survive_the_coordinators_broker_dying(cluster: Cluster, tmp_path: Path) -> None:
    cluster.create_topic(TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"})
    producer = chaos.AckingProducer(cluster.bootstrap, TOPIC, PARTITIONS, rate=150)
    producer.start()
    first = [MemberProcess("confluent", cluster.bootstrap, GROUP, TOPIC, tmp_path, f"first{i}",
                           session_ms=6000).start() for i in range(2)]
    second: list[MemberProcess] = []
    try:
        wait_until(lambda: all(m.log().has("commit") for m in first), 90,
                   "both members committing")
        schedule = chaos.FaultSchedule(cluster, TOPIC, PARTITIONS, producer)
        schedule.kill_leader(0)
        schedule.pause_other()
        assert all(m.alive() for m in first), [m.stderr() for m in first]

        coordinator = cluster.wait_for_coordinator(GROUP)
        killed_at = time.time()
        cluster.kill(coordinator)
        moved_to = cluster.wait_for_coordinator(GROUP, exclude={coordinator})
        # The members find the new coordinator and keep committing there.
        wait_until(lambda: len(_commits([m.log() for m in first], killed_at)) >= 4, 90,
                   f"commits acknowledged by the new coordinator (broker {moved_to})")

        for m in first:
            m.kill()  # SIGKILL: their logged commits are the last acknowledged ones
        before = [m.log() for m in first]
        committed = _last_committed(before)
        assert set(committed) == set(range(PARTITIONS)), committed
        on_broker = wait_until(lambda: _broker_committed(cluster) or None, 60,
                               "committed offsets from the new coordinator")
        processed_before = _processed(before)
        for p, offset in committed.items():
            # Every acknowledged commit survived; nothing beyond what was processed.
            assert on_broker[p] >= offset, (p, on_broker, committed)
            assert on_broker[p] <= max(processed_before[p]) + 1, (p, on_broker[p])

        second = [MemberProcess("confluent", cluster.bootstrap, GROUP, TOPIC, tmp_path,
                                f"second{i}", session_ms=6000).start() for i in range(2)]
        cluster.start_broker(coordinator)
        wait_until(lambda: sum(len(m.log().processed()) for m in second) > 0, 90,
                   "the new members consuming")
    finally:
        producer.stop()
        stop_all(first)
    try:
        ends = chaos.end_offsets(cluster.bootstrap, TOPIC, PARTITIONS)

        def caught_up() -> bool:
            done = _processed([m.log() for m in second])
            return all(ends[p] == 0 or (ends[p] - 1) in done[p] for p in range(PARTITIONS))

        wait_until(caught_up, 120, f"the new members reaching the end offsets {ends}")
    finally:
        stop_all(second)

    after = [m.log() for m in second]
    resumed = _first_processed(after)
    for p in range(PARTITIONS):
        # Resumed exactly at the committed offset the new coordinator reported.
        assert resumed[p] == on_broker[p], (p, resumed, on_broker, committed)
    everything = _processed(before + after)
    for p in range(PARTITIONS):
        missing = sorted(set(range(ends[p])) - everything[p])
        assert not missing, f"partition {p}: offsets never processed {missing[:10]}"
    assert not producer.fatal, producer.fatal

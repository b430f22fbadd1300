"""Prometheus metrics of share groups (KIP-932), computed at scrape time.

    strom_share_partition_records{group,topic,partition,state}  in-flight records by state
    strom_share_partition_start_offset{group,topic,partition}   the share-partition start offset
    strom_share_sessions                                        open share sessions here
    strom_share_groups{state}                                   share groups coordinated here
    strom_share_group_members                                   their members
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from strom.broker.share.manager import ShareManager, manager_of


def _partitions(manager: ShareManager) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    records = GaugeMetricFamily("strom_share_partition_records",
                                "In-flight records of a share-partition led here, by state.",
                                labels=["group", "topic", "partition", "state"])
    start = GaugeMetricFamily("strom_share_partition_start_offset",
                              "Share-partition start offset (SPSO).",
                              labels=["group", "topic", "partition"])
    for (group, topic, index), share in sorted(manager.partitions.items()):
        labels = [group, topic, str(index)]
        for state, count in share.counts().items():
            records.add_metric([*labels, state.name.lower()], count)
        start.add_metric(labels, share.start_offset)
    yield records
    yield start
    yield GaugeMetricFamily("strom_share_sessions", "Share sessions open on this broker.",
                            value=len(manager.sessions))


def _groups(coordinator: Any) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    states: Counter[str] = Counter()
    members = 0
    for shard in list(coordinator.runtime.shards.values()):
        for group in shard.share.groups.values():
            states[group.state] += 1
            members += len(group.members)
    groups = GaugeMetricFamily("strom_share_groups", "Share groups coordinated here, by state.",
                               labels=["state"])
    for state in ("Empty", "Stable"):
        groups.add_metric([state], states[state])
    yield groups
    yield GaugeMetricFamily("strom_share_group_members",
                            "Members of the share groups coordinated here.", value=members)


def collect(broker: Any) -> Iterator[Any]:
    """The share metrics of a broker (its partition directory and group coordinator)."""
    manager = manager_of(getattr(broker, "replicas", None))
    if manager is not None:
        yield from _partitions(manager)
    coordinator = getattr(getattr(broker, "groups", None), "coordinator", None)
    if hasattr(coordinator, "runtime"):
        yield from _groups(coordinator)

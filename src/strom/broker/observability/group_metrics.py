"""Prometheus families of the groups coordinated by this broker, by group type.

Computed at scrape time from the coordinator's shards (one per `__consumer_offsets`
partition led here): how many groups of each type (`classic`, `consumer`) are in each
state, the members of consumer groups, and two counters of KIP-848 consumer groups —
rebalances (group epoch bumps: a member joined or left, a subscription or a subscribed
topic changed) and ConsumerGroupHeartbeats handled, whose rate is the heartbeat rate.
The counters belong to a shard: they restart from zero when a partition's coordination
moves to this broker again, which Prometheus' rate() treats as a counter reset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any


def consumer_group_families(coordinator: Any) -> Iterator[Any]:
    """`strom_group_count{type,state}`, `strom_consumer_group_members{group}`,
    `strom_consumer_group_rebalances_total`, `strom_consumer_group_heartbeats_total`."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    counts: Counter[tuple[str, str]] = Counter()
    members = GaugeMetricFamily("strom_consumer_group_members",
                                "Members of a consumer group (KIP-848).", labels=["group"])
    rebalances = heartbeats = 0
    runtime = getattr(coordinator, "runtime", None)  # a test's stand-in may have none
    for shard in list(runtime.shards.values()) if runtime is not None else []:
        for group in shard.groups.values():
            counts[("classic", group.state.value)] += 1
        consumer = shard.consumer
        rebalances += consumer.rebalances
        heartbeats += consumer.heartbeats
        for group_id, group in sorted(consumer.groups.items()):
            counts[("consumer", group.state)] += 1
            members.add_metric([group_id], len(group.members))
    by_type = GaugeMetricFamily("strom_group_count",
                                "Groups coordinated here, per type and state.",
                                labels=["type", "state"])
    for (kind, state), count in sorted(counts.items()):
        by_type.add_metric([kind, state], count)
    yield by_type
    yield members
    yield CounterMetricFamily("strom_consumer_group_rebalances",
                              "Consumer group (KIP-848) epoch bumps made here.",
                              value=rebalances)
    yield CounterMetricFamily("strom_consumer_group_heartbeats",
                              "ConsumerGroupHeartbeat requests handled here.",
                              value=heartbeats)

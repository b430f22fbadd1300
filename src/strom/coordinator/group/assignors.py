"""Server-side assignors of the consumer rebalance protocol (KIP-848).

An assignor maps each member to the partitions it should own (the *target assignment*)
from the members' subscriptions and the topics' partition counts. It is a pure function:
the group coordinator runs it whenever the group epoch moves past the assignment epoch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

Assignment = dict[uuid.UUID, frozenset[int]]
TopicPartition = tuple[uuid.UUID, int]


def uniform(subscriptions: Mapping[str, frozenset[uuid.UUID]],
            partition_counts: Mapping[uuid.UUID, int],
            previous: Mapping[str, Mapping[uuid.UUID, frozenset[int]]]
            ) -> dict[str, Assignment]:
    """Kafka's `uniform` assignor in spirit: balanced (member counts differ by at most
    one among members with the same subscription) and sticky (a member keeps up to its
    fair share of what it had, so a rebalance moves as few partitions as it can)."""
    members = sorted(subscriptions)
    owned: dict[str, set[TopicPartition]] = {m: set() for m in members}
    if not members:
        return {}
    everything = sorted((t, p) for t, n in partition_counts.items() for p in range(n)
                        if any(t in s for s in subscriptions.values()))
    share = max(len(everything) // len(members), 1)
    previous_owner: dict[TopicPartition, str] = {}
    for member in members:
        for topic_id, parts in previous.get(member, {}).items():
            for p in sorted(parts):
                if topic_id in subscriptions[member] and p < partition_counts.get(topic_id, 0):
                    previous_owner[(topic_id, p)] = member
                    if len(owned[member]) < share:
                        owned[member].add((topic_id, p))
    taken = {tp for parts in owned.values() for tp in parts}
    for tp in everything:
        if tp not in taken:
            _give(tp, owned, subscriptions, previous_owner.get(tp))
    return {m: _by_topic(owned[m]) for m in members}


def range_(subscriptions: Mapping[str, frozenset[uuid.UUID]],
           partition_counts: Mapping[uuid.UUID, int],
           previous: Mapping[str, Mapping[uuid.UUID, frozenset[int]]]
           ) -> dict[str, Assignment]:
    """Kafka's `range` assignor: per topic, consecutive partition ranges to the topic's
    subscribers in member id order, the first ones one partition more."""
    out: dict[str, dict[uuid.UUID, frozenset[int]]] = {m: {} for m in subscriptions}
    for topic_id, count in partition_counts.items():
        subscribers = sorted(m for m, topics in subscriptions.items() if topic_id in topics)
        if not subscribers:
            continue
        base, extra = divmod(count, len(subscribers))
        start = 0
        for i, member in enumerate(subscribers):
            size = base + (1 if i < extra else 0)
            if size:
                out[member][topic_id] = frozenset(range(start, start + size))
            start += size
    return out


ASSIGNORS = {"uniform": uniform, "range": range_}
DEFAULT = "uniform"


def _give(tp: TopicPartition, owned: dict[str, set[TopicPartition]],
          subscriptions: Mapping[str, frozenset[uuid.UUID]], previous_owner: str | None) -> None:
    """To the eligible member with the fewest partitions; its previous owner wins ties."""
    eligible = [m for m in owned if tp[0] in subscriptions[m]]
    if not eligible:
        return
    fewest = min(len(owned[m]) for m in eligible)
    candidates = [m for m in eligible if len(owned[m]) == fewest]
    chosen = previous_owner if previous_owner in candidates else candidates[0]
    owned[chosen].add(tp)


def _by_topic(parts: set[TopicPartition]) -> Assignment:
    grouped: dict[uuid.UUID, set[int]] = {}
    for topic_id, p in parts:
        grouped.setdefault(topic_id, set()).add(p)
    return {t: frozenset(ps) for t, ps in grouped.items()}

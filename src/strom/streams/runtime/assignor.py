"""The group leader's task assignor: Kafka Streams' HighAvailabilityTaskAssignor, in essence.

The unit is the task (sub-topology x partition), never the partition: a task's source
partitions always go to one member together, which keeps co-partitioning. Members are
grouped into clients (one per instance: same process id); a client's capacity is its
number of stream threads. In order:

1. Stateful active tasks go to a *caught-up* client (its lag on the task's changelogs is
   within `acceptable_recovery_lag`; the client running it has lag 0), the previous owner
   first (stickiness), else the least loaded caught-up client, else (none caught up) the
   least lagging one. Then the counts are balanced: a task moves off an overloaded client
   only to a caught-up one; where the balanced destination is not caught up, the task
   stays and the destination gets a *warm-up* replica (at most `max_warmup_replicas` in
   the group) and every member is told to rejoin after `probing_rebalance_interval_ms`
   (a probing rebalance), when the warm-up may have caught up and the task moves.
2. Standby replicas: `num_standby_replicas` per task with persistent logged stores, never
   on the client with the active, preferring clients that have the state (lowest lag),
   then the least loaded.
3. Stateless tasks: sticky, then to the least loaded client.
4. Within a client, tasks spread over its threads (sticky to the thread that ran them).
5. Cooperative: a task still owned by another member is left out of its new owner's
   assignment this round; the old owner sees it gone, closes it (committing) and rejoins,
   and the next round assigns it. Kept tasks are never revoked.

Lags come from the members' subscriptions (each client's offset sums per task, from its
checkpoints; -2, Kafka's LATEST, for a task it runs) and the changelogs' end offsets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

LATEST = -2  # Kafka's SubscriptionInfo marker: the client runs this task's active now


@dataclass
class MemberInfo:
    """What one member (stream thread) said when it joined."""

    member_id: str
    process_id: str
    endpoint: str | None = None
    active: set[str] = field(default_factory=set)
    standby: set[str] = field(default_factory=set)
    offset_sums: dict[str, int] = field(default_factory=dict)  # the client's, per task


@dataclass
class MemberAssignment:
    active: list[str] = field(default_factory=list)
    standby: list[str] = field(default_factory=list)
    probe_at_ms: int = 0  # rejoin then (a probing rebalance); 0: none scheduled


@dataclass
class AssignorConfig:
    num_standby_replicas: int = 0
    acceptable_recovery_lag: int = 10_000
    max_warmup_replicas: int = 2
    probing_rebalance_interval_ms: int = 600_000


@dataclass
class TaskSpace:
    """The tasks to assign: all of them; those with logged stores (stateful); those whose
    stores can have standbys (persistent); each stateful task's changelog end-offset sum."""

    tasks: list[str]
    stateful: set[str]
    standby_capable: set[str]
    end_sums: dict[str, int]


@dataclass
class _Client:
    process_id: str
    members: list[MemberInfo]
    active: set[str] = field(default_factory=set)
    standby: set[str] = field(default_factory=set)

    @property
    def capacity(self) -> int:
        return len(self.members)

    def load(self) -> float:
        return len(self.active) / self.capacity

    def previous(self) -> set[str]:
        return {t for m in self.members for t in m.active}

    def sums(self) -> dict[str, int]:
        return self.members[0].offset_sums


def assign(space: TaskSpace, members: list[MemberInfo], config: AssignorConfig,
           now_ms: int) -> dict[str, MemberAssignment]:
    """Member id → its tasks, for every member."""
    by_process: dict[str, list[MemberInfo]] = defaultdict(list)
    for member in sorted(members, key=lambda m: m.member_id):
        by_process[member.process_id].append(member)
    clients = [_Client(pid, ms) for pid, ms in sorted(by_process.items())]
    planner = _Planner(space, clients, config)
    waiting = planner.run()
    result = {m.member_id: MemberAssignment() for m in members}
    for client in clients:
        _spread_over_threads(client, result)
    _hold_back_owned_elsewhere(members, result)
    if waiting:
        for assignment in result.values():
            assignment.probe_at_ms = now_ms + config.probing_rebalance_interval_ms
    return result


class _Planner:
    def __init__(self, space: TaskSpace, clients: list[_Client], config: AssignorConfig) -> None:
        self.space, self.clients, self.config = space, clients, config
        self.lags = {(c.process_id, t): _lag(c.sums().get(t), space.end_sums.get(t, 0))
                     for c in clients for t in space.stateful}

    def run(self) -> int:
        """Place everything; the number of tasks waiting to move to a warming client."""
        stateful = sorted(self.space.stateful)
        for task in self._owned_first(stateful):
            self._place_stateful(task)
        pending = self._balance(stateful)
        for task in sorted(self.space.standby_capable):
            while self._standbys(task) < self.config.num_standby_replicas:
                if not self._place_standby(task):
                    break
        self._place_warmups(pending)
        stateless = [t for t in self.space.tasks if t not in self.space.stateful]
        left = [t for t in stateless if not self._keep_stateless(t)]
        for task in left:  # after every kept one, so loads count all that stay
            min(self.clients, key=lambda c: (c.load(), c.process_id)).active.add(task)
        return len(pending)

    def _owned_first(self, tasks: list[str]) -> list[str]:
        """Tasks some client runs now come first, so that the loads the others are
        balanced against already count every task that stays where it is."""
        owned = {t for c in self.clients for t in c.previous()}
        return [t for t in tasks if t in owned] + [t for t in tasks if t not in owned]

    def caught_up(self, client: _Client, task: str) -> bool:
        return self.lags[(client.process_id, task)] <= self.config.acceptable_recovery_lag

    def _place_stateful(self, task: str) -> None:
        candidates = [c for c in self.clients if self.caught_up(c, task)]
        if not candidates:
            least = min(self.lags[(c.process_id, task)] for c in self.clients)
            candidates = [c for c in self.clients if self.lags[(c.process_id, task)] == least]
        owners = [c for c in candidates if task in c.previous()]
        chosen = owners[0] if owners else min(candidates, key=_Client.load)
        chosen.active.add(task)

    def _balance(self, stateful: list[str]) -> list[tuple[_Client, str]]:
        """Move stateful actives off clients over their share, to caught-up clients only;
        the moves that wait for their destination to catch up."""
        total = sum(c.capacity for c in self.clients)
        target = {c.process_id: math.ceil(len(stateful) * c.capacity / total) for c in self.clients}
        pending: list[tuple[_Client, str]] = []
        for source in self.clients:
            for task in sorted(source.active):
                if len(source.active) <= target[source.process_id]:
                    break
                under = [c for c in self.clients if c is not source
                         and len(c.active) + sum(1 for d, _ in pending if d is c)
                         < target[c.process_id]]
                ready = [c for c in under if self.caught_up(c, task)]
                if ready:
                    dest = min(ready, key=_Client.load)
                    source.active.discard(task)
                    dest.active.add(task)
                    dest.standby.discard(task)
                elif under and task in self.space.standby_capable:
                    pending.append((min(under, key=_Client.load), task))
        return pending

    def _place_warmups(self, pending: list[tuple[_Client, str]]) -> None:
        """Warm-up replicas (standbys beyond the configured ones) where tasks wait to move,
        at most `max_warmup_replicas`; a client that has a standby of it already needs none."""
        placed = 0
        for dest, task in pending:
            if task in dest.standby:
                continue
            if placed >= self.config.max_warmup_replicas:
                break
            dest.standby.add(task)
            placed += 1

    def _standbys(self, task: str) -> int:
        return sum(1 for c in self.clients if task in c.standby)

    def _place_standby(self, task: str) -> bool:
        candidates = [c for c in self.clients if task not in c.active and task not in c.standby]
        if not candidates:
            return False
        best = min(candidates, key=lambda c: (self.lags[(c.process_id, task)],
                                              (len(c.active) + len(c.standby)) / c.capacity,
                                              c.process_id))
        best.standby.add(task)
        return True

    def _keep_stateless(self, task: str) -> bool:
        """Leave a stateless task where it runs if that client is under its share."""
        total_tasks = len(self.space.tasks)
        capacity = sum(c.capacity for c in self.clients)
        for client in self.clients:
            share = math.ceil(total_tasks * client.capacity / capacity)
            if task in client.previous() and len(client.active) < share:
                client.active.add(task)
                return True
        return False


def _lag(offset_sum: int | None, end_sum: int) -> int:
    if offset_sum == LATEST:
        return 0
    if offset_sum is None or offset_sum < 0:
        return max(end_sum, 0) + 1  # no state at all: a full restore (worse than any tail)
    return max(0, end_sum - offset_sum)


def _spread_over_threads(client: _Client, result: dict[str, MemberAssignment]) -> None:
    """A client's tasks over its threads: each keeps what it ran, up to an even share."""
    # an active task goes first to the thread that ran it, or kept its standby (its
    # stores are open there)
    _spread(client.active, client.members, lambda m: m.active | m.standby,
            lambda m: result[m.member_id].active)
    _spread(client.standby, client.members, lambda m: m.standby,
            lambda m: result[m.member_id].standby)


def _spread(tasks: set[str], members: list[MemberInfo],
            had: Callable[[MemberInfo], set[str]],
            out: Callable[[MemberInfo], list[str]]) -> None:
    share = math.ceil(len(tasks) / len(members)) if members else 0
    left = sorted(tasks)
    for member in members:
        kept = [t for t in left if t in had(member)][:share]
        out(member).extend(kept)
        left = [t for t in left if t not in kept]
    for task in left:
        out(min(members, key=lambda m: len(out(m)))).append(task)


def _hold_back_owned_elsewhere(members: list[MemberInfo],
                               result: dict[str, MemberAssignment]) -> None:
    """Cooperative rebalancing: a task another member still runs is not given to its new
    owner yet; that member will revoke it and rejoin, and the next round assigns it."""
    owner = {task: m.member_id for m in members for task in m.active}
    for member_id, assignment in result.items():
        held = [t for t in assignment.active if owner.get(t, member_id) != member_id]
        if held:
            assignment.active = [t for t in assignment.active if t not in held]

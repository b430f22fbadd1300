"""Incremental cooperative assignment (KIP-415), computed by the group's leader.

Each member reports what it runs (its allocation, in its JoinGroup metadata); the leader
knows what should run (connectors and their task counts, from the config topic). One
round returns, per member, what it must stop (`revoked_*`) and what it may start
(`connectors`/`tasks`, additions only: a member keeps what it runs and was not revoked).
Rules, as Kafka's IncrementalCooperativeAssignor applies them:

1. Work no longer configured, or run by two members, is revoked.
2. Work that was assigned in the previous round but is run by nobody now belongs to a
   member that left: it waits up to `scheduled.rebalance.max.delay.ms` for that member to
   come back (members get the remaining `delay` and rejoin when it ends), then goes to
   whoever is present.
3. Unassigned work goes to the least loaded members, connectors and tasks balanced
   separately (ties broken by member id, so every leader computes the same plan).
4. When nothing was revoked this round, members above their fair share (q or q + 1 of
   q, r = divmod(work, members)) give up the excess; it is assigned in the next round. Revoking
   and assigning never happen to the same work in one round: that is what makes the
   protocol cooperative, since a task never runs on two workers at once.

The assignor is a pure function plus the little state the leader keeps between rounds
(`AssignorState`), so it is tested without a broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from strom.connect.runtime.distributed.protocol import NO_ERROR, Assignment

TaskKey = tuple[str, int]
W = TypeVar("W", str, TaskKey)


@dataclass
class AssignorState:
    """What the leader remembers between rounds: who ran what, and a pending delay."""

    previous: dict[str, tuple[set[str], set[TaskKey]]] = field(default_factory=dict)
    lost_deadline_ms: int | None = None


@dataclass
class _Plan:
    keep_connectors: dict[str, set[str]]
    keep_tasks: dict[str, set[TaskKey]]
    revoked_connectors: dict[str, set[str]]
    revoked_tasks: dict[str, set[TaskKey]]
    new_connectors: dict[str, set[str]]
    new_tasks: dict[str, set[TaskKey]]


def configured_work(task_counts: Mapping[str, int]) -> tuple[set[str], set[TaskKey]]:
    """Every connector, and each of its tasks, from the config state's task counts."""
    return set(task_counts), {(name, i) for name, count in task_counts.items() for i in range(count)}


def assign(allocations: Mapping[str, tuple[set[str], set[TaskKey]]], task_counts: Mapping[str, int], *,
           leader_id: str, leader_url: str, config_offset: int, state: AssignorState, now_ms: int,
           max_delay_ms: int, version: int = 2) -> dict[str, Assignment]:
    """One round: `allocations` is what each member reports running."""
    members = sorted(allocations)
    connectors, tasks = configured_work(task_counts)
    plan = _Plan({m: set(allocations[m][0]) for m in members}, {m: set(allocations[m][1]) for m in members},
                 {m: set() for m in members}, {m: set() for m in members},
                 {m: set() for m in members}, {m: set() for m in members})
    _revoke_stale(plan, connectors, tasks)
    delay = _hold_lost(plan, state, connectors, tasks, now_ms, max_delay_ms)
    held_connectors, held_tasks = delay[1], delay[2]
    revoked_any = any(plan.revoked_connectors.values()) or any(plan.revoked_tasks.values())
    if not revoked_any:
        _shed_excess(plan.keep_connectors, plan.revoked_connectors, len(connectors))
        _shed_excess(plan.keep_tasks, plan.revoked_tasks, len(tasks))
    revoked_now = set().union(*plan.revoked_connectors.values()) if members else set()
    revoked_tasks_now = set().union(*plan.revoked_tasks.values()) if members else set()
    running_c = set().union(*plan.keep_connectors.values()) if members else set()
    running_t = set().union(*plan.keep_tasks.values()) if members else set()
    _fill(plan.keep_connectors, plan.new_connectors, connectors - running_c - revoked_now - held_connectors)
    _fill(plan.keep_tasks, plan.new_tasks, tasks - running_t - revoked_tasks_now - held_tasks)
    departed = {m: work for m, work in state.previous.items() if m not in allocations}
    state.previous = {m: (plan.keep_connectors[m] | plan.new_connectors[m],
                          plan.keep_tasks[m] | plan.new_tasks[m]) for m in members}
    if delay[0] > 0:  # keep remembering who ran the held work
        state.previous.update(departed)
    return {m: Assignment(version, NO_ERROR, leader_id, leader_url, config_offset,
                          tuple(sorted(plan.new_connectors[m])), tuple(sorted(plan.new_tasks[m])),
                          tuple(sorted(plan.revoked_connectors[m])), tuple(sorted(plan.revoked_tasks[m])),
                          delay[0])
            for m in members}


def _revoke_stale(plan: _Plan, connectors: set[str], tasks: set[TaskKey]) -> None:
    """Rule 1: unconfigured work, and work run by more than one member."""
    _revoke_unwanted(plan.keep_connectors, plan.revoked_connectors, connectors)
    _revoke_unwanted(plan.keep_tasks, plan.revoked_tasks, tasks)


def _revoke_unwanted(kept: dict[str, set[W]], revoked: dict[str, set[W]], wanted: set[W]) -> None:
    seen: dict[W, int] = {}
    for items in kept.values():
        for item in items:
            seen[item] = seen.get(item, 0) + 1
    for member, items in kept.items():
        stale = {i for i in items if i not in wanted or seen[i] > 1}
        items -= stale
        revoked[member] |= stale


def _hold_lost(plan: _Plan, state: AssignorState, connectors: set[str], tasks: set[TaskKey],
               now_ms: int, max_delay_ms: int) -> tuple[int, set[str], set[TaskKey]]:
    """Rule 2: (delay for members, connectors held back, tasks held back). While work is
    held, the departed members stay in `state.previous` so the next round knows it."""
    present = set(plan.keep_connectors)
    departed = {m: work for m, work in state.previous.items() if m not in present}
    lost_c = {c for cs, _ in departed.values() for c in cs} & connectors
    lost_t = {t for _, ts in departed.values() for t in ts} & tasks
    if not (lost_c or lost_t) or max_delay_ms <= 0:
        state.lost_deadline_ms = None
        return 0, set(), set()
    if state.lost_deadline_ms is None:
        state.lost_deadline_ms = now_ms + max_delay_ms
    remaining = state.lost_deadline_ms - now_ms
    if remaining <= 0:
        state.lost_deadline_ms = None
        return 0, set(), set()
    return remaining, lost_c, lost_t


def _shed_excess(kept: dict[str, set[W]], revoked: dict[str, set[W]], total: int) -> None:
    """Rule 4: with q, r = divmod(configured work, members), the r most loaded members may
    keep q + 1 items and the others q; whoever holds more gives up the excess."""
    if not kept:
        return
    quotient, remainder = divmod(total, len(kept))
    by_load = sorted(kept, key=lambda m: (-len(kept[m]), m))
    for rank, member in enumerate(by_load):
        target = quotient + 1 if rank < remainder else quotient
        items = kept[member]
        if len(items) > target:
            excess = set(sorted(items, key=repr)[target:])
            items -= excess
            revoked[member] |= excess


def _fill(kept: dict[str, set[W]], new: dict[str, set[W]], unassigned: set[W]) -> None:
    """Rule 3: each unassigned item to the least loaded member."""
    if not kept:
        return
    for item in sorted(unassigned, key=repr):
        member = min(kept, key=lambda m: (len(kept[m]) + len(new[m]), m))
        new[member].add(item)

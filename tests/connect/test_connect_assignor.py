"""Incremental cooperative assignment: revoke before reassign, balance over rounds, hold a
departed member's work for the scheduled delay, never run one task on two workers."""

from __future__ import annotations

from strom.connect.runtime.distributed.assignor import AssignorState, TaskKey, assign
from strom.connect.runtime.distributed.protocol import Assignment

Running = dict[str, tuple[set[str], set[TaskKey]]]


def round_(running: Running, counts: dict[str, int], state: AssignorState, now_ms: int = 0,
           delay_ms: int = 0) -> dict[str, Assignment]:
    """One rebalance: assignments computed and applied to `running` as members would."""
    plan = assign({m: (set(c), set(t)) for m, (c, t) in running.items()}, counts, leader_id="l",
                  leader_url="http://l/", config_offset=7, state=state, now_ms=now_ms, max_delay_ms=delay_ms)
    for member, a in plan.items():
        connectors, tasks = running[member]
        assert not (set(a.connectors) & set(a.revoked_connectors))
        connectors -= set(a.revoked_connectors)
        tasks -= set(a.revoked_tasks)
        connectors |= set(a.connectors)
        tasks |= set(a.tasks)
    return plan


def loads(running: Running) -> list[int]:
    return sorted(len(t) for _, t in running.values())


def no_duplicates(running: Running) -> bool:
    tasks = [t for _, ts in running.values() for t in ts]
    return len(tasks) == len(set(tasks))


def test_new_work_is_spread_and_a_new_member_gets_a_share_in_two_rounds() -> None:
    state = AssignorState()
    running: Running = {"w1": (set(), set())}
    round_(running, {"a": 4, "b": 2}, state)
    assert running["w1"] == ({"a", "b"}, {("a", i) for i in range(4)} | {("b", 0), ("b", 1)})
    running["w2"] = (set(), set())
    first = round_(running, {"a": 4, "b": 2}, state)
    assert first["w1"].revoked_tasks and not first["w2"].tasks  # revoke first ...
    assert no_duplicates(running)
    second = round_(running, {"a": 4, "b": 2}, state)
    assert not second["w1"].revoked_tasks and second["w2"].tasks  # ... assign next round
    assert loads(running) == [3, 3]
    assert sorted(len(c) for c, _ in running.values()) == [1, 1]


def test_deleted_connector_and_duplicates_are_revoked() -> None:
    state = AssignorState()
    running: Running = {"w1": ({"a", "gone"}, {("a", 0), ("gone", 0)}), "w2": ({"b"}, {("a", 0), ("b", 0)})}
    plan = round_(running, {"a": 1, "b": 1}, state)
    assert plan["w1"].revoked_connectors == ("gone",)
    assert ("a", 0) in plan["w1"].revoked_tasks and ("a", 0) in plan["w2"].revoked_tasks
    round_(running, {"a": 1, "b": 1}, state)
    assert no_duplicates(running) and {t for _, ts in running.values() for t in ts} == {("a", 0), ("b", 0)}


def test_departed_members_work_waits_for_the_delay() -> None:
    state = AssignorState()
    running: Running = {"w1": (set(), set()), "w2": (set(), set())}
    round_(running, {"a": 4}, state)
    gone = running.pop("w2")
    held = round_(running, {"a": 4}, state, now_ms=1000, delay_ms=5000)
    assert held["w1"].delay == 5000 and not held["w1"].tasks  # w2 may come back
    still = round_(running, {"a": 4}, state, now_ms=3000, delay_ms=5000)
    assert still["w1"].delay == 3000 and not still["w1"].tasks
    after = round_(running, {"a": 4}, state, now_ms=6000, delay_ms=5000)
    assert after["w1"].delay == 0 and set(after["w1"].tasks) == gone[1]
    assert loads(running) == [4]


def test_membership_changes_converge_to_balance_without_duplicates() -> None:
    import random

    for seed in range(30):
        rng = random.Random(seed)
        state = AssignorState()
        counts = {f"c{i}": rng.randint(1, 6) for i in range(rng.randint(1, 5))}
        running: Running = {"w0": (set(), set())}
        for step in range(8):
            if rng.random() < 0.5 or len(running) == 1:
                running[f"w{step + 1}"] = (set(), set())
            else:
                running.pop(rng.choice(sorted(running)))
            for _ in range(4):  # rounds until stable, as the group rejoins
                plan = round_(running, counts, state)
                assert no_duplicates(running), seed
                if not any(a.tasks or a.revoked_tasks or a.connectors or a.revoked_connectors
                           for a in plan.values()):
                    break
            all_tasks = {t for _, ts in running.values() for t in ts}
            assert all_tasks == {(c, i) for c, n in counts.items() for i in range(n)}, seed
            task_loads = loads(running)
            assert task_loads[-1] - task_loads[0] <= 1, (seed, task_loads)

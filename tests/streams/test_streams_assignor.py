"""The task assignor (Kafka Streams' HighAvailabilityTaskAssignor, in essence) and the
consumer-protocol bytes its members exchange: pure functions, no broker."""

from __future__ import annotations

import struct

from strom.streams.runtime.assignor import (
    LATEST,
    AssignorConfig,
    MemberAssignment,
    MemberInfo,
    TaskSpace,
    assign,
)
from strom.streams.runtime.group import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

STATELESS = [f"0_{p}" for p in range(4)]
STATEFUL = [f"1_{p}" for p in range(4)]


def _space(end: int = 1000) -> TaskSpace:
    return TaskSpace(STATELESS + STATEFUL, set(STATEFUL), set(STATEFUL),
                     dict.fromkeys(STATEFUL, end))


def _member(mid: str, process: str, active: set[str] | None = None,
            sums: dict[str, int] | None = None, standby: set[str] | None = None) -> MemberInfo:
    return MemberInfo(mid, process, None, active or set(), standby or set(), sums or {})


def _actives(plan: dict[str, MemberAssignment]) -> dict[str, set[str]]:
    return {m: set(a.active) for m, a in plan.items()}


def test_assignor_spreads_tasks_evenly_and_gives_each_task_once() -> None:
    members = [_member(f"m{i}", f"p{i}") for i in range(3)]
    plan = assign(_space(), members, AssignorConfig(), 0)
    every = [t for a in plan.values() for t in a.active]
    assert sorted(every) == sorted(STATELESS + STATEFUL)
    assert sorted(len(a.active) for a in plan.values()) == [2, 3, 3]
    assert all(a.probe_at_ms == 0 for a in plan.values())


def test_assignor_keeps_tasks_where_they_run() -> None:
    """Stickiness: a rebalance with the same members changes nothing."""
    members = [_member("a", "pa"), _member("b", "pb")]
    first = assign(_space(), members, AssignorConfig(), 0)
    again = [_member(m.member_id, m.process_id, set(first[m.member_id].active),
                     {t: LATEST for t in first[m.member_id].active}) for m in members]
    assert _actives(assign(_space(), list(reversed(again)), AssignorConfig(), 0)) == \
        _actives(first)


def test_assignor_places_standbys_away_from_the_active_preferring_clients_with_state() -> None:
    a = _member("a", "pa", set(), dict.fromkeys(STATEFUL, 1000))  # all state, up to date
    b = _member("b", "pb", set(), {"1_0": 990})  # most of 1_0
    c = _member("c", "pc")
    config = AssignorConfig(num_standby_replicas=1, acceptable_recovery_lag=50)
    plan = assign(_space(), [a, b, c], config, 0)
    owner = {t: m for m, x in plan.items() for t in x.active}
    for task in STATEFUL:
        holders = [m for m, x in plan.items() if task in x.standby]
        assert holders and owner[task] not in holders, (task, plan)
        assert owner[task] in ("a", "b")  # never c: it has nothing of any
    assert "b" in {owner["1_0"], *[m for m, x in plan.items() if "1_0" in x.standby]}
    assert not any(t in STATELESS for x in plan.values() for t in x.standby)


def test_assignor_warms_up_a_new_client_before_moving_state_to_it() -> None:
    """A stateful task moves only to a caught-up client: a new one gets warm-up replicas
    and a probing rebalance; once caught up, it takes the task."""
    running = set(STATEFUL)
    a = _member("a", "pa", running | set(STATELESS), dict.fromkeys(running, LATEST))
    b = _member("b", "pb")
    config = AssignorConfig(acceptable_recovery_lag=10, max_warmup_replicas=2,
                            probing_rebalance_interval_ms=5000)
    plan = assign(_space(), [a, b], config, 1000)
    assert set(STATEFUL) <= set(plan["a"].active)  # no stateful task moved yet
    warmups = set(plan["b"].standby)
    assert len(warmups) == 2 and warmups <= set(STATEFUL)
    assert plan["a"].probe_at_ms == plan["b"].probe_at_ms == 6000
    # the probe: b's warm-ups are within the acceptable lag now
    a2 = _member("a", "pa", set(plan["a"].active), dict.fromkeys(plan["a"].active, LATEST))
    b2 = _member("b", "pb", set(plan["b"].active), dict.fromkeys(warmups, 995),
                 standby=warmups)
    again = assign(_space(), [a2, b2], config, 7000)
    moved = warmups & set(again["b"].active)
    # cooperative: a still runs them this round, so b gets them in the round after
    assert not moved
    a3 = _member("a", "pa", set(again["a"].active), dict.fromkeys(again["a"].active, LATEST))
    b3 = _member("b", "pb", set(again["b"].active), dict.fromkeys(warmups, 995),
                 standby=warmups)
    assert warmups & set(again["a"].active) == set()  # a gives them up...
    final = assign(_space(), [a3, b3], config, 7100)
    assert warmups <= set(final["b"].active)  # ...and b takes them


def test_assignor_moves_a_stateful_task_at_once_to_a_caught_up_client() -> None:
    running = set(STATEFUL) | set(STATELESS)
    a = _member("a", "pa", running, dict.fromkeys(running, LATEST))
    b = _member("b", "pb", set(), dict.fromkeys(STATEFUL, 999))  # a standby kept up
    plan = assign(_space(), [a, b], AssignorConfig(), 0)
    assert plan["a"].probe_at_ms == 0
    # every task b is to get is still a's: held back this round (cooperative)
    assert plan["b"].active == []
    assert len(plan["a"].active) == 4


def test_assignor_never_gives_a_task_another_member_still_runs() -> None:
    a = _member("a", "pa", set(STATELESS) | set(STATEFUL),
                dict.fromkeys(STATEFUL, LATEST))
    b = _member("b", "pb")
    plan = assign(_space(end=5), [a, b], AssignorConfig(), 0)  # tiny state: b is caught up
    assert plan["b"].active == []
    kept = set(plan["a"].active)
    assert kept and len(kept) == 4  # the other four are revoked by a, then go to b
    after = assign(_space(end=5), [_member("a", "pa", kept, dict.fromkeys(kept, LATEST)),
                                   _member("b", "pb")], AssignorConfig(), 0)
    assert set(after["a"].active) == kept
    assert set(after["b"].active) == set(STATELESS + STATEFUL) - kept


def test_assignor_spreads_a_clients_tasks_over_its_threads() -> None:
    members = [_member("a-1", "pa"), _member("a-2", "pa"), _member("b-1", "pb")]
    plan = assign(_space(), members, AssignorConfig(), 0)
    counts = {m: len(a.active) for m, a in plan.items()}
    assert counts["a-1"] + counts["a-2"] > counts["b-1"]  # capacity 2 against 1
    assert abs(counts["a-1"] - counts["a-2"]) <= 1


def test_subscription_and_assignment_bytes_are_the_consumer_protocols() -> None:
    info = _member("", "proc-1", {"0_1"}, {"1_1": 17, "0_1": LATEST}, {"1_2"})
    data = encode_subscription(["a", "b"], info)
    version, topics = struct.unpack_from(">hi", data)
    assert (version, topics) == (0, 2)
    back = decode_subscription("m1", data)
    assert (back.member_id, back.process_id, back.active, back.standby, back.offset_sums) == \
        ("m1", "proc-1", {"0_1"}, {"1_2"}, {"1_1": 17, "0_1": LATEST})
    assignment = MemberAssignment(["0_1"], ["1_2"], 1234)
    raw = encode_assignment([("a", 1), ("b", 1)], assignment)
    partitions, decoded = decode_assignment(raw)
    assert partitions == [("a", 1), ("b", 1)] and decoded == assignment
    assert decode_assignment(b"") == ([], MemberAssignment())


def test_assignor_moves_only_what_a_new_client_takes() -> None:
    """Whatever the process ids' order, a new client takes tasks from the others and no
    task moves between the old ones (a kept task is never revoked)."""
    for names in (("pa", "pb", "pc"), ("pc", "pb", "pa"), ("pb", "pc", "pa")):
        had_a = {"0_0", "0_1", "1_2", "1_3"}
        had_b = set(STATELESS + STATEFUL) - had_a
        a = _member("a", names[0], had_a, dict.fromkeys(had_a & set(STATEFUL), LATEST))
        b = _member("b", names[1], had_b, dict.fromkeys(had_b & set(STATEFUL), LATEST))
        plan = assign(_space(end=5), [a, b, _member("c", names[2])], AssignorConfig(), 0)
        kept_a, kept_b = set(plan["a"].active), set(plan["b"].active)
        assert kept_a <= had_a and kept_b <= had_b and len(kept_a) == len(kept_b) == 3
        second = assign(_space(end=5), [
            _member("a", names[0], kept_a, dict.fromkeys(kept_a & set(STATEFUL), LATEST)),
            _member("b", names[1], kept_b, dict.fromkeys(kept_b & set(STATEFUL), LATEST)),
            _member("c", names[2])], AssignorConfig(), 0)
        assert set(second["a"].active) == kept_a and set(second["b"].active) == kept_b
        assert set(second["c"].active) == (had_a - kept_a) | (had_b - kept_b)

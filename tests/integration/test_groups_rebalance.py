"""Consumer groups rebalance through real clients: members die, leave, join and restart.

Members run as their own processes (`support.groups.MemberProcess`) so that SIGKILL is
real: the coordinator only learns of a killed member through its silence. Every member
logs its rebalance callbacks and each record it processed; the union of those logs must
cover every produced record (at-least-once, no gaps).

`gbroker` (tests/conftest.py): one broker per module, without the initial rebalance delay.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from support.broker_process import BrokerProcess
from support.clients import (
    admin,
    confluent_producer_conf,
    create_topic,
    end_offsets,
    produce_round_robin,
    unique_topic,
)
from support.groups import (
    MemberLog,
    MemberProcess,
    balanced,
    committed_by_partition,
    current_generation,
    describe_group,
    describe_members,
    find_coordinator,
    gaps,
    processed_union,
    raw,
    stop_all,
    wait_until,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PARTITIONS = 6
SESSION_MS = 6000
HEARTBEAT_MS = 1000


class SteadyProducer:
    """Produces round-robin over all partitions from a thread until stopped."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, per_tick: int = 6,
                 tick_s: float = 0.05) -> None:
        self.producer = Producer(confluent_producer_conf(bootstrap, **{"linger.ms": 5}))
        self.topic = topic
        self.partitions = partitions
        self.per_tick = per_tick
        self.tick_s = tick_s
        self.sent = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _report(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in range(self.per_tick):
                p = self.sent % self.partitions
                self.producer.produce(self.topic, b"v-%d" % self.sent, partition=p,
                                      on_delivery=self._report)
                self.sent += 1
            self.producer.poll(0)
            time.sleep(self.tick_s)

    def __enter__(self) -> SteadyProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            remaining = self.producer.flush(30)
            assert remaining == 0, f"{remaining} records not delivered"
            assert not self.errors, self.errors[:5]


def wait_balanced(members: list[MemberProcess], timeout: float, what: str) -> None:
    def ok() -> bool:
        for m in members:
            assert m.alive(), f"{m.name} died: {m.stderr()}"
        return balanced(members, PARTITIONS)

    wait_until(ok, timeout, what, detail=lambda: describe_members(members))


# --- a member dies, a member leaves --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_killed_member_partitions_move_and_nothing_is_lost(
    gbroker: BrokerProcess, tmp_path: Path, client: str
) -> None:
    """Three members on six partitions get two each. One is SIGKILLed mid-stream: its
    partitions move to the other two once its session times out. Then one closes
    (LeaveGroup): the last member owns everything. Every produced record was processed by
    someone, and the group's committed offsets end at the end of every partition."""
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic(f"grp-kill-{client}"), PARTITIONS)
    group = f"g-kill-{client}-{uuid.uuid4().hex[:6]}"
    produce_round_robin(bootstrap, topic, 300, PARTITIONS, value_prefix=b"seed-", linger_ms=5)
    members = [MemberProcess(client, bootstrap, group, topic, tmp_path, f"m{i}",
                             session_ms=SESSION_MS, heartbeat_ms=HEARTBEAT_MS, delay_ms=1)
               for i in range(3)]
    try:
        for m in members:
            m.start()
        wait_balanced(members, 60, "three members, two partitions each")
        assert sorted(len(m.log().assignment()) for m in members) == [2, 2, 2]

        with SteadyProducer(bootstrap, topic, PARTITIONS) as steady:
            wait_until(lambda: all(len(m.log().processed()) > 50 for m in members), 30,
                       "every member processes records", detail=lambda: describe_members(members))
            victim, survivors = members[0], members[1:]
            victim_parts = victim.log().assignment()
            killed_at = time.time()
            victim.kill()
            # Partitions move once the coordinator expires the silent member: its session
            # timeout, plus one heartbeat interval for the survivors to rejoin.
            wait_balanced(survivors, SESSION_MS / 1000 + 15,
                          f"survivors take over {sorted(victim_parts)} after SIGKILL")
            assert sorted(len(m.log().assignment()) for m in survivors) == [3, 3]
            client_admin = admin(bootstrap)
            desc = client_admin.describe_consumer_groups([group], request_timeout=15)[group].result(30)
            assert len(desc.members) == 2, "the killed member is gone from the group"
            assert sorted(sorted(tp.partition for tp in m.assignment.topic_partitions)
                          for m in desc.members) == sorted(
                sorted(m.log().assignment()) for m in survivors)
            # Records produced to the victim's partitions after the kill get processed.
            victim_done = MemberLog.read(victim.log_path).processed()
            marks = {p: max((o for q, o in victim_done if q == p), default=-1)
                     for p in victim_parts}
            wait_until(lambda: all(
                any(q == p and o > marks[p] + 20 for m in survivors for q, o in m.log().processed())
                for p in victim_parts), 30, "survivors process the victim's partitions")

            leaver, last = survivors
            assert leaver.close() == 0
            assert leaver.log().has("closed")
            wait_balanced([last], 30, "the last member owns every partition after a LeaveGroup")
            steady.stop()
            assert steady.sent > 0

        ends = end_offsets(bootstrap, topic, range(PARTITIONS))
        wait_until(lambda: not gaps(processed_union(m.log() for m in members), ends), 60,
                   "the group processes every record",
                   detail=lambda: f"gaps {gaps(processed_union(m.log() for m in members), ends)}")
        logs = [m.log() for m in members]
        assert not gaps(processed_union(logs), ends)

        # The takeover resumed no earlier than what the victim had committed (committed
        # records are not re-read) and at most one record past what it processed (no gap).
        victim_log = logs[0]
        victim_committed = victim_log.committed()
        for p in victim_parts:
            processed_by_victim = max((o for q, o in victim_log.processed() if q == p), default=-1)
            resumed = min(e["o"] for log in logs[1:] for e in log.events
                          if e["ev"] == "rec" and e["p"] == p and e["t"] > killed_at)
            assert victim_committed.get(p, 0) <= resumed <= processed_by_victim + 1, (
                p, victim_committed.get(p), processed_by_victim, resumed)

        def committed() -> dict[int, int]:
            return committed_by_partition(bootstrap, group, topic, PARTITIONS, check_errors=False)

        wait_until(lambda: committed() == ends, 30,
                   "committed offsets reach the end of every partition",
                   detail=lambda: f"{committed()} vs {ends}")
        assert last.close() == 0
        with raw(bootstrap) as c:
            assert describe_group(c, group).group_state == "Empty"
        assert gbroker.is_alive()
    finally:
        stop_all(members)


# --- cooperative-sticky: incremental rebalances ---------------------------------------------


@pytest.mark.slow
def test_cooperative_sticky_moves_only_what_it_must(gbroker: BrokerProcess, tmp_path: Path) -> None:
    """With cooperative-sticky, a joining member takes partitions from the others without
    them giving up the rest: each revoke names exactly the partitions that moved, and a
    member that leaves only adds partitions to the others (no revokes)."""
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-coop"), PARTITIONS)
    group = f"g-coop-{uuid.uuid4().hex[:6]}"
    produce_round_robin(bootstrap, topic, 120, PARTITIONS, value_prefix=b"seed-", linger_ms=5)

    def member(name: str) -> MemberProcess:
        return MemberProcess("confluent", bootstrap, group, topic, tmp_path, name,
                             session_ms=SESSION_MS, heartbeat_ms=HEARTBEAT_MS,
                             assignor="cooperative-sticky")

    a, b, c = member("a"), member("b"), member("c")
    try:
        a.start()
        wait_balanced([a], 60, "a alone owns all six partitions")
        assert a.log().callbacks() == [("assign", list(range(PARTITIONS)))]

        b.start()
        wait_balanced([a, b], 60, "a and b share the partitions")
        a_after_b = a.log().assignment()
        b_owned = b.log().assignment()
        assert len(a_after_b) == len(b_owned) == 3
        revoked_from_a = [parts for ev, parts in a.log().callbacks()[1:] if ev == "revoke"]
        assert [set(r) for r in revoked_from_a if r] == [b_owned], a.log().callbacks()
        assert all(ev != "lost" for ev, _ in a.log().callbacks())

        marks = {m.name: len(m.log().callbacks()) for m in (a, b)}
        before = {m.name: m.log().assignment() for m in (a, b)}
        c.start()
        wait_balanced([a, b, c], 60, "a, b and c share the partitions")
        c_owned = c.log().assignment()
        assert len(c_owned) == 2
        moved: set[int] = set()
        for m in (a, b):
            after = m.log().assignment()
            new_callbacks = m.log().callbacks()[marks[m.name]:]
            revoked = {p for ev, parts in new_callbacks if ev == "revoke" for p in parts}
            assigned = {p for ev, parts in new_callbacks if ev == "assign" for p in parts}
            assert revoked == before[m.name] - after, (m.name, new_callbacks)
            assert not assigned, (m.name, new_callbacks)  # nothing comes back to a and b
            assert len(after) == 2 and after <= before[m.name]
            moved |= revoked
        assert moved == c_owned

        marks = {m.name: len(m.log().callbacks()) for m in (a, b)}
        before = {m.name: m.log().assignment() for m in (a, b)}
        assert c.close() == 0
        wait_balanced([a, b], 60, "a and b take back c's partitions")
        gained: set[int] = set()
        for m in (a, b):
            new_callbacks = m.log().callbacks()[marks[m.name]:]
            assert all(ev == "assign" for ev, _ in new_callbacks), (m.name, new_callbacks)
            assert before[m.name] <= m.log().assignment()
            gained |= {p for _, parts in new_callbacks for p in parts}
        assert gained == c_owned

        # The group still delivers: new records on every partition reach a or b.
        produce_round_robin(bootstrap, topic, 60, PARTITIONS, value_prefix=b"seed-", linger_ms=5)
        ends = end_offsets(bootstrap, topic, range(PARTITIONS))
        wait_until(lambda: not gaps(processed_union(m.log() for m in (a, b, c)), ends), 30,
                   "every record processed")
    finally:
        stop_all([a, b, c])


# --- static membership -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_static_member_restart_causes_no_rebalance(gbroker: BrokerProcess, tmp_path: Path,
                                                   client: str) -> None:
    """Each of three static members in turn closes (a static member sends no LeaveGroup
    on close) and comes back with the same group.instance.id within its session
    timeout: no rebalance — the others' callbacks do not run, the generation stays, and
    the returning member gets its old partitions. Restarting every member in turn
    restarts the leader too."""
    bootstrap = gbroker.bootstrap
    topic = create_topic(bootstrap, unique_topic(f"grp-static-{client}"), PARTITIONS)
    group = f"g-static-{client}-{uuid.uuid4().hex[:6]}"
    produce_round_robin(bootstrap, topic, 60, PARTITIONS, value_prefix=b"seed-", linger_ms=5)
    session_ms = 30_000

    def member(i: int, run: int) -> MemberProcess:
        return MemberProcess(client, bootstrap, group, topic, tmp_path, f"s{i}-run{run}",
                             session_ms=session_ms, heartbeat_ms=HEARTBEAT_MS,
                             instance_id=f"instance-{i}")

    members = [member(i, 0) for i in range(3)]
    everyone = list(members)
    try:
        for m in members:
            m.start()
        wait_balanced(members, 60, "three static members, two partitions each")
        with raw(bootstrap) as rc:
            find_coordinator(rc, group)
            described = describe_group(rc, group)
            assert described.group_state == "Stable"
            ids = {m.group_instance_id: m.member_id for m in described.members}
            assert set(ids) == {"instance-0", "instance-1", "instance-2"}
            generation = current_generation(rc, group, ids["instance-1"])

            for i in range(3):
                old = members[i]
                old_parts = old.log().assignment()
                others = [m for m in members if m is not old]
                marks = {m.name: m.log().callbacks() for m in others}
                assert old.close() == 0

                described = describe_group(rc, group)
                assert described.group_state == "Stable"
                assert {m.group_instance_id: m.member_id for m in described.members} == ids, (
                    "a closed static member stays in the group until its session expires")

                new = member(i, 1)
                everyone.append(new)
                members[i] = new
                new.start()
                wait_until(lambda new=new: new.log().assignment(), 30,
                           f"restarted instance-{i} gets an assignment")
                assert new.log().assignment() == old_parts

                produce_round_robin(bootstrap, topic, 60, PARTITIONS, value_prefix=b"seed-", linger_ms=5)
                ends = end_offsets(bootstrap, topic, range(PARTITIONS))
                wait_until(lambda ends=ends: not gaps(processed_union(m.log() for m in everyone),
                                                      ends), 30,
                           "records on every partition are processed",
                           detail=lambda: describe_members(members))
                for m in others:
                    assert m.log().callbacks() == marks[m.name], (
                        f"{m.name} saw a rebalance when instance-{i} restarted")
                described = describe_group(rc, group)
                assert described.group_state == "Stable"
                now = {m.group_instance_id: m.member_id for m in described.members}
                assert set(now) == set(ids)
                assert now[f"instance-{i}"] != ids[f"instance-{i}"]
                ids = now
                other = ids[f"instance-{(i + 1) % 3}"]
                assert current_generation(rc, group, other) == generation
    finally:
        stop_all(everyone)


# --- the initial rebalance delay -----------------------------------------------------------------


def test_initial_rebalance_delay_forms_group_in_one_generation(broker: BrokerProcess) -> None:
    """With the default group.initial.rebalance.delay.ms (3 s), consumers that start
    together are assigned in one rebalance: each gets one assignment, generation 1."""
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-delay"), PARTITIONS)
    group = f"g-delay-{uuid.uuid4().hex[:6]}"
    calls: dict[int, list[tuple[str, list[int]]]] = {i: [] for i in range(3)}

    def on_assign(i: int) -> Any:
        return lambda c, tps: calls[i].append(("assign", sorted(tp.partition for tp in tps)))

    def on_revoke(i: int) -> Any:
        return lambda c, tps: calls[i].append(("revoke", sorted(tp.partition for tp in tps)))

    consumers = [Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "socket.timeout.ms": 10000,
    }) for _ in range(3)]
    try:
        for i, c in enumerate(consumers):
            c.subscribe([topic], on_assign=on_assign(i), on_revoke=on_revoke(i))

        def formed() -> bool:
            for c in consumers:
                c.poll(0.05)
            return all(calls[i] for i in calls)

        wait_until(formed, 30, "all three consumers assigned", interval=0)
        for _ in range(20):  # a little more polling would surface a second rebalance
            for c in consumers:
                c.poll(0.05)
        assert [len(calls[i]) for i in calls] == [1, 1, 1], calls
        assigned = [set(calls[i][0][1]) for i in calls]
        assert sorted(p for a in assigned for p in a) == list(range(PARTITIONS))
        assert [len(a) for a in assigned] == [2, 2, 2]
        with raw(bootstrap) as client:
            described = describe_group(client, group)
            assert described.group_state == "Stable"
            assert len(described.members) == 3
            assert current_generation(client, group, described.members[0].member_id) == 1
    finally:
        for c in consumers:
            c.close()

"""Members that go quiet in the middle of the classic protocol, spoken directly: one that
never rejoins a rebalance, a leader that never sends SyncGroup, a new member that never
comes back with the id it was given. The coordinator must finish the rebalance without
them (after the rebalance timeout), and the rest of the group must carry on.

`gbroker` (tests/conftest.py): one broker per module, without the initial rebalance delay.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from kio.schema.errors import ErrorCode

from support.broker_process import BrokerProcess
from support.clients import create_topic, unique_topic
from support.groups import (
    RawMember,
    assert_intact,
    close_members,
    describe_group,
    form_group,
    heartbeat,
    join,
    join_new,
    new_group,
    raw,
    subscription,
    sync,
    wait_until,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

E = ErrorCode
REBALANCE_MS = 3000
SESSION_MS = 30_000  # long: only the rebalance timeout may remove anyone here


@pytest.fixture(scope="module")
def topic(gbroker: BrokerProcess) -> str:
    return create_topic(gbroker.bootstrap, unique_topic("grp-timeouts"), 3)


class Heartbeater:
    """Heartbeats for one member from a thread, recording every error code it gets."""

    def __init__(self, bootstrap: str, group: str, member: RawMember) -> None:
        self.client = raw(bootstrap)
        self.group = group
        self.member = member
        self.codes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.codes.append(heartbeat(self.client, self.group, self.member.generation,
                                        self.member.member_id))
            if self.codes[-1] == E.unknown_member_id:
                return
            time.sleep(0.3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()


def test_member_that_does_not_rejoin_is_removed(gbroker: BrokerProcess, topic: str) -> None:
    """A newcomer starts a rebalance; one old member keeps heartbeating but never rejoins.
    When the rebalance timeout passes the coordinator completes the generation without
    it, and its heartbeats turn to UNKNOWN_MEMBER_ID."""
    bootstrap = gbroker.bootstrap
    group = new_group("norejoin")
    a, b = form_group(bootstrap, group, topic, session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
    laggard = Heartbeater(bootstrap, group, b)
    newcomer = raw(bootstrap)
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        joining = pool.submit(join_new, newcomer, group, topics=[topic], session_ms=SESSION_MS,
                              rebalance_ms=REBALANCE_MS)
        wait_until(lambda: heartbeat(a.client, group, a.generation, a.member_id)
                   == E.rebalance_in_progress, 10, "the newcomer starts a rebalance")
        rejoined = join(a.client, group, member_id=a.member_id, topics=[topic],
                        session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
        c = joining.result(30)
        assert rejoined.error_code == c.error_code == E.none
        assert rejoined.generation_id == c.generation_id == a.generation + 1
        assert rejoined.leader == a.member_id
        assert sorted(m.member_id for m in rejoined.members) == sorted([a.member_id, c.member_id])
        wait_until(lambda: laggard.codes and laggard.codes[-1] == E.unknown_member_id, 10,
                   "the laggard is told it is gone")
        assert E.rebalance_in_progress in laggard.codes  # it was told, and did not rejoin
        late = join(b.client, group, member_id=b.member_id, topics=[topic],
                    session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
        assert late.error_code == E.unknown_member_id

        follower = pool.submit(sync, newcomer, group, c.generation_id, c.member_id)
        plan = {a.member_id: b"A", c.member_id: b"C"}
        assert bytes(sync(a.client, group, rejoined.generation_id, a.member_id, plan).assignment) == b"A"
        assert bytes(follower.result(20).assignment) == b"C"
        a.generation, a.assignment = rejoined.generation_id, b"A"
        members = [a, RawMember(newcomer, c.member_id, c.generation_id, b"C")]
        assert_intact(gbroker, group, members)
        close_members(group, members)
    finally:
        laggard.stop()
        pool.shutdown(wait=False)


def test_leader_that_never_syncs(gbroker: BrokerProcess, topic: str) -> None:
    """After a join phase the leader never sends SyncGroup. At the rebalance timeout the
    coordinator drops it, answers the waiting followers REBALANCE_IN_PROGRESS, and the
    followers form the next generation without it."""
    bootstrap = gbroker.bootstrap
    group = new_group("nosync")
    a, b = form_group(bootstrap, group, topic, session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
    newcomer = raw(bootstrap)
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        joining = pool.submit(join_new, newcomer, group, topics=[topic], session_ms=SESSION_MS,
                              rebalance_ms=REBALANCE_MS)
        for m in (a, b):
            wait_until(lambda m=m: heartbeat(m.client, group, m.generation, m.member_id)
                       == E.rebalance_in_progress, 10, "rebalance starts")
        b_join = pool.submit(join, b.client, group, member_id=b.member_id, topics=[topic],
                             session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
        a_join = join(a.client, group, member_id=a.member_id, topics=[topic],
                      session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
        c, b_joined = joining.result(20), b_join.result(20)
        assert a_join.leader == a.member_id and len(a_join.members) == 3
        generation = a_join.generation_id
        with raw(bootstrap) as probe:
            assert describe_group(probe, group).group_state == "CompletingRebalance"

        # The followers wait for the leader's assignment, which never comes.
        b_sync = pool.submit(sync, b.client, group, generation, b.member_id)
        c_sync = pool.submit(sync, newcomer, group, generation, c.member_id)
        assert b_sync.result(30).error_code == E.rebalance_in_progress
        assert c_sync.result(30).error_code == E.rebalance_in_progress
        assert heartbeat(a.client, group, generation, a.member_id) == E.unknown_member_id

        # They rejoin and form the next generation, one of them leading.
        b_next = pool.submit(join, b.client, group, member_id=b.member_id, topics=[topic],
                             session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
        c_next = join(newcomer, group, member_id=c.member_id, topics=[topic],
                      session_ms=SESSION_MS, rebalance_ms=REBALANCE_MS)
        b_res = b_next.result(20)
        assert c_next.error_code == b_res.error_code == E.none
        assert c_next.generation_id == b_res.generation_id > generation
        assert c_next.leader == b_res.leader in (b.member_id, c.member_id)
        leader_members = c_next.members or b_res.members
        assert sorted(m.member_id for m in leader_members) == sorted([b.member_id, c.member_id])
        members = [RawMember(b.client, b.member_id, b_res.generation_id, b"B"),
                   RawMember(newcomer, c.member_id, c_next.generation_id, b"C")]
        leader = next(m for m in members if m.member_id == c_next.leader)
        other = next(m for m in members if m is not leader)
        waiting = pool.submit(sync, other.client, group, other.generation, other.member_id)
        plan = {m.member_id: m.assignment for m in members}
        assert sync(leader.client, group, leader.generation, leader.member_id,
                    plan).error_code == E.none
        assert bytes(waiting.result(20).assignment) == other.assignment
        assert_intact(gbroker, group, members)
        close_members(group, members)
        assert b_joined.error_code == E.none
    finally:
        pool.shutdown(wait=False)
        a.client.close()


def test_pending_member_does_not_disturb_a_stable_group(gbroker: BrokerProcess,
                                                        topic: str) -> None:
    """A client that gets MEMBER_ID_REQUIRED and never returns is not a member: the group
    stays Stable at its generation, and the id it was given is no good once it expires."""
    bootstrap = gbroker.bootstrap
    group = new_group("pending")
    members = form_group(bootstrap, group, topic)
    with raw(bootstrap) as c:
        first = join(c, group, topics=[topic], session_ms=6000)
        assert first.error_code == E.member_id_required
        assert describe_group(c, group).group_state == "Stable"
        assert len(describe_group(c, group).members) == 2
    assert_intact(gbroker, group, members)
    with raw(bootstrap) as c:
        # Its session (6 s) passes while the members keep heartbeating undisturbed.
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            for m in members:
                assert heartbeat(m.client, group, m.generation, m.member_id) == E.none
            time.sleep(1)
        late = join(c, group, member_id=first.member_id,
                    protocols=[("range", subscription([topic]))])
        assert late.error_code == E.unknown_member_id
    assert_intact(gbroker, group, members)
    close_members(group, members)

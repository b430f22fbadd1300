"""Property: the records live operations wrote rebuild the state those operations made.

Hypothesis drives a few simulated clients (two dynamic members, two static ones, a
simple committer) through joins, syncs, heartbeats, leaves, commits, deletions, expiry,
dropped connections, restarts and the passing of time, against a pure shard. Then a fresh shard
loads the records the operations wrote (through the bytes and the loader, as a new
coordinator would) and must hold:

* the same committed offsets for every group;
* every group at rest (Stable or Empty) exactly as it is live: generation, protocol,
  leader, members with their selected-protocol metadata and assignment, static members;
* no group the live shard does not have (a vacant one aside).

A group in the middle of a rebalance is not compared: like Kafka, a new coordinator
resumes from its last completed generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from strom.coordinator.group.membership import JoinRequest
from strom.coordinator.group.model import Group, GroupState, JoinResult, SyncResult
from strom.coordinator.group.offsets import OffsetCommit
from strom.coordinator.runtime import Pending

from .fakes import ShardHarness

S = GroupState
SUB_A = b"\x00\x01\x00\x00\x00\x01\x00\x06orders"
SUB_B = b"\x00\x01\x00\x00\x00\x02\x00\x06orders\x00\x05other"
PROTOCOLS = ([("range", SUB_A)], [("roundrobin", SUB_B), ("range", SUB_B)])
INSTANCES = (None, None, "i2", "i3")


@dataclass
class Client:
    """A consumer as the coordinator sees it: what it knows, what it waits for."""

    index: int
    variant: int = 0  # which protocols it offers
    member_id: str = ""
    generation: int = -1
    leader: bool = False
    peers: tuple[str, ...] = ()
    synced: bool = False
    join: Pending | None = None
    sync: Pending | None = None

    def reset(self) -> None:
        self.member_id, self.generation, self.synced = "", -1, False

    def joined(self, answer: JoinResult) -> None:
        if answer.error in (ErrorCode.unknown_member_id, ErrorCode.fenced_instance_id):
            self.reset()
        elif answer.error in (ErrorCode.none, ErrorCode.member_id_required):
            self.member_id = answer.member_id
        if answer.error == ErrorCode.none:
            self.generation, self.synced = answer.generation_id, False
            self.leader = answer.leader == answer.member_id
            self.peers = tuple(m for m, _, _ in answer.members)

    def told(self, error: str) -> None:
        """An error on SyncGroup or Heartbeat: rejoin, or start over as Kafka clients do."""
        if error in (ErrorCode.unknown_member_id, ErrorCode.fenced_instance_id, ErrorCode.illegal_generation):
            self.reset()
        elif error == ErrorCode.rebalance_in_progress:
            self.generation, self.synced = -1, False


class World:
    def __init__(self) -> None:
        self.h = ShardHarness(delay_ms=1000, topics={"orders", "other"}, retention_ms=30_000)
        self.clients = [Client(i) for i in range(len(INSTANCES))]

    def settle(self) -> None:
        """Hand out the answers that arrived."""
        for c in self.clients:
            if c.join is not None and (answer := self.h.answers.pop(c.join.token, None)):
                c.join = None
                c.joined(answer)
            if c.sync is not None and (answer := self.h.answers.pop(c.sync.token, None)):
                c.sync = None
                assert isinstance(answer, SyncResult)
                c.synced = answer.error == ErrorCode.none
                c.told(answer.error)

    def act_all(self, indexes: frozenset[int]) -> None:
        """Some clients act, then a little time passes (clients act over time)."""
        for c in self.clients:
            if c.index in indexes:
                self.act(c)
                self.settle()
        self.h.advance(0.7)

    def act(self, c: Client) -> None:
        """What the client does next: join, sync or heartbeat (nothing while it waits)."""
        if c.join is not None or c.sync is not None:
            return
        if not c.member_id or c.generation < 0:
            self.join(c, c.variant)
        elif not c.synced:
            self.sync(c)
        else:
            self.heartbeat(c)

    def join(self, c: Client, variant: int) -> None:
        req = JoinRequest("g", c.member_id, INSTANCES[c.index], f"c{c.index}", "/h", 10_000,
                          8_000, "consumer", PROTOCOLS[variant], require_known_member_id=True)
        response = self.h.run(self.h.shard.join(req))
        if isinstance(response, Pending):
            c.join = response
        else:
            c.joined(response)

    def sync(self, c: Client) -> None:
        if not c.member_id:
            return
        assignments = {m: f"{m}@{c.generation}".encode() for m in c.peers} if c.leader else {}
        response = self.h.run(self.h.shard.sync("g", c.generation, c.member_id,
                                                INSTANCES[c.index], None, None, assignments))
        if isinstance(response, Pending):
            c.sync = response
        else:
            c.synced = response.error == ErrorCode.none
            c.told(response.error)

    def heartbeat(self, c: Client) -> None:
        if c.member_id:
            c.told(self.h.run(self.h.shard.heartbeat("g", c.generation, c.member_id,
                                                     INSTANCES[c.index])))

    def leave(self, c: Client) -> None:
        if c.member_id or INSTANCES[c.index]:
            self.h.run(self.h.shard.leave("g", [(c.member_id, INSTANCES[c.index])]))
            c.reset()

    def commit(self, c: Client | None, topic: str, offset: int) -> None:
        if c is None:
            group, generation, member, instance = "simple", -1, "", None
        else:
            group, generation, member, instance = ("g", c.generation, c.member_id,
                                                   INSTANCES[c.index])
        self.h.run(self.h.shard.commit(group, generation, member, instance,
                                       [OffsetCommit(topic, offset % 3, offset, -1, "m")]))

    def disconnect(self, c: Client) -> None:
        """The client's connection closed while it waited: the runtime abandons it."""
        for pending in (c.join, c.sync):
            if pending is not None and pending.token not in self.h.answers:
                self.h.shard.abandon(pending.token)
        c.join = c.sync = None

    def restart(self, c: Client) -> None:
        """The client's process restarts: it forgets its member id (not its instance id)."""
        self.disconnect(c)
        c.reset()
        self.join(c, c.variant)

    def step(self, step: tuple[Any, ...]) -> None:
        kind, args = step[0], step[1:]
        clients = self.clients
        actions = {
            "act": lambda: self.act_all(args[0]),
            "switch": lambda: setattr(clients[args[0]], "variant", 1 - clients[args[0]].variant),
            "join": lambda: self.join(clients[args[0]], clients[args[0]].variant),
            "sync": lambda: self.sync(clients[args[0]]),
            "heartbeat": lambda: self.heartbeat(clients[args[0]]),
            "leave": lambda: self.leave(clients[args[0]]),
            "commit": lambda: self.commit(clients[args[0]], args[1], args[2]),
            "simple_commit": lambda: self.commit(None, args[0], args[1]),
            "delete_offsets": lambda: self.h.run(self.h.shard.delete_offsets(
                args[0], [(args[1], 0), (args[1], 1), (args[1], 2)])),
            "delete_group": lambda: self.h.run(self.h.shard.delete_group(args[0])),
            "expire": lambda: self.h.run(self.h.shard.expire_offsets()),
            "disconnect": lambda: self.disconnect(clients[args[0]]),
            "restart": lambda: self.restart(clients[args[0]]),
            "advance": lambda: self.h.advance(args[0]),
        }
        actions[kind]()
        self.settle()


CLIENT = st.integers(0, len(INSTANCES) - 1)
TOPIC = st.sampled_from(["orders", "other"])
GROUP = st.sampled_from(["g", "simple"])
STEP = st.one_of(
    st.tuples(st.just("act"), st.frozensets(CLIENT, min_size=1)),
    st.tuples(st.just("act"), st.frozensets(CLIENT, min_size=1)),
    st.tuples(st.just("act"), st.frozensets(CLIENT, min_size=1)),
    st.tuples(st.just("switch"), CLIENT),
    st.tuples(st.just("join"), CLIENT),
    st.tuples(st.just("sync"), CLIENT),
    st.tuples(st.just("heartbeat"), CLIENT),
    st.tuples(st.just("leave"), CLIENT),
    st.tuples(st.just("commit"), CLIENT, TOPIC, st.integers(0, 1000)),
    st.tuples(st.just("simple_commit"), TOPIC, st.integers(0, 1000)),
    st.tuples(st.just("delete_offsets"), GROUP, TOPIC),
    st.tuples(st.just("delete_group"), GROUP),
    st.tuples(st.just("expire")),
    st.tuples(st.just("disconnect"), CLIENT),
    st.tuples(st.just("restart"), CLIENT),
    st.tuples(st.just("advance"), st.sampled_from([0.5, 1.5, 3.0, 4.0, 9.0, 12.0, 40.0])),
)


def _at_rest_view(group: Group) -> tuple[Any, ...]:
    protocol = group.protocol_name or ""
    members = [(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                m.session_timeout_ms, m.rebalance_timeout_ms, m.metadata_for(protocol),
                m.assignment) for m in group.members.values()]
    empty_since = group.state_timestamp if group.is_(S.EMPTY) and group.protocol_type else None
    return (group.state, group.generation_id, group.protocol_type, group.protocol_name,
            group.leader_id, group.static_members, members, empty_since)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=10, max_size=100))
def test_replaying_what_operations_wrote_rebuilds_what_they_did(steps: list[tuple[Any, ...]]
                                                               ) -> None:
    world = World()
    for step in steps:
        world.step(step)
    live = world.h.shard.groups
    loaded = world.h.reload().groups
    for group_id in set(live) | set(loaded):
        group, reloaded = live.get(group_id), loaded.get(group_id)
        assert (group.offsets if group else {}) == (reloaded.offsets if reloaded else {})
        if group is None or group.is_vacant():
            assert reloaded is None
        elif group.is_(S.STABLE, S.EMPTY):
            assert reloaded is not None
            assert _at_rest_view(reloaded) == _at_rest_view(group)


def test_the_simulation_reaches_stable_groups() -> None:
    """Guard for the property: its clients do reach a stable generation."""
    world = World()
    for step in [("act", {0, 2}), ("act", {0}), ("advance", 4.0), ("act", {0, 2})]:
        world.step(step)
    group = world.h.shard.groups["g"]
    assert group.state is S.STABLE and len(group.members) == 2
    assert {m.assignment for m in group.members.values()} == {
        f"{m}@1".encode() for m in group.members}

"""Distributed mode's group membership on a real Strom broker: two workers join one
`connect` group, the leader's assignment reaches the follower, and a member leaving makes
the other rejoin alone."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from strom.client.group_member import GroupMember, JoinResult
from strom.connect.runtime.distributed.protocol import (
    Assignment,
    WorkerState,
    decode_assignment,
    decode_metadata,
    encode_assignment,
    encode_metadata,
)
from strom.testing import StromBroker


def assign(protocol: str, members: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    """Each member gets a connector named after the URL in its metadata."""
    plan = {}
    for member_id, metadata in members:
        url = decode_metadata(metadata).url
        plan[member_id] = encode_assignment(Assignment(2, 0, "leader", "http://leader/", 0,
                                                       connectors=(f"for {url}",)))
    return plan


def member(bootstrap: str, url: str) -> tuple[GroupMember, list[tuple[str, bytes]]]:
    state = encode_metadata(WorkerState(2, url, 0))
    return (GroupMember(bootstrap, "connect-member-test", session_timeout_ms=6000,
                        rebalance_timeout_ms=5000), [("sessioned", state), ("default", state)])


def test_two_workers_share_a_group(strom_broker: StromBroker) -> None:
    joined: dict[str, JoinResult] = {}
    members = {url: member(strom_broker.bootstrap_servers, url) for url in ("http://w1/", "http://w2/")}

    settled = threading.Event()

    def stable() -> bool:
        generations = {r.generation for r in joined.values()}
        return len(joined) == 2 and len(generations) == 1

    def join(url: str) -> None:
        """Join, then heartbeat and rejoin as a worker does until both share a generation."""
        group_member, protocols = members[url]
        joined[url] = group_member.join(protocols, assign)
        while not settled.is_set():
            if stable():
                settled.set()
            elif not group_member.heartbeat():
                joined[url] = group_member.join(protocols, assign)
            settled.wait(0.1)

    threads = [threading.Thread(target=join, args=(url,)) for url in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert settled.is_set()
    assert {r.generation for r in joined.values()} == {joined["http://w1/"].generation}
    assert sorted(r.is_leader for r in joined.values()) == [False, True]
    assert {r.protocol for r in joined.values()} == {"sessioned"}
    for url, result in joined.items():
        assert decode_assignment(result.assignment).connectors == (f"for {url}",)

    first, first_protocols = members["http://w1/"]
    second, _ = members["http://w2/"]
    second.leave()
    while first.heartbeat():
        pass
    alone = first.join(first_protocols, assign)
    assert alone.is_leader and [m for m, _ in alone.members] == [alone.member_id]
    assert alone.generation > joined["http://w1/"].generation
    first.leave()
    first.close()
    second.close()

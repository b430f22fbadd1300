"""The classic rebalance protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, expiry.

Rules follow Kafka's classic GroupCoordinator:

* First join without a member id (v4+): the coordinator mints one and answers
  MEMBER_ID_REQUIRED; the client joins again with it. Static members
  (`group.instance.id`) skip that step.
* A rebalance (PreparingRebalance) ends when every known member has rejoined or the
  largest rebalance timeout passes; members that did not rejoin are removed. An empty
  group's first rebalance waits `group.initial.rebalance.delay.ms`, extended while new
  members keep arriving, so a starting fleet does not rebalance once per member.
* The leader's SyncGroup carries the assignment; it is persisted, the group becomes
  Stable, and every waiting member gets its part.
* A member that stops heartbeating for its session timeout is removed and the group
  rebalances. Members waiting for a join or sync answer are kept alive.
* A static member that rejoins (a restarted process, same instance id) takes over its
  old member's place and assignment; if its protocols are unchanged, the group stays
  Stable: no rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from strom.coordinator.group.config import GroupConfig, Scheduler
from strom.coordinator.group.model import Group, GroupState, JoinResult, Member, SyncResult

log = logging.getLogger(__name__)
S = GroupState


@dataclass(frozen=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    require_known_member_id: bool

    def new_member(self, member_id: str) -> Member:
        return Member(member_id, self.group_instance_id, self.client_id, self.client_host,
                      self.session_timeout_ms, self.rebalance_timeout_ms, self.protocol_type,
                      list(self.protocols))


class Membership:
    """Drives groups through rebalances. `persist` writes a group's metadata record."""

    def __init__(
        self,
        config: GroupConfig,
        scheduler: Scheduler,
        clock: Callable[[], int],
        persist: Callable[[Group], str],
        durable: Callable[[Group], Awaitable[str]],
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.clock = clock
        self.persist = persist
        self.durable = durable

    # --- JoinGroup --------------------------------------------------------------------

    async def join(self, group: Group, req: JoinRequest) -> JoinResult:
        if group.is_(S.DEAD):
            return JoinResult("coordinator_not_available", member_id=req.member_id)
        if not group.supports(req.protocol_type, [n for n, _ in req.protocols]):
            return JoinResult("inconsistent_group_protocol", member_id=req.member_id)
        if req.member_id == "":
            return await self._join_unknown(group, req)
        return await self._join_known(group, req)

    async def _join_unknown(self, group: Group, req: JoinRequest) -> JoinResult:
        new_id = f"{req.client_id}-{uuid.uuid4()}"
        if req.group_instance_id is not None:
            old_id = group.static_members.get(req.group_instance_id)
            if old_id is not None and old_id in group.members:
                return await self._replace_static_member(group, old_id, new_id, req)
        elif req.require_known_member_id:
            if len(group.members) + len(group.pending_members) >= self.config.max_group_size:
                return JoinResult("group_max_size_reached")
            group.pending_members.add(new_id)
            self.scheduler.call_later(req.session_timeout_ms / 1000,
                                      lambda: self._expire_pending(group, new_id))
            return JoinResult("member_id_required", member_id=new_id)
        return await self._add_and_rebalance(group, new_id, req)

    async def _join_known(self, group: Group, req: JoinRequest) -> JoinResult:
        member_id = req.member_id
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            return await self._add_and_rebalance(group, member_id, req)
        # Fencing first (as Kafka): a replaced static member must stop, not rejoin.
        if self._fenced(group, member_id, req.group_instance_id):
            return JoinResult("fenced_instance_id", member_id=member_id)
        member = group.members.get(member_id)
        if member is None or group.is_(S.EMPTY):
            return JoinResult("unknown_member_id", member_id=member_id)
        changed = member.protocols != req.protocols
        if group.is_(S.PREPARING_REBALANCE):
            return await self._rejoin(group, member, req)
        if group.is_(S.COMPLETING_REBALANCE):
            if not changed:
                return self._current_generation(group, member)
            return await self._rejoin(group, member, req, rebalance=True)
        if member_id == group.leader_id or changed:
            return await self._rejoin(group, member, req, rebalance=True)
        return self._current_generation(group, member)

    async def _add_and_rebalance(self, group: Group, member_id: str, req: JoinRequest) -> JoinResult:
        if len(group.members) >= self.config.max_group_size:
            return JoinResult("group_max_size_reached", member_id=member_id)
        member = req.new_member(member_id)
        member.is_new = True
        member.join_waiter = asyncio.get_running_loop().create_future()
        group.members[member_id] = member
        if req.group_instance_id is not None:
            group.static_members[req.group_instance_id] = member_id
        if group.leader_id is None:
            group.leader_id = member_id
        waiter = member.join_waiter
        if group.is_(S.PREPARING_REBALANCE):
            self._maybe_complete_join(group)
        else:
            self.prepare_rebalance(group, f"member {member_id} joined")
        return await waiter

    async def _rejoin(self, group: Group, member: Member, req: JoinRequest,
                      rebalance: bool = False) -> JoinResult:
        member.protocols = list(req.protocols)
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.join_waiter = asyncio.get_running_loop().create_future()
        waiter = member.join_waiter
        if rebalance:
            self.prepare_rebalance(group, f"member {member.member_id} rejoined")
        else:
            self._maybe_complete_join(group)
        return await waiter

    async def _replace_static_member(self, group: Group, old_id: str, new_id: str,
                                     req: JoinRequest) -> JoinResult:
        old = group.members.pop(old_id)
        self._cancel_expiry(old)
        for waiter, result in ((old.join_waiter, JoinResult("fenced_instance_id", member_id=old_id)),
                               (old.sync_waiter, SyncResult("fenced_instance_id"))):
            if waiter is not None and not waiter.done():
                waiter.set_result(result)  # type: ignore[arg-type]
        member = req.new_member(new_id)
        member.assignment = old.assignment
        group.members[new_id] = member
        assert req.group_instance_id is not None
        group.static_members[req.group_instance_id] = new_id
        previous_leader = group.leader_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        log.info("static member %s of group %s replaced %s by %s", req.group_instance_id,
                 group.group_id, old_id, new_id)
        if group.is_(S.STABLE) and old.protocols == member.protocols:
            error = self.persist(group)
            if error != "none":
                return JoinResult(error, member_id=new_id)
            self.schedule_expiry(group, member)
            # As Kafka: name the previous leader and list no members, so a replaced leader
            # does not compute an assignment that a Stable group would never hand out.
            return JoinResult(generation_id=group.generation_id,
                              protocol_type=group.protocol_type,
                              protocol_name=group.protocol_name,
                              leader=previous_leader or "", member_id=new_id)
        member.join_waiter = asyncio.get_running_loop().create_future()
        waiter = member.join_waiter
        if group.is_(S.PREPARING_REBALANCE):
            self._maybe_complete_join(group)
        else:
            self.prepare_rebalance(group, f"static member {req.group_instance_id} rejoined")
        return await waiter

    def _current_generation(self, group: Group, member: Member) -> JoinResult:
        self.schedule_expiry(group, member)
        return JoinResult(
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=group.leader_id or "",
            member_id=member.member_id,
            members=self._member_list(group) if member.member_id == group.leader_id else [],
        )

    def _member_list(self, group: Group) -> list[tuple[str, str | None, bytes]]:
        protocol = group.protocol_name or ""
        return [(m.member_id, m.group_instance_id, m.metadata_for(protocol))
                for m in group.members.values()]

    # --- rebalance state machine ------------------------------------------------------

    def prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.is_(S.COMPLETING_REBALANCE):
            self._fail_pending_syncs(group, "rebalance_in_progress")
        self._cancel(group, "sync_timer")
        self._cancel(group, "join_timer")
        initial = group.is_(S.EMPTY)
        group.transition(S.PREPARING_REBALANCE, self.clock())
        log.info("group %s rebalancing (generation %d): %s", group.group_id,
                 group.generation_id, reason)
        timeout_s = max(group.rebalance_timeout_ms(), 0) / 1000
        delay_ms = self.config.initial_rebalance_delay_ms
        if initial and delay_ms > 0:
            group.initial_delay_deadline = self.scheduler.time() + timeout_s
            self._schedule_initial_delay(group, len(group.members))
            return
        group.initial_delay_deadline = None
        group.join_timer = self.scheduler.call_later(timeout_s, lambda: self._join_timeout(group))
        self._maybe_complete_join(group)

    def _schedule_initial_delay(self, group: Group, members_seen: int) -> None:
        delay = self.config.initial_rebalance_delay_ms / 1000
        deadline = group.initial_delay_deadline or 0.0
        remaining = deadline - self.scheduler.time()
        group.join_timer = self.scheduler.call_later(
            max(min(delay, remaining), 0), lambda: self._initial_delay_over(group, members_seen)
        )

    def _initial_delay_over(self, group: Group, members_seen: int) -> None:
        if not group.is_(S.PREPARING_REBALANCE):
            return
        deadline = group.initial_delay_deadline or 0.0
        grew = len(group.members) > members_seen
        if grew and self.scheduler.time() < deadline:
            self._schedule_initial_delay(group, len(group.members))
            return
        group.initial_delay_deadline = None
        if group.all_joined():
            self._complete_join(group)
        else:
            remaining = max(deadline - self.scheduler.time(), 0)
            group.join_timer = self.scheduler.call_later(remaining, lambda: self._join_timeout(group))

    def _maybe_complete_join(self, group: Group) -> None:
        if (group.is_(S.PREPARING_REBALANCE) and group.initial_delay_deadline is None
                and group.all_joined()):
            self._complete_join(group)

    def _join_timeout(self, group: Group) -> None:
        if not group.is_(S.PREPARING_REBALANCE):
            return
        for member in [m for m in group.members.values() if not m.awaiting_join]:
            log.info("removing member %s of group %s: did not rejoin within the rebalance timeout",
                     member.member_id, group.group_id)
            self._remove(group, member)
        group.pending_members.clear()
        group.initial_delay_deadline = None
        self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        self._cancel(group, "join_timer")
        group.pending_members.clear()
        group.generation_id += 1
        if not group.members:
            group.protocol_name = None
            group.leader_id = None
            group.transition(S.EMPTY, self.clock())
            self.persist(group)
            log.info("group %s is empty (generation %d)", group.group_id, group.generation_id)
            return
        group.protocol_name = group.select_protocol()
        group.protocol_type = next(iter(group.members.values())).protocol_type
        if group.leader_id not in group.members:
            group.leader_id = next(iter(group.members))
        group.transition(S.COMPLETING_REBALANCE, self.clock())
        for member in group.members.values():
            member.is_new = False
            waiter = member.join_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(self._current_generation(group, member))
            else:
                self.schedule_expiry(group, member)
        timeout_s = group.rebalance_timeout_ms() / 1000
        generation = group.generation_id
        group.sync_timer = self.scheduler.call_later(
            timeout_s, lambda: self._sync_timeout(group, generation)
        )
        log.info("group %s generation %d: %d member(s), protocol %s, leader %s", group.group_id,
                 group.generation_id, len(group.members), group.protocol_name, group.leader_id)

    def _sync_timeout(self, group: Group, generation: int) -> None:
        if not group.is_(S.COMPLETING_REBALANCE) or group.generation_id != generation:
            return
        for member in [m for m in group.members.values() if not m.awaiting_sync]:
            self._remove(group, member)
        self.prepare_rebalance(group, "the leader did not send SyncGroup in time")

    def _fail_pending_syncs(self, group: Group, error: str) -> None:
        for member in group.members.values():
            if member.sync_waiter is not None and not member.sync_waiter.done():
                member.sync_waiter.set_result(SyncResult(error))
            member.assignment = b""

    # --- SyncGroup --------------------------------------------------------------------

    async def sync(self, group: Group, generation_id: int, member_id: str,
                   instance_id: str | None, protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> SyncResult:
        if self._fenced(group, member_id, instance_id):
            return SyncResult("fenced_instance_id")
        member = group.members.get(member_id)
        if member is None or group.is_(S.EMPTY, S.DEAD):
            return SyncResult("unknown_member_id")
        if generation_id != group.generation_id:
            return SyncResult("illegal_generation")
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return SyncResult("inconsistent_group_protocol")
        if group.is_(S.PREPARING_REBALANCE):
            return SyncResult("rebalance_in_progress")
        self.schedule_expiry(group, member)
        if group.is_(S.STABLE):
            return self._sync_result(group, member)
        member.sync_waiter = asyncio.get_running_loop().create_future()
        waiter = member.sync_waiter
        if member_id == group.leader_id:
            await self._apply_assignment(group, assignments)
        return await waiter

    async def _apply_assignment(self, group: Group, assignments: dict[str, bytes]) -> None:
        """Persist the assignment, wait until it is replicated, then release every member."""
        for member in group.members.values():
            member.assignment = assignments.get(member.member_id, b"")
        generation = group.generation_id
        error = self.persist(group)
        if error == "none":
            error = await self.durable(group)
        if not group.is_(S.COMPLETING_REBALANCE) or group.generation_id != generation:
            return  # the group moved on while the write was replicating
        if error != "none":
            self._fail_pending_syncs(group, error)
            self.prepare_rebalance(group, f"could not persist the assignment: {error}")
            return
        self._cancel(group, "sync_timer")
        group.transition(S.STABLE, self.clock())
        for member in group.members.values():
            if member.sync_waiter is not None and not member.sync_waiter.done():
                member.sync_waiter.set_result(self._sync_result(group, member))

    def _sync_result(self, group: Group, member: Member) -> SyncResult:
        return SyncResult(protocol_type=group.protocol_type, protocol_name=group.protocol_name,
                          assignment=member.assignment)

    # --- Heartbeat and LeaveGroup -----------------------------------------------------

    def heartbeat(self, group: Group, generation_id: int, member_id: str,
                  instance_id: str | None) -> str:
        member = group.members.get(member_id)
        if self._fenced(group, member_id, instance_id):
            return "fenced_instance_id"
        if member is None or group.is_(S.EMPTY, S.DEAD):
            return "unknown_member_id"
        if generation_id != group.generation_id:
            return "illegal_generation"
        self.schedule_expiry(group, member)
        if group.is_(S.PREPARING_REBALANCE):
            return "rebalance_in_progress"
        return "none"

    def leave(self, group: Group, member_id: str, instance_id: str | None) -> str:
        if instance_id is not None:
            mapped = group.static_members.get(instance_id)
            if mapped is None or mapped not in group.members:
                return "unknown_member_id"
            if member_id and mapped != member_id:
                return "fenced_instance_id"
            member_id = mapped
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._maybe_complete_join(group)
            return "none"
        member = group.members.get(member_id)
        if member is None:
            return "unknown_member_id"
        log.info("member %s left group %s", member_id, group.group_id)
        self._remove(group, member)
        self._after_removal(group, f"member {member_id} left")
        return "none"

    # --- expiry -----------------------------------------------------------------------

    def schedule_expiry(self, group: Group, member: Member) -> None:
        self._cancel_expiry(member)
        member.expiry = self.scheduler.call_later(
            member.session_timeout_ms / 1000, lambda: self._expire(group, member)
        )

    def _expire(self, group: Group, member: Member) -> None:
        if group.members.get(member.member_id) is not member:
            return
        if member.awaiting_join or member.awaiting_sync:
            self.schedule_expiry(group, member)
            return
        log.info("member %s of group %s expired after %d ms without a heartbeat",
                 member.member_id, group.group_id, member.session_timeout_ms)
        self._remove(group, member)
        self._after_removal(group, f"member {member.member_id} expired")

    def _expire_pending(self, group: Group, member_id: str) -> None:
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._maybe_complete_join(group)

    def _after_removal(self, group: Group, reason: str) -> None:
        if group.is_(S.STABLE, S.COMPLETING_REBALANCE):
            self.prepare_rebalance(group, reason)
        elif group.is_(S.PREPARING_REBALANCE):
            self._maybe_complete_join(group)

    def _remove(self, group: Group, member: Member) -> None:
        self._cancel_expiry(member)
        group.members.pop(member.member_id, None)
        instance = member.group_instance_id
        if instance is not None and group.static_members.get(instance) == member.member_id:
            del group.static_members[instance]
        if member.awaiting_join and member.join_waiter is not None:
            member.join_waiter.set_result(JoinResult("unknown_member_id",
                                                     member_id=member.member_id))
        if member.awaiting_sync and member.sync_waiter is not None:
            member.sync_waiter.set_result(SyncResult("unknown_member_id"))
        if group.leader_id == member.member_id:
            group.leader_id = next(iter(group.members), None)

    def shutdown(self, group: Group, error: str) -> None:
        """The coordinator lost the group (unload): fail every waiter, stop every timer."""
        self._cancel(group, "join_timer")
        self._cancel(group, "sync_timer")
        for member in group.members.values():
            self._cancel_expiry(member)
            if member.awaiting_join and member.join_waiter is not None:
                member.join_waiter.set_result(JoinResult(error, member_id=member.member_id))
            if member.awaiting_sync and member.sync_waiter is not None:
                member.sync_waiter.set_result(SyncResult(error))

    # --- helpers ----------------------------------------------------------------------

    @staticmethod
    def _fenced(group: Group, member_id: str, instance_id: str | None) -> bool:
        if instance_id is None:
            return False
        mapped = group.static_members.get(instance_id)
        return mapped is not None and mapped != member_id

    @staticmethod
    def _cancel_expiry(member: Member) -> None:
        if member.expiry is not None:
            member.expiry.cancel()
            member.expiry = None

    @staticmethod
    def _cancel(group: Group, attr: str) -> None:
        timer = getattr(group, attr)
        if timer is not None:
            timer.cancel()
            setattr(group, attr, None)

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
  Stable once it is replicated, and every waiting member gets its part.
* A member that stops heartbeating for its session timeout is removed and the group
  rebalances. Members waiting for a join or sync answer are kept alive.
* A static member that rejoins (a restarted process, same instance id) takes over its
  old member's place and assignment; if its protocols are unchanged, the group stays
  Stable: no rebalance.

Everything here is synchronous and pure (Kafka's GroupMetadataManager for classic
groups): an operation mutates the group, collects the records to write and the answers
owed to waiting requests in an `Effects`, and returns a `CoordinatorResult`. A JoinGroup
or SyncGroup that must wait answers `Pending(token)`; the token is kept on the member
and answered by whichever later operation or timer completes the rebalance. Timers are
keyed per group and member and always look the group up again when they fire.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from strom.coordinator.group import records
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.model import Group, GroupState, JoinResult, Member, SyncResult
from strom.coordinator.runtime import CoordinatorResult, Effects, Pending, Timer

log = logging.getLogger(__name__)
S = GroupState
Out = Effects[records.Record]


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


def new_member_id(client_id: str) -> str:
    return f"{client_id}-{uuid.uuid4()}"


def _join_key(group_id: str) -> str:
    return f"join:{group_id}"


def _sync_key(group_id: str) -> str:
    return f"sync:{group_id}"


def _heartbeat_key(group_id: str, member_id: str) -> str:
    return f"heartbeat:{group_id}:{member_id}"


def _pending_key(group_id: str, member_id: str) -> str:
    return f"pending:{group_id}:{member_id}"


class Membership:
    """Drives the groups of one shard through rebalances."""

    def __init__(
        self,
        config: GroupConfig,
        timer: Timer,
        clock: Callable[[], int],
        groups: dict[str, Group],
        tokens: Iterator[int],
        mint_member_id: Callable[[str], str] = new_member_id,
    ) -> None:
        self.config = config
        self.timer = timer
        self.clock = clock
        self.groups = groups
        self.tokens = tokens
        self.mint_member_id = mint_member_id

    # --- JoinGroup --------------------------------------------------------------------

    def join(self, group: Group, req: JoinRequest) -> CoordinatorResult[JoinResult, records.Record]:
        out: Out = Effects()
        if group.is_(S.DEAD):
            return out.result(JoinResult(ErrorCode.coordinator_not_available, member_id=req.member_id))
        if not group.supports(req.protocol_type, [n for n, _ in req.protocols]):
            return out.result(JoinResult(ErrorCode.inconsistent_group_protocol, member_id=req.member_id))
        if req.member_id == "":
            return out.result(self._join_unknown(group, req, out))
        return out.result(self._join_known(group, req, out))

    def _join_unknown(self, group: Group, req: JoinRequest, out: Out) -> JoinResult | Pending | None:
        new_id = self.mint_member_id(req.client_id)
        if req.group_instance_id is not None:
            old_id = group.static_members.get(req.group_instance_id)
            if old_id is not None and old_id in group.members:
                return self._replace_static_member(group, group.members[old_id], new_id, req, out)
        elif req.require_known_member_id:
            if len(group.members) + len(group.pending_members) >= self.config.max_group_size:
                return JoinResult(ErrorCode.group_max_size_reached)
            group.pending_members.add(new_id)
            group_id = group.group_id
            self.timer.schedule(_pending_key(group_id, new_id), req.session_timeout_ms / 1000,
                                lambda: self._expire_pending(group_id, new_id))
            return JoinResult(ErrorCode.member_id_required, member_id=new_id)
        return self._add_and_rebalance(group, new_id, req, out)

    def _join_known(self, group: Group, req: JoinRequest, out: Out) -> JoinResult | Pending:
        member_id = req.member_id
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self.timer.cancel(_pending_key(group.group_id, member_id))
            return self._add_and_rebalance(group, member_id, req, out)
        # Fencing first (as Kafka): a replaced static member must stop, not rejoin.
        if _fenced(group, member_id, req.group_instance_id):
            return JoinResult(ErrorCode.fenced_instance_id, member_id=member_id)
        member = group.members.get(member_id)
        if member is None or group.is_(S.EMPTY):
            return JoinResult(ErrorCode.unknown_member_id, member_id=member_id)
        changed = member.protocols != req.protocols
        if group.is_(S.PREPARING_REBALANCE):
            return self._rejoin(group, member, req, out)
        if group.is_(S.COMPLETING_REBALANCE) and not changed:
            return self._current_generation(group, member)
        if group.is_(S.COMPLETING_REBALANCE) or member_id == group.leader_id or changed:
            return self._rejoin(group, member, req, out, rebalance=True)
        return self._current_generation(group, member)

    def _add_and_rebalance(self, group: Group, member_id: str, req: JoinRequest, out: Out
                           ) -> JoinResult | Pending:
        if len(group.members) >= self.config.max_group_size:
            return JoinResult(ErrorCode.group_max_size_reached, member_id=member_id)
        member = req.new_member(member_id)
        member.is_new = True
        pending = self._await_join(member, out)
        group.add(member)
        if group.is_(S.PREPARING_REBALANCE):
            self._maybe_complete_join(group, out)
        else:
            self.prepare_rebalance(group, f"member {member_id} joined", out)
        return pending

    def _rejoin(self, group: Group, member: Member, req: JoinRequest, out: Out,
                rebalance: bool = False) -> Pending:
        member.protocols = list(req.protocols)
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        pending = self._await_join(member, out)
        if rebalance:
            self.prepare_rebalance(group, f"member {member.member_id} rejoined", out)
        else:
            self._maybe_complete_join(group, out)
        return pending

    def _replace_static_member(self, group: Group, old: Member, new_id: str, req: JoinRequest,
                               out: Out) -> JoinResult | Pending | None:
        self.timer.cancel(_heartbeat_key(group.group_id, old.member_id))
        out.answer(old.join_waiter, JoinResult(ErrorCode.fenced_instance_id, member_id=old.member_id))
        out.answer(old.sync_waiter, SyncResult(ErrorCode.fenced_instance_id))
        old.join_waiter = old.sync_waiter = None
        member = req.new_member(new_id)
        member.assignment = old.assignment
        previous_leader = group.leader_id
        group.replace_static(old, member)
        log.info("static member %s of group %s replaced %s by %s", req.group_instance_id,
                 group.group_id, old.member_id, new_id)
        if group.is_(S.STABLE) and old.protocols == member.protocols:
            out.records.append(records.group_metadata(group))
            self.schedule_expiry(group, member)
            group_id = group.group_id
            out.then = lambda error: self._static_member_written(group_id, old, member,
                                                                 previous_leader, error)
            return None  # answered by the continuation, once the write is replicated
        pending = self._await_join(member, out)
        if group.is_(S.PREPARING_REBALANCE):
            self._maybe_complete_join(group, out)
        else:
            self.prepare_rebalance(group, f"static member {req.group_instance_id} rejoined", out)
        return pending

    def _static_member_written(self, group_id: str, old: Member, member: Member,
                               previous_leader: str | None, error: ErrorCode
                               ) -> CoordinatorResult[JoinResult, records.Record]:
        out: Out = Effects()
        group = self.groups.get(group_id)
        current = group is not None and group.members.get(member.member_id) is member
        if error != ErrorCode.none:
            if group is not None and current:
                # As Kafka: the new incarnation was not recorded, so the old one stays.
                self.timer.cancel(_heartbeat_key(group_id, member.member_id))
                group.replace_static(member, old)
                self.schedule_expiry(group, old)
            return out.result(JoinResult(error, member_id=member.member_id))
        if group is not None and current:
            # As Kafka: name the previous leader and list no members, so a replaced leader
            # does not compute an assignment that a Stable group would never hand out.
            return out.result(JoinResult(generation_id=group.generation_id,
                                         protocol_type=group.protocol_type,
                                         protocol_name=group.protocol_name,
                                         leader=previous_leader or "", member_id=member.member_id))
        return out.result(JoinResult(ErrorCode.unknown_member_id, member_id=member.member_id))

    def _await_join(self, member: Member, out: Out) -> Pending:
        """The member's JoinGroup waits; a request it supersedes is told to rejoin."""
        out.answer(member.join_waiter,
                   JoinResult(ErrorCode.rebalance_in_progress, member_id=member.member_id))
        member.join_waiter = next(self.tokens)
        return Pending(member.join_waiter)

    def _await_sync(self, member: Member, out: Out) -> Pending:
        out.answer(member.sync_waiter, SyncResult(ErrorCode.rebalance_in_progress))
        member.sync_waiter = next(self.tokens)
        return Pending(member.sync_waiter)

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

    @staticmethod
    def _member_list(group: Group) -> list[tuple[str, str | None, bytes]]:
        protocol = group.protocol_name or ""
        return [(m.member_id, m.group_instance_id, m.metadata_for(protocol))
                for m in group.members.values()]

    # --- rebalance state machine ------------------------------------------------------

    def prepare_rebalance(self, group: Group, reason: str, out: Out) -> None:
        if group.is_(S.COMPLETING_REBALANCE):
            self._fail_pending_syncs(group, ErrorCode.rebalance_in_progress, out)
        group_id = group.group_id
        self.timer.cancel(_sync_key(group_id))
        self.timer.cancel(_join_key(group_id))
        initial = group.is_(S.EMPTY)
        group.transition(S.PREPARING_REBALANCE, self.clock())
        log.info("group %s rebalancing (generation %d): %s", group_id, group.generation_id,
                 reason)
        timeout_s = max(group.rebalance_timeout_ms(), 0) / 1000
        if initial and self.config.initial_rebalance_delay_ms > 0:
            group.initial_delay_deadline = self.timer.time() + timeout_s
            self._schedule_initial_delay(group, len(group.members))
            return
        group.initial_delay_deadline = None
        self.timer.schedule(_join_key(group_id), timeout_s, lambda: self._join_timeout(group_id))
        self._maybe_complete_join(group, out)

    def _schedule_initial_delay(self, group: Group, members_seen: int) -> None:
        delay = self.config.initial_rebalance_delay_ms / 1000
        remaining = (group.initial_delay_deadline or 0.0) - self.timer.time()
        group_id = group.group_id
        self.timer.schedule(_join_key(group_id), max(min(delay, remaining), 0),
                            lambda: self._initial_delay_over(group_id, members_seen))

    def _initial_delay_over(self, group_id: str, members_seen: int
                            ) -> CoordinatorResult[None, records.Record]:
        out: Out = Effects()
        group = self.groups.get(group_id)
        if group is None or not group.is_(S.PREPARING_REBALANCE):
            return out.result(None)
        deadline = group.initial_delay_deadline or 0.0
        if len(group.members) > members_seen and self.timer.time() < deadline:
            self._schedule_initial_delay(group, len(group.members))
            return out.result(None)
        group.initial_delay_deadline = None
        if group.all_joined():
            self._complete_join(group, out)
        else:
            remaining = max(deadline - self.timer.time(), 0)
            self.timer.schedule(_join_key(group_id), remaining,
                                lambda: self._join_timeout(group_id))
        return out.result(None)

    def _maybe_complete_join(self, group: Group, out: Out) -> None:
        if (group.is_(S.PREPARING_REBALANCE) and group.initial_delay_deadline is None
                and group.all_joined()):
            self._complete_join(group, out)

    def _join_timeout(self, group_id: str) -> CoordinatorResult[None, records.Record]:
        out: Out = Effects()
        group = self.groups.get(group_id)
        if group is None or not group.is_(S.PREPARING_REBALANCE):
            return out.result(None)
        for member in [m for m in group.members.values() if not m.awaiting_join]:
            log.info("removing member %s of group %s: did not rejoin within the rebalance timeout",
                     member.member_id, group_id)
            self._remove(group, member, out)
        group.pending_members.clear()
        group.initial_delay_deadline = None
        self._complete_join(group, out)
        return out.result(None)

    def _complete_join(self, group: Group, out: Out) -> None:
        group_id = group.group_id
        self.timer.cancel(_join_key(group_id))
        group.pending_members.clear()
        group.generation_id += 1
        if not group.members:
            group.protocol_name = None
            group.leader_id = None
            group.transition(S.EMPTY, self.clock())
            out.records.append(records.group_metadata(group))
            log.info("group %s is empty (generation %d)", group_id, group.generation_id)
            return
        group.protocol_name = group.select_protocol()
        group.protocol_type = next(iter(group.members.values())).protocol_type
        if group.leader_id not in group.members:
            group.leader_id = next(iter(group.members))
        group.transition(S.COMPLETING_REBALANCE, self.clock())
        for member in group.members.values():
            member.is_new = False
            if member.join_waiter is not None:
                out.answer(member.join_waiter, self._current_generation(group, member))
                member.join_waiter = None
            else:
                self.schedule_expiry(group, member)
        generation = group.generation_id
        self.timer.schedule(_sync_key(group_id), group.rebalance_timeout_ms() / 1000,
                            lambda: self._sync_timeout(group_id, generation))
        log.info("group %s generation %d: %d member(s), protocol %s, leader %s", group_id,
                 generation, len(group.members), group.protocol_name, group.leader_id)

    def _sync_timeout(self, group_id: str, generation: int) -> CoordinatorResult[None, records.Record]:
        out: Out = Effects()
        group = self.groups.get(group_id)
        if (group is None or not group.is_(S.COMPLETING_REBALANCE)
                or group.generation_id != generation):
            return out.result(None)
        for member in [m for m in group.members.values() if not m.awaiting_sync]:
            self._remove(group, member, out)
        self.prepare_rebalance(group, "the leader did not send SyncGroup in time", out)
        return out.result(None)

    @staticmethod
    def _fail_pending_syncs(group: Group, error: ErrorCode, out: Out) -> None:
        for member in group.members.values():
            out.answer(member.sync_waiter, SyncResult(error))
            member.sync_waiter = None
            member.assignment = b""

    # --- SyncGroup --------------------------------------------------------------------

    def sync(self, group: Group, generation_id: int, member_id: str, instance_id: str | None,
             protocol_type: str | None, protocol_name: str | None, assignments: dict[str, bytes]
             ) -> CoordinatorResult[SyncResult, records.Record]:
        out: Out = Effects()
        error = _sync_error(group, generation_id, member_id, instance_id, protocol_type,
                            protocol_name)
        if error is not None:
            return out.result(SyncResult(error))
        member = group.members[member_id]
        self.schedule_expiry(group, member)
        if group.is_(S.STABLE):
            return out.result(_sync_result(group, member))
        pending = self._await_sync(member, out)
        if member_id == group.leader_id:
            self._write_assignment(group, assignments, out)
        return out.result(pending)

    def _write_assignment(self, group: Group, assignments: dict[str, bytes], out: Out) -> None:
        """Persist the assignment; members are released once it is replicated."""
        for member in group.members.values():
            member.assignment = assignments.get(member.member_id, b"")
        out.records.append(records.group_metadata(group))
        group_id, generation = group.group_id, group.generation_id
        out.then = lambda error: self._assignment_written(group_id, generation, error)

    def _assignment_written(self, group_id: str, generation: int, error: ErrorCode
                            ) -> CoordinatorResult[SyncResult, records.Record]:
        out: Out = Effects()
        group = self.groups.get(group_id)
        if (group is None or not group.is_(S.COMPLETING_REBALANCE)
                or group.generation_id != generation):
            return out.result(None)  # the group moved on while the write was replicating
        if error != ErrorCode.none:
            self._fail_pending_syncs(group, error, out)
            self.prepare_rebalance(group, f"could not persist the assignment: {error}", out)
            return out.result(None)
        self.timer.cancel(_sync_key(group_id))
        group.transition(S.STABLE, self.clock())
        for member in group.members.values():
            out.answer(member.sync_waiter, _sync_result(group, member))
            member.sync_waiter = None
        return out.result(None)

    # --- Heartbeat and LeaveGroup -----------------------------------------------------

    def heartbeat(self, group: Group, generation_id: int, member_id: str,
                  instance_id: str | None) -> CoordinatorResult[ErrorCode, records.Record]:
        out: Out = Effects()
        member = group.members.get(member_id)
        if _fenced(group, member_id, instance_id):
            return out.result(ErrorCode.fenced_instance_id)
        if member is None or group.is_(S.EMPTY, S.DEAD):
            return out.result(ErrorCode.unknown_member_id)
        if generation_id != group.generation_id:
            return out.result(ErrorCode.illegal_generation)
        self.schedule_expiry(group, member)
        if group.is_(S.PREPARING_REBALANCE):
            return out.result(ErrorCode.rebalance_in_progress)
        return out.result(ErrorCode.none)

    def leave(self, group: Group, member_id: str, instance_id: str | None, out: Out) -> ErrorCode:
        if instance_id is not None:
            mapped = group.static_members.get(instance_id)
            if mapped is None or mapped not in group.members:
                return ErrorCode.unknown_member_id
            if member_id and mapped != member_id:
                return ErrorCode.fenced_instance_id
            member_id = mapped
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self.timer.cancel(_pending_key(group.group_id, member_id))
            self._maybe_complete_join(group, out)
            return ErrorCode.none
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        log.info("member %s left group %s", member_id, group.group_id)
        self._remove(group, member, out)
        self._after_removal(group, f"member {member_id} left", out)
        return ErrorCode.none

    # --- expiry -----------------------------------------------------------------------

    def schedule_expiry(self, group: Group, member: Member) -> None:
        group_id, member_id = group.group_id, member.member_id
        self.timer.schedule(_heartbeat_key(group_id, member_id), member.session_timeout_ms / 1000,
                            lambda: self._session_timeout(group_id, member_id))

    def _session_timeout(self, group_id: str, member_id: str
                         ) -> CoordinatorResult[None, records.Record]:
        out: Out = Effects()
        group = self.groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if group is None or member is None:
            return out.result(None)
        if member.awaiting_join or member.awaiting_sync:
            self.schedule_expiry(group, member)
            return out.result(None)
        log.info("member %s of group %s expired after %d ms without a heartbeat",
                 member_id, group_id, member.session_timeout_ms)
        self._remove(group, member, out)
        self._after_removal(group, f"member {member_id} expired", out)
        return out.result(None)

    def _expire_pending(self, group_id: str, member_id: str) -> CoordinatorResult[None, records.Record]:
        out: Out = Effects()
        group = self.groups.get(group_id)
        if group is not None and member_id in group.pending_members:
            group.pending_members.discard(member_id)
            self._maybe_complete_join(group, out)
        return out.result(None)

    def _after_removal(self, group: Group, reason: str, out: Out) -> None:
        if group.is_(S.STABLE, S.COMPLETING_REBALANCE):
            self.prepare_rebalance(group, reason, out)
        elif group.is_(S.PREPARING_REBALANCE):
            self._maybe_complete_join(group, out)

    def _remove(self, group: Group, member: Member, out: Out) -> None:
        self.timer.cancel(_heartbeat_key(group.group_id, member.member_id))
        group.remove(member.member_id)
        out.answer(member.join_waiter, JoinResult(ErrorCode.unknown_member_id, member_id=member.member_id))
        out.answer(member.sync_waiter, SyncResult(ErrorCode.unknown_member_id))
        member.join_waiter = member.sync_waiter = None

    # --- the shard's lifecycle --------------------------------------------------------

    def fail_waiters(self, error: ErrorCode, out: Out) -> None:
        """The coordinator lost the groups (unload): answer every waiting request."""
        for group in self.groups.values():
            for member in group.members.values():
                out.answer(member.join_waiter, JoinResult(error, member_id=member.member_id))
                out.answer(member.sync_waiter, SyncResult(error))
                member.join_waiter = member.sync_waiter = None

    def abandon(self, token: int) -> None:
        """The request waiting on ``token`` went away: its member no longer counts as
        waiting (a rebalance then treats it as not rejoined)."""
        for group in self.groups.values():
            for member in group.members.values():
                if member.join_waiter == token:
                    member.join_waiter = None
                if member.sync_waiter == token:
                    member.sync_waiter = None


def _fenced(group: Group, member_id: str, instance_id: str | None) -> bool:
    if instance_id is None:
        return False
    mapped = group.static_members.get(instance_id)
    return mapped is not None and mapped != member_id


def _sync_error(group: Group, generation_id: int, member_id: str, instance_id: str | None,
                protocol_type: str | None, protocol_name: str | None) -> ErrorCode | None:
    if _fenced(group, member_id, instance_id):
        return ErrorCode.fenced_instance_id
    if member_id not in group.members or group.is_(S.EMPTY, S.DEAD):
        return ErrorCode.unknown_member_id
    if generation_id != group.generation_id:
        return ErrorCode.illegal_generation
    if (protocol_type is not None and protocol_type != group.protocol_type) or (
        protocol_name is not None and protocol_name != group.protocol_name
    ):
        return ErrorCode.inconsistent_group_protocol
    if group.is_(S.PREPARING_REBALANCE):
        return ErrorCode.rebalance_in_progress
    return None


def _sync_result(group: Group, member: Member) -> SyncResult:
    return SyncResult(protocol_type=group.protocol_type, protocol_name=group.protocol_name,
                      assignment=member.assignment)

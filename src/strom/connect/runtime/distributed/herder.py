"""`DistributedHerder`: a worker of a Connect cluster (workers sharing `group.id`).

Everything the cluster knows lives in three compacted topics (see `records`): configs and
target states in `config.storage.topic`, statuses in `status.storage.topic`, source
offsets in `offset.storage.topic`. Work is divided by the group: the worker joins with
its allocation in its metadata (`member`), the leader computes an incremental cooperative
assignment (`assignor`), and each worker stops what it lost and starts what it got.

One herder thread does the group work and applies config changes, in ticks:
rebalance when asked to (a revocation, a scheduled delay, a change in the set of
connectors or task counts, a failed heartbeat), read the config topic to its end, apply
what changed to what this worker runs, heartbeat. REST handlers run on other threads and
never touch running work except through the config topic: a request writes a record and
waits until this worker's herder thread has read it, so every worker applies the same
changes in the same order (the config topic has one partition). A task restart for a task
that runs elsewhere is forwarded to its worker's REST API.

Config writes are the leader's, as in Kafka (see `internal`): a follower forwards a REST
write to the leader's URL from the assignment, and the worker running a connector sends
its task configs to the leader in a request signed with the session key the leader keeps
in the config topic. While no leader is known, or the leader has a rebalance pending, a
write answers 409. Only the `sessioned` protocol is offered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strom.client.group_member import GroupMember
from strom.client.security import ClientSecurity
from strom.connect.api.connector import Connector
from strom.connect.api.errors import BadRequestError, ConnectError, NotFoundError
from strom.connect.runtime.config import WorkerConfig
from strom.connect.runtime.distributed import exactly_once, internal, records
from strom.connect.runtime.distributed.assignor import AssignorState, TaskKey, assign
from strom.connect.runtime.distributed.kafka_log import KafkaBasedLog
from strom.connect.runtime.distributed.protocol import (
    Assignment,
    WorkerState,
    decode_assignment,
    decode_metadata,
    encode_assignment,
    encode_metadata,
)
from strom.connect.runtime.distributed.topic_offsets import TopicOffsetStore
from strom.connect.runtime.herder import ALTERED_FRAMEWORK, RESET_FRAMEWORK, STOPPED_FIRST, UNKNOWN
from strom.connect.runtime.source_task import WorkerSourceTask
from strom.connect.runtime.status import State, Status, TargetState, TaskId
from strom.connect.runtime.validation import check_config, validate_config
from strom.connect.runtime.worker import Worker, connector_kind
from strom.connect.runtime.worker_task import WorkerTask

log = logging.getLogger(__name__)

#: the group protocols a worker offers for its `connect.protocol`, best first, with their
#: metadata versions (as Kafka's: `sessioned` also offers `compatible`; `eager` is not spoken)
PROTOCOLS = {"sessioned": (("sessioned", 2), ("compatible", 1)), "compatible": (("compatible", 1),)}
CATCH_UP_INTERVAL_S = 0.5
APPLY_TIMEOUT_S = 30.0
SLOW_S = 2.0
STABLE_WAIT_S = 15.0  # how long a write waits out a rebalance before answering 409
FOLLOW_S = 5.0  # how long a follower waits to read what the leader wrote for it


@dataclass(frozen=True)
class Applied:
    """What this worker last acted on for one connector: config, target state, tasks."""

    config: dict[str, str] | None
    target: TargetState | None
    tasks: tuple[tuple[tuple[str, str], ...], ...]


class DistributedHerder:
    def __init__(self, worker: Worker, config: WorkerConfig, url: str) -> None:
        self.worker = worker
        self.url = url
        self.worker_id = url.removeprefix("http://").rstrip("/")
        clients = worker.clients
        self.configs = records.ConfigState()
        self.statuses = records.StatusState()
        self.config_log = KafkaBasedLog(clients, _required(config, "config.storage.topic"), self._on_config,
                                        partitions=1,
                                        replication_factor=config.get_int("config.storage.replication.factor"),
                                        client_id="connect-configs")
        self.status_log = KafkaBasedLog(clients, _required(config, "status.storage.topic"), self._on_status,
                                        partitions=config.get_int("status.storage.partitions"),
                                        replication_factor=config.get_int("status.storage.replication.factor"),
                                        client_id="connect-statuses")
        self.member = GroupMember(config.bootstrap_servers, _required(config, "group.id"),
                                  session_timeout_ms=config.get_int("session.timeout.ms"),
                                  rebalance_timeout_ms=config.get_int("rebalance.timeout.ms"),
                                  security=ClientSecurity.from_properties(config.client_props("")))
        self.heartbeat_s = config.get_int("heartbeat.interval.ms") / 1000
        self.max_delay_ms = config.get_int("scheduled.rebalance.max.delay.ms")
        self.assignor_state = AssignorState()
        self.lock = threading.RLock()
        self.status_lock = threading.Lock()
        self.applied_offset = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="connect-herder", daemon=True)
        self.heartbeats = threading.Thread(target=self._heartbeat_loop, name="connect-heartbeat", daemon=True)
        self.joined = threading.Event()  # set while the member is in a stable generation
        self.joining = threading.Event()  # set while the herder thread is in JoinGroup/SyncGroup
        # what the group gave this worker, and what of it runs
        self.assigned_connectors: set[str] = set()
        self.assigned_tasks: set[TaskKey] = set()
        self.connectors: dict[str, Connector] = {}
        self.tasks: dict[TaskKey, WorkerTask] = {}
        self.applied: dict[str, Applied] = {}
        self.changed: set[str] = set()
        self.generation = -1
        self.leader_url = ""
        self.leader_id = ""
        self.retry_tasks_at: dict[str, float] = {}
        self.retry_start_at: dict[TaskKey, float] = {}
        self.protocol_config = str(config.get("connect.protocol")).lower()
        self.protocol = self.protocol_config  # the one the group chose, once joined
        self.group_id = _required(config, "group.id")
        self.offsets_topic = str(config.get("offset.storage.topic"))
        self.exactly_once = str(config.get("exactly.once.source.support")).lower() == "enabled"
        self.connector_offsets: dict[str, TopicOffsetStore] = {}
        self.fence_lock = threading.Lock()
        self.key_algorithm = str(config.get("inter.worker.key.generation.algorithm"))
        self.key_size = config.get("inter.worker.key.size")
        self.key_ttl_ms = config.get_int("inter.worker.key.ttl.ms")
        self.signature_algorithm = str(config.get("inter.worker.signature.algorithm"))
        self.verification_algorithms = [str(a) for a in
                                        config.get_list("inter.worker.verification.algorithms")]
        self.rejoin_needed = True
        self.rejoin_at: float | None = None
        self.last_catch_up = 0.0
        self.read_offset = -1

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.config_log.start()
        self.status_log.start()
        store = self.worker.store
        if hasattr(store, "start"):
            store.start()
        self.thread.start()
        self.heartbeats.start()

    def stop(self) -> None:
        """Leave the group and stop this worker's connectors and tasks."""
        self.stopping.set()
        self.thread.join(60)
        self.heartbeats.join(10)
        self.config_log.stop()
        self.status_log.stop()
        store = self.worker.store
        if hasattr(store, "stop"):
            store.stop()
        for own in self.connector_offsets.values():
            own.stop()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                self._tick()
        except Exception:
            log.exception("The Connect herder thread failed; this worker leaves its group")
        finally:
            with self.lock:
                self._stop_everything()
            self.member.leave()
            self.member.close()

    def _tick(self) -> None:
        now = time.monotonic()
        if self.rejoin_needed or (self.rejoin_at is not None and now >= self.rejoin_at):
            self._rebalance()
        if now - self.last_catch_up >= CATCH_UP_INTERVAL_S:
            self._catch_up()
        if self.joined.is_set() and self.is_leader() and self.sessioned():
            self._rotate_session_key()
        if self.retry_tasks_at:
            self._retry_task_configs(now)
        if self.retry_start_at:
            self._retry_starts(now)
        if self.changed:
            started = time.monotonic()
            with self.lock:
                self._apply_changes()
            if time.monotonic() - started > SLOW_S:
                log.warning("Applying config changes took %.1f s", time.monotonic() - started)
        self.stopping.wait(0.05)

    def _heartbeat_loop(self) -> None:
        """Heartbeats on their own thread, so starting or stopping slow tasks on the herder
        thread never makes the group think this worker died."""
        while not self.stopping.wait(self.heartbeat_s):
            if self.joined.is_set() and not self.joining.is_set() and not self.member.heartbeat():
                self.joined.clear()
                self.rejoin_needed = True

    def _catch_up(self) -> None:
        self.last_catch_up = time.monotonic()
        self.config_log.read_to_end()
        with self.applied_offset:
            self.read_offset = self.configs.offset
            self.applied_offset.notify_all()

    # --- the group --------------------------------------------------------------------------

    def _metadata(self, version: int) -> bytes:
        allocation = Assignment(version, 0, "", self.leader_url, self.configs.offset,
                                tuple(sorted(self.assigned_connectors)), tuple(sorted(self.assigned_tasks)))
        return encode_metadata(WorkerState(version, self.url, self.configs.offset, allocation))

    def sessioned(self) -> bool:
        """Whether internal requests are signed: only under the `sessioned` protocol (Kafka's
        internalRequestValidationEnabled)."""
        return self.protocol == "sessioned"

    def _assign(self, protocol: str, members: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
        """The leader's plan (see `assignor`), after reading every config change."""
        self.config_log.read_to_end()
        allocations: dict[str, tuple[set[str], set[TaskKey]]] = {}
        for member_id, metadata in members:
            allocation = decode_metadata(metadata).allocation
            allocations[member_id] = (set(allocation.connectors), set(allocation.tasks)) \
                if allocation is not None else (set(), set())
        counts = {name: len(self.configs.tasks.get(name, [])) for name in self.configs.connectors}
        plan = assign(allocations, counts, leader_id=self.member.member_id, leader_url=self.url,
                      config_offset=self.configs.offset, state=self.assignor_state,
                      now_ms=int(time.time() * 1000), max_delay_ms=self.max_delay_ms,
                      version=2 if protocol == "sessioned" else 1)
        return {member: encode_assignment(a) for member, a in plan.items()}

    def _rebalance(self) -> None:
        self.rejoin_needed, self.rejoin_at = False, None
        self.joined.clear()
        self.joining.set()
        try:
            offered = [(name, self._metadata(version)) for name, version in PROTOCOLS[self.protocol_config]]
            joined = self.member.join(offered, self._assign)
        finally:
            self.joining.clear()
        self.joined.set()
        assignment = decode_assignment(joined.assignment)
        self.generation, self.leader_url = joined.generation, assignment.leader_url
        self.leader_id, self.protocol = assignment.leader, joined.protocol
        self._catch_up()
        started = time.monotonic()
        with self.lock:
            self._apply_assignment(assignment)
        if time.monotonic() - started > SLOW_S:
            log.warning("Applying generation %d's assignment took %.1f s", joined.generation,
                        time.monotonic() - started)
        if assignment.revoked_connectors or assignment.revoked_tasks:
            self.rejoin_needed = True  # the cooperative second round assigns what was revoked
        if assignment.delay > 0:
            self.rejoin_at = time.monotonic() + assignment.delay / 1000
        log.info("Joined generation %d as %s: +%s %s, -%s %s", joined.generation,
                 "leader" if joined.is_leader else "member", list(assignment.connectors),
                 list(assignment.tasks), list(assignment.revoked_connectors), list(assignment.revoked_tasks))

    def _apply_assignment(self, assignment: Assignment) -> None:
        for name in assignment.revoked_connectors:
            self.assigned_connectors.discard(name)
            self._stop_connector(name, State.UNASSIGNED)
        for key in assignment.revoked_tasks:
            self.assigned_tasks.discard(key)
            self._stop_task(key, State.UNASSIGNED)
        self.assigned_connectors |= set(assignment.connectors)
        self.assigned_tasks |= {(c, int(n)) for c, n in assignment.tasks}
        for name in assignment.connectors:
            self._start_connector(name)
        for key in assignment.tasks:
            self._start_task((key[0], int(key[1])))

    # --- config changes -------------------------------------------------------------------------

    def _on_config(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        self.configs.apply(key, value, offset)
        name = _connector_of(key)
        if name is not None:
            self.changed.add(name)

    def _on_status(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        self.statuses.apply(key, value, offset)

    def _snapshot(self, name: str) -> Applied:
        tasks = tuple(tuple(sorted(t.items())) for t in self.configs.tasks.get(name, []))
        return Applied(self.configs.connectors.get(name), self.configs.target_states.get(name), tasks)

    def _apply_changes(self) -> None:
        changed, self.changed = self.changed, set()
        for name in sorted(changed):
            before, after = self.applied.get(name), self._snapshot(name)
            self.applied[name] = after
            if before is None or len(before.tasks) != len(after.tasks) or \
                    (before.config is None) != (after.config is None):
                self.rejoin_needed = True  # what the group divides has changed
            self._apply_change(name, before, after)
            self._apply_restart(name)

    def _apply_change(self, name: str, before: Applied | None, after: Applied) -> None:
        if after.config is None:
            self._stop_connector(name, None)
            for key in [k for k in self.tasks if k[0] == name]:
                self._stop_task(key, None)
            return
        if self._pause_or_resume(name, before, after):
            return
        config_moved = before is None or before.config != after.config or before.target != after.target
        if config_moved and name in self.assigned_connectors:
            self._stop_connector(name, None)
            self._start_connector(name)
        if before is None or before.tasks != after.tasks or before.target != after.target:
            for key in sorted(k for k in self.assigned_tasks if k[0] == name):
                self._stop_task(key, None)
                self._start_task(key)

    def _pause_or_resume(self, name: str, before: Applied | None, after: Applied) -> bool:
        """Only the target state moved between STARTED and PAUSED: tasks pause or resume in
        place (a paused sink keeps its partitions), the connector's status follows."""
        running = (TargetState.STARTED, TargetState.PAUSED)
        if before is None or before.config != after.config or before.tasks != after.tasks \
                or before.target not in running or after.target not in running:
            return False
        paused = after.target is TargetState.PAUSED
        for key, task in self.tasks.items():
            if key[0] == name:
                (task.pause if paused else task.resume)()
        if name in self.connectors:
            self._write_status(records.connector_status_key(name), State.PAUSED if paused else State.RUNNING,
                               None, self.connectors[name].version())
        return True

    def _apply_restart(self, name: str) -> None:
        request = self.configs.restarts.pop(name, None)
        if request is None:
            return
        include_tasks, only_failed = request
        failed = self._local_status(records.connector_status_key(name)) is State.FAILED
        if name in self.assigned_connectors and (not only_failed or failed):
            self._write_status(records.connector_status_key(name), State.RESTARTING, None, None)
            self._stop_connector(name, None)
            self._start_connector(name)
        if include_tasks:
            for key in sorted(k for k in self.assigned_tasks if k[0] == name):
                task_failed = self._local_status(records.task_status_key(*key)) is State.FAILED
                if not only_failed or task_failed:
                    self._write_status(records.task_status_key(*key), State.RESTARTING, None, None)
                    self._stop_task(key, None)
                    self._start_task(key)

    def _local_status(self, key: str) -> State | None:
        table: dict[Any, Status]
        if key.startswith(records.STATUS_CONNECTOR_PREFIX):
            table, lookup = self.statuses.connectors, key[len(records.STATUS_CONNECTOR_PREFIX):]
            found = table.get(lookup)
        else:
            name, _, number = key[len(records.STATUS_TASK_PREFIX):].rpartition("-")
            found = self.statuses.tasks.get((name, int(number)))
        return None if found is None else found.state

    # --- running work ------------------------------------------------------------------------

    def _start_connector(self, name: str) -> None:
        config = self.configs.connectors.get(name)
        if config is None or name in self.connectors:
            return
        target = self.configs.target_states.get(name, TargetState.STARTED)
        version = None
        if target is TargetState.STOPPED:
            self._write_status(records.connector_status_key(name), State.STOPPED, None, None)
            return
        try:
            connector = self.worker.new_connector(config)
            version = connector.version()
            connector.initialize(_Context(self, name))
            connector.start(config)
            self.connectors[name] = connector
            self._publish_task_configs(name, connector, config)
        except Exception as exc:
            log.exception("Failed to start connector %s", name)
            self._write_status(records.connector_status_key(name), State.FAILED, _trace(exc), version)
            return
        state = State.PAUSED if target is TargetState.PAUSED else State.RUNNING
        self._write_status(records.connector_status_key(name), state, None, version)

    def _publish_task_configs(self, name: str, connector: Connector, config: Mapping[str, str]) -> None:
        """Have the connector's task configs written if they differ from the topic's: by this
        worker if it leads, else by the leader through a signed request (retried every
        second while the leader cannot be reached, as Kafka retries a reconfiguration)."""
        configs = self.worker.task_configs(connector, config)
        if configs == self.configs.tasks.get(name):
            return
        if self.is_leader():
            self._write_task_configs(name, configs)
            return
        body = json.dumps(configs).encode()
        try:
            signature = self._signature(body)
            internal.send(self.leader_url, "POST", f"/connectors/{_quote(name)}/tasks", raw=body,
                          query={"forward": "true"}, headers=signature)
        except internal.HttpStatusError as exc:
            log.warning("Sending the task configs of %s to the leader failed (%s); retrying", name, exc)
            self.retry_tasks_at[name] = time.monotonic() + 1.0

    def _signature(self, body: bytes) -> dict[str, str]:
        """The headers that sign an internal request to the leader (none unless sessioned)."""
        if not self.leader_url:
            raise internal.HttpStatusError(409, internal.NO_LEADER)
        if not self.sessioned():
            return {}
        key = internal.parse_session_key(self.configs.session_key)
        if key is None:
            raise internal.HttpStatusError(409, internal.NO_LEADER)
        return internal.sign(key, body, self.signature_algorithm)

    def _verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        if self.sessioned():
            internal.verify(internal.parse_session_key(self.configs.session_key), body, headers,
                            self.verification_algorithms)

    def _write_task_configs(self, name: str, configs: Sequence[Mapping[str, str]]) -> None:
        """The leader's write: every task config, then the commit that makes them the set."""
        for number, task_config in enumerate(configs):
            self.config_log.send(*records.task_config_record(name, number, dict(task_config)))
        self.config_log.send(*records.commit_record(name, len(configs)))
        self.config_log.flush()

    def _retry_task_configs(self, now: float) -> None:
        for name in [n for n, at in self.retry_tasks_at.items() if at <= now]:
            del self.retry_tasks_at[name]
            with self.lock:
                connector, config = self.connectors.get(name), self.configs.connectors.get(name)
                if connector is not None and config is not None:
                    self._publish_task_configs(name, connector, config)

    # --- leadership and the session key -------------------------------------------------------

    def is_leader(self) -> bool:
        return bool(self.leader_id) and self.leader_id == self.member.member_id

    def _rotate_session_key(self) -> None:
        """The leader writes a session key when there is none or it has expired (KIP-507)."""
        now = int(time.time() * 1000)
        key = internal.parse_session_key(self.configs.session_key)
        if key is not None and not key.expired(now, self.key_ttl_ms):
            return
        fresh = internal.new_session_key(self.key_algorithm, self.key_size, now)
        self.config_log.send(records.SESSION_KEY.encode(), internal.session_key_value(fresh))
        self.config_log.flush()
        self._catch_up()

    def _await_stable(self) -> None:
        """Wait (a while) for a known leader and no pending rebalance; 409 otherwise, as
        Kafka answers a request made while its worker is rebalancing."""
        deadline = time.monotonic() + STABLE_WAIT_S
        while not (self.joined.is_set() and self.leader_url and not self.rejoin_needed):
            if time.monotonic() > deadline:
                raise internal.HttpStatusError(409, internal.STALE if self.leader_url else internal.NO_LEADER)
            self.stopping.wait(0.05)

    def _forward(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None,
                 writes: int = 1) -> tuple[int, Any] | None:
        """None when this worker leads (it writes itself); otherwise the leader's answer to
        the same request, after this worker has read about `writes` more config records (so
        a read that follows sees the change, mostly)."""
        self._await_stable()
        if self.is_leader():
            return None
        flag = internal.next_forward_flag()
        before = self.read_offset
        answer = internal.send(self.leader_url, method, path, body, {**(query or {}), "forward": flag})
        with self.applied_offset:
            self.applied_offset.wait_for(lambda: self.read_offset >= max(before, 0) + writes, FOLLOW_S)
        return answer

    def put_task_configs(self, name: str, body: bytes, headers: Mapping[str, str]) -> None:
        """`POST /connectors/{name}/tasks`: task configs from the worker running the
        connector, signed; only the leader writes them."""
        self._verify(body, headers)
        try:
            configs = json.loads(body)
        except ValueError as exc:
            raise BadRequestError(f"Unrecognized request body: {exc}") from exc
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise BadRequestError("Task configs must be a JSON array of objects")
        self._await_stable()
        if not self.is_leader():
            signature = {h: headers[h.lower()] for h in (internal.SIGNATURE_HEADER, internal.ALGORITHM_HEADER)
                         if h.lower() in headers}
            internal.send(self.leader_url, "POST", f"/connectors/{_quote(name)}/tasks", raw=body,
                          query={"forward": internal.next_forward_flag()}, headers=signature)
            return
        self._known(name)
        self._write_task_configs(name, [{str(k): str(v) for k, v in c.items()} for c in configs])

    def _start_task(self, key: TaskKey) -> None:
        name, number = key
        config = self.configs.connectors.get(name)
        task_configs = self.configs.tasks.get(name, [])
        target = self.configs.target_states.get(name, TargetState.STARTED)
        startable = number < len(task_configs) and target is not TargetState.STOPPED
        if config is None or not startable or key in self.tasks:
            return
        task_id = TaskId(name, number)
        try:
            connector = self.worker.new_connector(config)
            exactly_once = self.exactly_once and connector_kind(connector) == "source"
            if exactly_once and name in self.configs.pending_fencing:
                self._request_fencing(name)
            refresh = getattr(self.worker.store, "refresh", None)
            if refresh is not None and connector_kind(connector) == "source":
                refresh()  # offsets the task's previous worker committed
            task = self.worker.build_task(task_id, connector, config, task_configs[number],
                                          self._on_task_status,
                                          lambda topic: self._on_topic(name, number, topic))
            if exactly_once:
                task = self._exactly_once_task(task, config)
        except internal.HttpStatusError as exc:
            log.warning("Task %s waits for its zombie fencing round (%s); retrying", task_id, exc)
            self.retry_start_at[key] = time.monotonic() + 1.0
            return
        except Exception as exc:
            log.exception("Failed to start task %s", task_id)
            self._write_status(records.task_status_key(name, number), State.FAILED, _trace(exc), None)
            return
        self.tasks[key] = task
        task.start(paused=target is TargetState.PAUSED)

    # --- exactly-once source (KIP-618) ---------------------------------------------------------

    def _exactly_once_task(self, task: WorkerTask, config: Mapping[str, str]) -> WorkerTask:
        """The task, rebuilt as an `ExactlyOnceSourceTask` with its transactional producer."""
        from strom.connect.runtime.worker import PRODUCER_DEFAULTS

        assert isinstance(task, WorkerSourceTask)
        parsed = self.worker.connector_config(config)
        store: Any = self.worker.store
        secondary, topic = None, self.offsets_topic
        own_topic = parsed.get_string("offsets.storage.topic")
        if own_topic and own_topic != self.offsets_topic:
            secondary, store, topic = store, self._connector_offsets(own_topic), own_topic
        tid = exactly_once.transactional_id(self.group_id, task.id.connector, task.id.task)
        props = {**PRODUCER_DEFAULTS, "client.id": f"connector-producer-{task.id}",
                 **self.worker._client_props("producer", parsed), "transactional.id": tid}
        interval = parsed.get("transaction.boundary.interval.ms") or self.worker.config.get_int(
            "offset.flush.interval.ms")
        rebuilt = exactly_once.ExactlyOnceSourceTask(
            task.parts, task.listener, task.shutdown_timeout_s, producer_factory=task.producer_factory,
            store=store, flush_interval_s=task.flush_interval_s, flush_timeout_s=task.flush_timeout_s,
            on_topic=task.on_topic)
        rebuilt.configure_exactly_once(offsets_topic=topic, store=store, secondary=secondary,
                                       boundary=str(parsed.get("transaction.boundary")).lower(),
                                       interval_s=int(interval) / 1000,
                                       producer_factory=lambda: self.worker.clients.producer(props))
        if "metrics" in vars(task):  # the task's registered metrics, where the worker keeps them
            vars(rebuilt)["metrics"] = vars(task)["metrics"]
        return rebuilt

    def _connector_offsets(self, topic: str) -> TopicOffsetStore:
        """A connector's own offsets topic (`offsets.storage.topic`), read to its end."""
        store = self.connector_offsets.get(topic)
        if store is None:
            store = TopicOffsetStore(self.worker.clients, topic,
                                     self.worker.config.get_int("offset.storage.partitions"),
                                     self.worker.config.get_int("offset.storage.replication.factor"))
            store.start()
            self.connector_offsets[topic] = store
        store.refresh()
        return store

    def _request_fencing(self, name: str) -> None:
        """Have the leader fence the connector's zombies before its new tasks start."""
        if self.is_leader():
            self._fence(name)
            return
        internal.send(self.leader_url, "PUT", f"/connectors/{_quote(name)}/fence", raw=b"",
                      query={"forward": "true"}, headers=self._signature(b""))
        self.configs.pending_fencing.discard(name)  # until this worker reads the task count record

    def _fence(self, name: str) -> None:
        """The leader's round: InitProducerId for every transactional id the connector's
        tasks used or will use, then the `tasks-count` record (once per new task set)."""
        with self.fence_lock:
            if name not in self.configs.pending_fencing:
                return
            count = len(self.configs.tasks.get(name, []))
            ids = range(max(count, self.configs.task_counts.get(name, 0)))
            exactly_once.fence(self.worker.clients,
                               [exactly_once.transactional_id(self.group_id, name, i) for i in ids])
            self.config_log.send(*records.task_count_record(name, count))
            self.config_log.flush()
            self.configs.pending_fencing.discard(name)

    def fence_zombies(self, name: str, body: bytes, headers: Mapping[str, str]) -> None:
        """`PUT /connectors/{name}/fence`: signed; only the leader fences."""
        self._verify(body, headers)
        self._await_stable()
        if not self.is_leader():
            signature = {h: headers[h.lower()] for h in (internal.SIGNATURE_HEADER, internal.ALGORITHM_HEADER)
                         if h.lower() in headers}
            internal.send(self.leader_url, "PUT", f"/connectors/{_quote(name)}/fence", raw=body,
                          query={"forward": internal.next_forward_flag()}, headers=signature)
            return
        self._known(name)
        self._fence(name)

    def _retry_starts(self, now: float) -> None:
        for key in [k for k, at in self.retry_start_at.items() if at <= now]:
            del self.retry_start_at[key]
            with self.lock:
                if key in self.assigned_tasks:
                    self._start_task(key)

    def _stop_connector(self, name: str, state: State | None) -> None:
        connector = self.connectors.pop(name, None)
        if connector is not None:
            try:
                connector.stop()
            except Exception:
                log.exception("Failed to stop connector %s", name)
        if state is not None and name in self.configs.connectors:
            self._write_status(records.connector_status_key(name), state, None, None)

    def _stop_task(self, key: TaskKey, state: State | None) -> None:
        task = self.tasks.pop(key, None)
        if task is not None:
            task.stop()
            task.await_stop()
        if state is not None and key[0] in self.configs.connectors:
            self._write_status(records.task_status_key(*key), state, None, None)

    def _stop_everything(self) -> None:
        for key in list(self.tasks):
            self._stop_task(key, State.UNASSIGNED)
        for name in list(self.connectors):
            self._stop_connector(name, State.UNASSIGNED)

    def _on_task_status(self, task_id: TaskId, state: State, trace: str | None) -> None:
        """From task threads: no lock (the herder waits for tasks while holding it)."""
        task = self.tasks.get((task_id.connector, task_id.task))
        version = None if task is None else task.parts.task.version()
        self._write_status(records.task_status_key(task_id.connector, task_id.task), state, trace, version)

    def _on_topic(self, name: str, task: int, topic: str) -> None:
        self.status_log.send(*records.topic_status_record(topic, name, task, int(time.time() * 1000)))

    def _write_status(self, key: str, state: State, trace: str | None, version: str | None) -> None:
        self.status_log.send(*records.status_record(key, Status(state, self.worker_id, trace),
                                                    max(self.generation, 0), version))

    # --- REST: reading ------------------------------------------------------------------------

    def _read_statuses(self) -> None:
        self.status_log.flush()
        with self.status_lock:
            self.status_log.read_to_end()

    def _known(self, name: str, missing: str = "Connector {name} not found") -> dict[str, str]:
        config = self.configs.connectors.get(name)
        if config is None:
            raise NotFoundError(missing.format(name=name))
        return config

    def names(self) -> list[str]:
        return sorted(self.configs.connectors)

    def info(self, name: str) -> dict[str, Any]:
        config = self._known(name)
        count = len(self.configs.tasks.get(name, []))
        return {"name": name, "config": dict(config),
                "tasks": [TaskId(name, i).as_json() for i in range(count)], "type": self._kind(config)}

    def _kind(self, config: Mapping[str, str]) -> str:
        return connector_kind(self.worker.plugins.connector_class(config.get("connector.class", "")))

    def config(self, name: str) -> dict[str, str]:
        return dict(self._known(name))

    def status(self, name: str) -> dict[str, Any]:
        config = self._known(name, "No status found for connector {name}")
        self._read_statuses()
        connector = self.statuses.connectors.get(name, Status(State.UNASSIGNED, self.worker_id))
        tasks = [self._task_status(name, i).as_json(id=i, version=self._version(config))
                 for i in range(len(self.configs.tasks.get(name, [])))]
        return {"name": name, "connector": connector.as_json(version=self._version(config)),
                "tasks": tasks, "type": self._kind(config)}

    def _version(self, config: Mapping[str, str]) -> str | None:
        try:
            return str(self.worker.new_connector(config).version())
        except Exception:  # noqa: BLE001 - a plugin that cannot say has no version
            return None

    def _task_status(self, name: str, number: int) -> Status:
        return self.statuses.tasks.get((name, number), Status(State.UNASSIGNED, self.worker_id))

    def task_status(self, name: str, task: int) -> dict[str, Any]:
        config = self._known(name)
        if not 0 <= task < len(self.configs.tasks.get(name, [])):
            raise NotFoundError(f"No status found for task {name}-{task}")
        self._read_statuses()
        return self._task_status(name, task).as_json(id=task, version=self._version(config))

    def task_configs(self, name: str) -> list[dict[str, Any]]:
        self._known(name)
        return [{"id": TaskId(name, i).as_json(), "config": dict(c)}
                for i, c in enumerate(self.configs.tasks.get(name, []))]

    def topics(self, name: str) -> dict[str, Any]:
        self._read_statuses()
        return {name: {"topics": sorted(self.statuses.topics.get(name, set()))}}

    def reset_topics(self, name: str) -> None:
        self._known(name)
        self._read_statuses()
        for topic in sorted(self.statuses.topics.get(name, set())):
            key, _ = records.topic_status_record(topic, name, 0, 0)
            self.status_log.send(key, None)
        self.status_log.flush()

    def validate(self, props: Mapping[str, str]) -> dict[str, Any]:
        answer = validate_config(self.worker, props)
        if self.exactly_once and self._kind(props) == "source":
            errors = exactly_once.config_errors(self.worker.new_connector(props), props)
            exactly_once.add_errors(answer, errors)
        return answer

    # --- REST: changing (through the config topic) ----------------------------------------------

    def _write_and_wait(self, *written: tuple[bytes, bytes | None]) -> None:
        """Write config records and wait until this worker's herder thread has read them."""
        for key, value in written:
            self.config_log.send(key, value)
        self.config_log.flush()
        with self.applied_offset:
            target = max(self.read_offset, 0) + len(written)  # offsets count from 0; -1 is "none read"
            if not self.applied_offset.wait_for(lambda: self.read_offset >= target, APPLY_TIMEOUT_S):
                raise ConnectError("Timed out waiting for the herder to read the config topic")

    def put_config(self, name: str, config: Mapping[str, str], allow_replace: bool,
                   initial_state: TargetState = TargetState.STARTED) -> tuple[bool, dict[str, Any]]:
        props = {str(k): str(v) for k, v in config.items()}
        props.setdefault("name", name)
        if props["name"] != name:
            raise BadRequestError(f"Connector name configuration ({props['name']}) doesn't match "
                                  f"connector name in the URL ({name})")
        check_config(self.worker, props)
        if self.exactly_once and self._kind(props) == "source":
            exactly_once.check(self.worker.new_connector(props), props)
        exists = name in self.configs.connectors
        if exists and not allow_replace:
            from strom.connect.api.errors import AlreadyExistsError

            raise AlreadyExistsError(f"Connector {name} already exists")
        forwarded = self._forward_config(name, props, allow_replace, initial_state, exists)
        if forwarded is not None:
            return forwarded
        writes = [] if exists else [records.target_state_record(name, initial_state)]
        writes.append(records.connector_config_record(name, props))
        self._write_and_wait(*writes)
        return not exists, self.info(name)

    def _forward_config(self, name: str, props: dict[str, str], allow_replace: bool,
                        initial_state: TargetState, exists: bool) -> tuple[bool, dict[str, Any]] | None:
        if allow_replace:
            answer = self._forward("PUT", f"/connectors/{_quote(name)}/config", props,
                                   writes=1 if exists else 2)
        else:
            state = {TargetState.STARTED: "RUNNING"}.get(initial_state, initial_state.value)
            answer = self._forward("POST", "/connectors", {"name": name, "config": props,
                                                           "initial_state": state}, writes=2)
        return None if answer is None else (answer[0] == 201, answer[1])

    def delete(self, name: str) -> None:
        self._known(name)
        if self._forward("DELETE", f"/connectors/{_quote(name)}", writes=2) is not None:
            return
        self._write_and_wait(records.connector_config_record(name, None),
                             records.target_state_record(name, None))

    def pause(self, name: str) -> None:
        self._known(name, UNKNOWN)
        if self._forward("PUT", f"/connectors/{_quote(name)}/pause") is not None:
            return
        self._write_and_wait(records.target_state_record(name, TargetState.PAUSED))

    def resume(self, name: str) -> None:
        self._known(name, UNKNOWN)
        if self._forward("PUT", f"/connectors/{_quote(name)}/resume") is not None:
            return
        self._write_and_wait(records.target_state_record(name, TargetState.STARTED))

    def stop_connector(self, name: str) -> None:
        """KIP-875: the stopped target state, and an empty task set (as Kafka writes it)."""
        self._known(name, UNKNOWN)
        if self._forward("PUT", f"/connectors/{_quote(name)}/stop", writes=2) is not None:
            return
        self._write_and_wait(records.target_state_record(name, TargetState.STOPPED),
                             records.commit_record(name, 0))

    def restart(self, name: str, include_tasks: bool, only_failed: bool) -> dict[str, Any] | None:
        self._known(name, UNKNOWN)
        forwarded = self._forward("POST", f"/connectors/{_quote(name)}/restart",
                                  query={"includeTasks": str(include_tasks).lower(),
                                         "onlyFailed": str(only_failed).lower()})
        if forwarded is not None:
            return forwarded[1]
        answer = None if not include_tasks and not only_failed else self.status(name)
        if answer is not None:
            _mark_restarting(answer, include_tasks, only_failed)
        self._write_and_wait(records.restart_record(name, include_tasks, only_failed))
        return answer

    def restart_task(self, name: str, task: int) -> None:
        self._known(name, UNKNOWN)
        if not 0 <= task < len(self.configs.tasks.get(name, [])):
            raise NotFoundError(f"Task {name}-{task} not found")
        key = (name, task)
        with self.lock:
            if key in self.assigned_tasks:
                self._stop_task(key, None)
                self._start_task(key)
                return
        self._forward_task_restart(name, task)

    def _forward_task_restart(self, name: str, task: int) -> None:
        """The task runs on another worker: ask its REST API (worker ids are host:port)."""
        from strom.connect.rest.client import RestError, call

        self._read_statuses()
        owner = self._task_status(name, task).worker_id
        if not owner or owner == self.worker_id:
            raise ConnectError(f"Task {name}-{task} is not running on any worker")
        try:
            call(f"http://{owner}", "POST", f"/connectors/{name}/tasks/{task}/restart", timeout=30)
        except RestError as exc:
            raise ConnectError(f"Restarting task {name}-{task} on {owner} failed: {exc}") from exc

    # --- REST: offsets (KIP-875) ----------------------------------------------------------------

    def offsets(self, name: str) -> dict[str, Any]:
        config = self._known(name)
        if self._kind(config) == "source":
            refresh = getattr(self.worker.store, "refresh", None)
            if refresh is not None:
                refresh()
            return {"offsets": [{"partition": p, "offset": o} for p, o in self.worker.store.entries(name)]}
        from strom.connect.runtime.sink_offsets import committed

        return {"offsets": committed(self.worker.clients, f"connect-{name}")}

    def _stopped(self, name: str) -> dict[str, str]:
        config = self._known(name)
        if self.configs.target_states.get(name) is not TargetState.STOPPED:
            raise BadRequestError(STOPPED_FIRST.replace("{name}", name))
        return config

    def alter_offsets(self, name: str, body: Any) -> dict[str, str]:
        entries = body.get("offsets") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            raise BadRequestError("Partitions / offsets need to be provided for an alter offsets request")
        config = self._stopped(name)
        forwarded = self._forward("PATCH", f"/connectors/{_quote(name)}/offsets", body, writes=0)
        if forwarded is not None:
            return forwarded[1]
        if self._kind(config) == "source":
            from strom.connect.runtime.herder import _alter_source

            _alter_source(self.worker, name, entries)
        else:
            from strom.connect.runtime.sink_offsets import alter

            alter(self.worker.clients, f"connect-{name}", entries)
        return {"message": ALTERED_FRAMEWORK}

    def reset_offsets(self, name: str) -> dict[str, str]:
        config = self._stopped(name)
        forwarded = self._forward("DELETE", f"/connectors/{_quote(name)}/offsets", writes=0)
        if forwarded is not None:
            return forwarded[1]
        if self._kind(config) == "source":
            self.worker.store.remove_connector(name)
        else:
            from strom.connect.runtime.sink_offsets import reset

            reset(self.worker.clients, f"connect-{name}")
        return {"message": RESET_FRAMEWORK}


class _Context:
    """The `ConnectorContext` of a connector run by a distributed worker."""

    def __init__(self, herder: DistributedHerder, name: str) -> None:
        self.herder, self.name = herder, name

    def request_task_reconfiguration(self) -> None:
        self.herder.changed.add(self.name)

    def raise_error(self, error: Exception) -> None:
        self.herder._write_status(records.connector_status_key(self.name), State.FAILED,
                                  _trace(error), None)


def _mark_restarting(answer: dict[str, Any], include_tasks: bool, only_failed: bool) -> None:
    if not only_failed or answer["connector"]["state"] == State.FAILED.value:
        answer["connector"]["state"] = State.RESTARTING.value
    for task in answer["tasks"] if include_tasks else []:
        if not only_failed or task["state"] == State.FAILED.value:
            task["state"] = State.RESTARTING.value


def _connector_of(key: bytes | None) -> str | None:
    """The connector a config record is about, or None (the session key)."""
    text = (key or b"").decode("utf-8", errors="replace")
    for prefix in (records.CONNECTOR_PREFIX, records.COMMIT_PREFIX, records.TARGET_STATE_PREFIX,
                   records.RESTART_PREFIX):
        if text.startswith(prefix):
            return text[len(prefix):]
    if text.startswith(records.TASK_PREFIX):
        return text[len(records.TASK_PREFIX):].rpartition("-")[0] or None
    return None


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _required(config: WorkerConfig, name: str) -> str:
    value = config.get(name)
    if not value:
        from strom.connect.api.errors import ConfigError

        raise ConfigError(f'Missing required configuration "{name}" which has no default value.')
    return str(value)


def _trace(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))

"""The records of Kafka Connect's internal topics, and the state they fold into.

Formats (JSON without schemas, keys as UTF-8 text), the same a Java worker writes, so a
Strom worker and a Kafka Connect worker can share a cluster's topics:

config.storage.topic (one partition):
    connector-<name>        {"properties": {...}}                 null: deleted
    task-<name>-<n>         {"properties": {...}}                 (applies at the commit)
    commit-<name>           {"tasks": <count>}
    target-state-<name>     {"state": "STARTED"|"PAUSED", "state.v2": "STARTED"|"PAUSED"|"STOPPED"}
    restart-connector-<name> {"include-tasks": bool, "only-failed": bool}
    session-key             {"key": <base64>, "algorithm": "HmacSHA256", "creation-timestamp": ms}
    tasks-count-<name>      {"task-count": <count>}   (KIP-618: the zombie fencing round is done)
status.storage.topic:
    status-connector-<name>, status-task-<name>-<n>
                            {"state", "trace", "worker_id", "generation", "version"}
    status-topic-<topic>:connector-<name>
                            {"topic": {"name", "connector", "task", "discoverTimestamp"}}
offset.storage.topic:
    ["<connector>",{partition}]   {offset}   (see runtime/offsets.key_text)

`ConfigState.apply` is Kafka's KafkaConfigBackingStore logic as a fold: task configs
written for a connector take effect together when its `commit-` record arrives, so a
reader never sees half of a new task set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from strom.connect.converters.jsontext import dumps
from strom.connect.runtime.status import State, Status, TargetState

CONNECTOR_PREFIX = "connector-"
TASK_PREFIX = "task-"
COMMIT_PREFIX = "commit-"
TARGET_STATE_PREFIX = "target-state-"
RESTART_PREFIX = "restart-connector-"
TASK_COUNT_PREFIX = "tasks-count-"
SESSION_KEY = "session-key"
STATUS_CONNECTOR_PREFIX = "status-connector-"
STATUS_TASK_PREFIX = "status-task-"
STATUS_TOPIC_PREFIX = "status-topic-"


def _json(value: bytes | None) -> Any:
    return None if value is None else json.loads(value)


def _split_task(rest: str) -> tuple[str, int] | None:
    """`<name>-<n>` into (name, n); connector names may contain dashes."""
    name, _, number = rest.rpartition("-")
    return (name, int(number)) if name and number.isdigit() else None


# --- config topic ---------------------------------------------------------------------------


def connector_config_record(name: str, props: dict[str, str] | None) -> tuple[bytes, bytes | None]:
    value = None if props is None else dumps({"properties": props}).encode()
    return (CONNECTOR_PREFIX + name).encode(), value


def task_config_record(name: str, task: int, props: dict[str, str]) -> tuple[bytes, bytes]:
    return f"{TASK_PREFIX}{name}-{task}".encode(), dumps({"properties": props}).encode()


def commit_record(name: str, tasks: int) -> tuple[bytes, bytes]:
    return (COMMIT_PREFIX + name).encode(), dumps({"tasks": tasks}).encode()


def target_state_record(name: str, state: TargetState | None) -> tuple[bytes, bytes | None]:
    """`state` is the pre-KIP-875 field (STOPPED reads as PAUSED there); `state.v2` the real one."""
    if state is None:
        return (TARGET_STATE_PREFIX + name).encode(), None
    legacy = TargetState.PAUSED if state is TargetState.STOPPED else state
    value = {"state": legacy.value, "state.v2": state.value}
    return (TARGET_STATE_PREFIX + name).encode(), dumps(value).encode()


def task_count_record(name: str, tasks: int) -> tuple[bytes, bytes]:
    return (TASK_COUNT_PREFIX + name).encode(), dumps({"task-count": tasks}).encode()


def restart_record(name: str, include_tasks: bool, only_failed: bool) -> tuple[bytes, bytes]:
    return ((RESTART_PREFIX + name).encode(),
            dumps({"include-tasks": include_tasks, "only-failed": only_failed}).encode())


@dataclass
class ConfigState:
    """What the config topic says now: configs, committed task configs, target states."""

    connectors: dict[str, dict[str, str]] = field(default_factory=dict)
    tasks: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    target_states: dict[str, TargetState] = field(default_factory=dict)
    restarts: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    session_key: dict[str, Any] | None = None
    task_counts: dict[str, int] = field(default_factory=dict)
    pending_fencing: set[str] = field(default_factory=set)  # task sets committed since the last fencing
    inconsistent: set[str] = field(default_factory=set)
    offset: int = -1  # -1 until a record is read, as Kafka's ClusterConfigState
    _pending: dict[str, dict[int, dict[str, str]]] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        """Fold one record; unknown keys are skipped, as Kafka skips them. `offset` becomes
        the position after it: the config offset workers exchange in JoinGroup metadata."""
        self.offset = offset + 1
        text = (key or b"").decode("utf-8", errors="replace")
        data = _json(value)
        for prefix, handler in self._handlers():
            if text.startswith(prefix):
                handler(text[len(prefix):], data)
                return
        if text == SESSION_KEY:
            self.session_key = data

    def _handlers(self) -> list[tuple[str, Any]]:
        return [(CONNECTOR_PREFIX, self._connector), (TASK_PREFIX, self._task),
                (COMMIT_PREFIX, self._commit), (TARGET_STATE_PREFIX, self._target_state),
                (RESTART_PREFIX, self._restart), (TASK_COUNT_PREFIX, self._task_count)]

    def _connector(self, name: str, data: Any) -> None:
        if data is None:
            for table in (self.connectors, self.tasks, self.target_states, self._pending, self.task_counts):
                table.pop(name, None)
            self.pending_fencing.discard(name)
            return
        self.connectors[name] = dict(data.get("properties") or {})
        self.target_states.setdefault(name, TargetState.STARTED)

    def _task(self, rest: str, data: Any) -> None:
        parsed = _split_task(rest)
        if parsed is not None and data is not None:
            self._pending.setdefault(parsed[0], {})[parsed[1]] = dict(data.get("properties") or {})

    def _commit(self, name: str, data: Any) -> None:
        """The task configs written since the last commit become the connector's tasks; a
        set missing some task numbers marks the connector inconsistent (Kafka does the
        same: its tasks stay invisible until a complete set is committed)."""
        count = int((data or {}).get("tasks", 0))
        pending = self._pending.pop(name, {})
        if all(i in pending for i in range(count)):
            self.tasks[name] = [pending[i] for i in range(count)]
            self.inconsistent.discard(name)
            self.pending_fencing.add(name)
        else:
            self.tasks.pop(name, None)
            self.inconsistent.add(name)

    def _target_state(self, name: str, data: Any) -> None:
        if data is None:
            self.target_states.pop(name, None)
            return
        raw = data.get("state.v2") or data.get("state") or "STARTED"
        self.target_states[name] = TargetState(raw)

    def _task_count(self, name: str, data: Any) -> None:
        if data is not None:
            self.task_counts[name] = int(data.get("task-count", 0))
            self.pending_fencing.discard(name)

    def _restart(self, name: str, data: Any) -> None:
        if data is not None:
            self.restarts[name] = (bool(data.get("include-tasks")), bool(data.get("only-failed")))


# --- status topic ---------------------------------------------------------------------------


def status_record(key: str, status: Status, generation: int, version: str | None) -> tuple[bytes, bytes]:
    value = {"state": status.state.value, "trace": status.trace, "worker_id": status.worker_id,
             "generation": generation, "version": version}
    return key.encode(), dumps(value).encode()


def connector_status_key(name: str) -> str:
    return STATUS_CONNECTOR_PREFIX + name


def task_status_key(name: str, task: int) -> str:
    return f"{STATUS_TASK_PREFIX}{name}-{task}"


def topic_status_record(topic: str, connector: str, task: int, timestamp_ms: int) -> tuple[bytes, bytes]:
    value = {"topic": {"name": topic, "connector": connector, "task": task,
                       "discoverTimestamp": timestamp_ms}}
    return f"{STATUS_TOPIC_PREFIX}{topic}:connector-{connector}".encode(), dumps(value).encode()


@dataclass
class StatusState:
    """What the status topic says now: connector and task statuses, active topics."""

    connectors: dict[str, Status] = field(default_factory=dict)
    tasks: dict[tuple[str, int], Status] = field(default_factory=dict)
    topics: dict[str, set[str]] = field(default_factory=dict)
    generations: dict[Any, int] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None, offset: int = -1) -> None:
        text = (key or b"").decode("utf-8", errors="replace")
        data = _json(value)
        if text.startswith(STATUS_CONNECTOR_PREFIX):
            self._status(self.connectors, text[len(STATUS_CONNECTOR_PREFIX):], data)
        elif text.startswith(STATUS_TASK_PREFIX):
            parsed = _split_task(text[len(STATUS_TASK_PREFIX):])
            if parsed is not None:
                self._status(self.tasks, parsed, data)
        elif text.startswith(STATUS_TOPIC_PREFIX):
            topic, _, connector = text[len(STATUS_TOPIC_PREFIX):].partition(":connector-")
            found = self.topics.setdefault(connector, set())
            (found.add if data is not None else found.discard)(topic)

    def _status(self, table: dict[Any, Status], key: Any, data: Any) -> None:
        """A newer status wins; one from an older generation written by another worker is a
        late write of a worker that lost the task in a rebalance, and is ignored (Kafka's rule)."""
        if data is None:
            table.pop(key, None)
            self.generations.pop(key, None)
            return
        status = Status(State(data["state"]), str(data.get("worker_id", "")), data.get("trace"))
        generation = int(data.get("generation") or 0)
        current = table.get(key)
        if current is not None and current.worker_id != status.worker_id \
                and generation < self.generations.get(key, 0):
            return
        table[key] = status
        self.generations[key] = generation

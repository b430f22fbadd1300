"""`StandaloneHerder`: what runs on this worker, and every operation of the REST API.

Kafka's herder owns the connectors' configs and target states and reacts to changes:
start a connector, generate its task configs, start the tasks; pause, resume, stop
(KIP-875: tasks shut down, task configs dropped), restart (KIP-745), delete; offsets
read, altered and reset while a connector is stopped. Standalone mode keeps configs in
memory (the connector files are read again at each start) and source offsets in the
offsets file. Operations hold one lock, so the REST API (a thread pool) sees them in
some order; statuses come from the task threads through `_on_task_status`.

Distributed mode will be a second herder over the same worker, with configs, offsets and
statuses in compacted topics and work shared through the group protocol.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.connect.api.connector import Connector
from strom.connect.api.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConnectError,
    NotFoundError,
)
from strom.connect.runtime.status import State, Status, TargetState, TaskId
from strom.connect.runtime.validation import check_config, validate_config
from strom.connect.runtime.worker import Worker, connector_kind
from strom.connect.runtime.worker_task import WorkerTask

log = logging.getLogger(__name__)

UNKNOWN = "Unknown connector {name}"
ALTERED = "The offsets for this connector have been altered successfully"
RESET = "The offsets for this connector have been reset successfully"
# what Kafka answers when the connector's alter_offsets did not confirm (its default)
ALTERED_FRAMEWORK = ("The Connect framework-managed offsets for this connector have been altered "
                     "successfully. However, if this connector manages offsets externally, they will "
                     "need to be manually altered in the system that the connector uses.")
RESET_FRAMEWORK = ("The Connect framework-managed offsets for this connector have been reset "
                   "successfully. However, if this connector manages offsets externally, they will "
                   "need to be manually reset in the system that the connector uses.")
STOPPED_FIRST = ("Connectors must be in the STOPPED state before their offsets can be modified. This "
                 "can be done for the specified connector by issuing a 'PUT' request to the "
                 "'/connectors/{name}/stop' endpoint")


@dataclass
class ConnectorEntry:
    name: str
    config: dict[str, str]
    target: TargetState
    kind: str
    connector: Connector | None = None
    status: Status | None = None
    task_configs: list[dict[str, str]] = field(default_factory=list)
    tasks: dict[int, WorkerTask] = field(default_factory=dict)
    task_status: dict[int, Status] = field(default_factory=dict)
    topics: set[str] = field(default_factory=set)


class ConnectorContextImpl:
    """The `ConnectorContext` a connector gets."""

    def __init__(self, herder: StandaloneHerder, name: str) -> None:
        self.herder, self.name = herder, name

    def request_task_reconfiguration(self) -> None:
        threading.Thread(target=self.herder.reconfigure, args=(self.name,), daemon=True).start()

    def raise_error(self, error: Exception) -> None:
        self.herder.fail_connector(self.name, error)


class StandaloneHerder:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.worker_id = worker.worker_id
        self.lock = threading.RLock()
        self.connectors: dict[str, ConnectorEntry] = {}

    # --- reading --------------------------------------------------------------------------

    def _entry(self, name: str, missing: str = "Connector {name} not found") -> ConnectorEntry:
        """The connector called `name`; NotFoundError worded as Kafka words it for the caller."""
        entry = self.connectors.get(name)
        if entry is None:
            raise NotFoundError(missing.format(name=name))
        return entry

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self.connectors)

    def info(self, name: str) -> dict[str, Any]:
        with self.lock:
            entry = self._entry(name)
            return {"name": name, "config": dict(entry.config),
                    "tasks": [TaskId(name, i).as_json() for i in range(len(entry.task_configs))],
                    "type": entry.kind}

    def config(self, name: str) -> dict[str, str]:
        with self.lock:
            return dict(self._entry(name).config)

    def status(self, name: str) -> dict[str, Any]:
        with self.lock:
            entry = self._entry(name, "No status found for connector {name}")
            connector = entry.status or Status(State.UNASSIGNED, self.worker_id)
            tasks = [self._task_status(entry, i).as_json(id=i, version=self._task_version(entry, i))
                     for i in range(len(entry.task_configs))]
            return {"name": name, "connector": connector.as_json(version=self._version(entry)),
                    "tasks": tasks, "type": entry.kind}

    def _version(self, entry: ConnectorEntry) -> str | None:
        """The connector plugin's version (KIP-891 shows it in statuses)."""
        try:
            connector = entry.connector or self.worker.new_connector(entry.config)
            return str(connector.version())
        except Exception:  # noqa: BLE001 - a plugin that cannot say has no version
            return None

    def _task_version(self, entry: ConnectorEntry, number: int) -> str | None:
        task = entry.tasks.get(number)
        try:
            return None if task is None else str(task.parts.task.version())
        except Exception:  # noqa: BLE001 - a plugin that cannot say has no version
            return None

    def _task_status(self, entry: ConnectorEntry, task: int) -> Status:
        return entry.task_status.get(task, Status(State.UNASSIGNED, self.worker_id))

    def task_status(self, name: str, task: int) -> dict[str, Any]:
        with self.lock:
            entry = self._entry(name)
            if not 0 <= task < len(entry.task_configs):
                raise NotFoundError(f"No status found for task {name}-{task}")
            return self._task_status(entry, task).as_json(id=task, version=self._task_version(entry, task))

    def task_configs(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            entry = self._entry(name)
            return [{"id": TaskId(name, i).as_json(), "config": dict(c)}
                    for i, c in enumerate(entry.task_configs)]

    def topics(self, name: str) -> dict[str, Any]:
        """KIP-558's active topics; an unknown connector has none (Kafka answers the same)."""
        with self.lock:
            entry = self.connectors.get(name)
            return {name: {"topics": sorted(entry.topics) if entry else []}}

    def reset_topics(self, name: str) -> None:
        with self.lock:
            self._entry(name).topics.clear()

    # --- validation -------------------------------------------------------------------------

    def validate(self, props: Mapping[str, str]) -> dict[str, Any]:
        """Kafka's validate answer for a connector config (`/config/validate`)."""
        return validate_config(self.worker, props)

    def _checked(self, props: Mapping[str, str]) -> None:
        check_config(self.worker, props)

    # --- changing ------------------------------------------------------------------------------

    def put_config(self, name: str, config: Mapping[str, str], allow_replace: bool,
                   initial_state: TargetState = TargetState.STARTED) -> tuple[bool, dict[str, Any]]:
        """Create or replace a connector; (created, its info)."""
        props = {str(k): str(v) for k, v in config.items()}
        props.setdefault("name", name)
        if props["name"] != name:
            raise BadRequestError(f"Connector name configuration ({props['name']}) doesn't match "
                                  f"connector name in the URL ({name})")
        self._checked(props)
        with self.lock:
            existing = self.connectors.get(name)
            if existing is not None and not allow_replace:
                raise AlreadyExistsError(f"Connector {name} already exists")
            target = initial_state if existing is None else existing.target
            topics = set() if existing is None else existing.topics
            if existing is not None:
                self._shutdown(existing)
            kind = connector_kind(self.worker.plugins.connector_class(props["connector.class"]))
            entry = ConnectorEntry(name, props, target, kind, topics=topics)
            self.connectors[name] = entry
            self._start(entry)
            return existing is None, self.info(name)

    def delete(self, name: str) -> None:
        with self.lock:
            entry = self._entry(name)
            self._shutdown(entry)
            del self.connectors[name]

    def pause(self, name: str) -> None:
        with self.lock:
            entry = self._entry(name, UNKNOWN)
            if entry.target is TargetState.STOPPED:
                entry.target = TargetState.PAUSED
                self._start(entry)
                return
            entry.target = TargetState.PAUSED
            entry.status = Status(State.PAUSED, self.worker_id)
            for task in entry.tasks.values():
                task.pause()

    def resume(self, name: str) -> None:
        with self.lock:
            entry = self._entry(name, UNKNOWN)
            previous, entry.target = entry.target, TargetState.STARTED
            if previous is TargetState.STOPPED:
                self._start(entry)
                return
            if entry.status is not None and entry.status.state is State.PAUSED:
                entry.status = Status(State.RUNNING, self.worker_id)
            for task in entry.tasks.values():
                task.resume()

    def stop_connector(self, name: str) -> None:
        """KIP-875's stop: the connector and its tasks shut down, task configs dropped."""
        with self.lock:
            entry = self._entry(name, UNKNOWN)
            self._shutdown(entry)
            entry.target = TargetState.STOPPED
            entry.task_configs = []
            entry.task_status.clear()
            entry.status = Status(State.STOPPED, self.worker_id)

    def restart(self, name: str, include_tasks: bool, only_failed: bool) -> dict[str, Any] | None:
        """KIP-745: None for a plain restart (204), else the status with RESTARTING marks."""
        with self.lock:
            entry = self._entry(name, UNKNOWN)
            plain = not include_tasks and not only_failed
            failed = entry.status is not None and entry.status.state is State.FAILED
            restart_connector = not only_failed or failed
            tasks = [i for i in entry.tasks if include_tasks and (
                not only_failed or self._task_status(entry, i).state is State.FAILED)]
            if plain:
                self._restart_connector(entry)
                return None
            answer = self.status(name)
            if restart_connector:
                answer["connector"]["state"] = State.RESTARTING.value
            for task in answer["tasks"]:
                if task["id"] in tasks:
                    task["state"] = State.RESTARTING.value
            if restart_connector:
                self._restart_connector(entry, restart_tasks=tasks)
            else:
                for task_no in tasks:
                    self._restart_task(entry, task_no)
            return answer

    def restart_task(self, name: str, task: int) -> None:
        with self.lock:
            entry = self._entry(name, UNKNOWN)
            if task not in entry.tasks and not 0 <= task < len(entry.task_configs):
                raise NotFoundError(f"Task {name}-{task} not found")
            self._restart_task(entry, task)

    def reconfigure(self, name: str) -> None:
        """A connector asked for new task configs: restart its tasks if they changed."""
        with self.lock:
            entry = self.connectors.get(name)
            if entry is None or entry.connector is None or entry.target is TargetState.STOPPED:
                return
            configs = self.worker.task_configs(entry.connector, entry.config)
            if configs != entry.task_configs:
                self._stop_tasks(entry)
                entry.task_configs = configs
                self._start_tasks(entry)

    def fail_connector(self, name: str, error: BaseException) -> None:
        with self.lock:
            entry = self.connectors.get(name)
            if entry is not None:
                entry.status = Status(State.FAILED, self.worker_id, _trace(error))

    def stop(self) -> None:
        """Stop every connector and task (the worker is shutting down)."""
        with self.lock:
            for entry in self.connectors.values():
                self._shutdown(entry)

    # --- offsets (KIP-875) ---------------------------------------------------------------------

    def offsets(self, name: str) -> dict[str, Any]:
        with self.lock:
            entry = self._entry(name)
        if entry.kind == "source":
            return {"offsets": [{"partition": p, "offset": o}
                                for p, o in self.worker.store.entries(name)]}
        from strom.connect.runtime.sink_offsets import committed

        return {"offsets": committed(self.worker.clients, f"connect-{name}")}

    def alter_offsets(self, name: str, body: Any) -> dict[str, str]:
        entries = body.get("offsets") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            raise BadRequestError("Partitions / offsets need to be provided for an alter offsets request")
        with self.lock:
            entry = self._stopped(name)
            confirmed = self._confirm(entry, entries)
            if entry.kind == "source":
                _alter_source(self.worker, name, entries)
            else:
                from strom.connect.runtime.sink_offsets import alter

                alter(self.worker.clients, f"connect-{name}", entries)
        return {"message": ALTERED if confirmed else ALTERED_FRAMEWORK}

    def _confirm(self, entry: ConnectorEntry, entries: list[Any] | None) -> bool:
        """The connector's `alter_offsets` verdict (KIP-875): True if it handled them."""
        connector = self.worker.new_connector(entry.config)
        offsets: dict[Any, Any] = {}
        for item in entries or []:
            if isinstance(item, dict):
                offsets[json.dumps(item.get("partition"), sort_keys=True)] = item.get("offset")
        return bool(connector.alter_offsets(entry.config, offsets))

    def reset_offsets(self, name: str) -> dict[str, str]:
        with self.lock:
            entry = self._stopped(name)
            current = self.offsets(name)["offsets"]
            confirmed = self._confirm(entry, [{"partition": o["partition"], "offset": None}
                                              for o in current])
            if entry.kind == "source":
                self.worker.store.remove_connector(name)
            else:
                from strom.connect.runtime.sink_offsets import reset

                reset(self.worker.clients, f"connect-{name}")
        return {"message": RESET if confirmed else RESET_FRAMEWORK}

    def _stopped(self, name: str) -> ConnectorEntry:
        entry = self._entry(name)
        if entry.target is not TargetState.STOPPED:
            raise BadRequestError(STOPPED_FIRST.replace("{name}", name))
        return entry

    # --- running -------------------------------------------------------------------------------

    def _start(self, entry: ConnectorEntry) -> None:
        if entry.target is TargetState.STOPPED:
            entry.status = Status(State.STOPPED, self.worker_id)
            return
        try:
            connector = self.worker.new_connector(entry.config)
            connector.initialize(ConnectorContextImpl(self, entry.name))
            connector.start(entry.config)
            entry.connector = connector
            entry.task_configs = self.worker.task_configs(connector, entry.config)
        except Exception as exc:
            log.exception("Failed to start connector %s", entry.name)
            entry.status = Status(State.FAILED, self.worker_id, _trace(exc))
            return
        paused = entry.target is TargetState.PAUSED
        entry.status = Status(State.PAUSED if paused else State.RUNNING, self.worker_id)
        self._start_tasks(entry)

    def _start_tasks(self, entry: ConnectorEntry) -> None:
        for number in range(len(entry.task_configs)):
            self._start_task(entry, number)

    def _start_task(self, entry: ConnectorEntry, number: int) -> None:
        assert entry.connector is not None
        task_id = TaskId(entry.name, number)
        try:
            task = self.worker.build_task(task_id, entry.connector, entry.config,
                                          entry.task_configs[number], self._on_task_status,
                                          lambda topic: self._on_topic(entry.name, topic))
        except Exception as exc:
            log.exception("Failed to start task %s", task_id)
            entry.task_status[number] = Status(State.FAILED, self.worker_id, _trace(exc))
            return
        entry.tasks[number] = task
        entry.task_status[number] = Status(State.UNASSIGNED, self.worker_id)
        task.start(paused=entry.target is TargetState.PAUSED)

    # The two callbacks below run on task threads and take no lock: the herder holds its
    # lock while it waits for tasks to stop, and a task reports its last state as it ends.
    # Each is one atomic dict/set update.

    def _on_task_status(self, task_id: TaskId, state: State, trace: str | None) -> None:
        entry = self.connectors.get(task_id.connector)
        if entry is not None and task_id.task in entry.tasks:
            entry.task_status[task_id.task] = Status(state, self.worker_id, trace)

    def _on_topic(self, name: str, topic: str) -> None:
        entry = self.connectors.get(name)
        if entry is not None:
            entry.topics.add(topic)

    def _stop_tasks(self, entry: ConnectorEntry, numbers: list[int] | None = None) -> None:
        chosen = [entry.tasks[n] for n in (numbers if numbers is not None else list(entry.tasks))
                  if n in entry.tasks]
        for task in chosen:
            task.stop()
        for task in chosen:
            task.await_stop()
            entry.tasks.pop(task.id.task, None)
            entry.task_status.pop(task.id.task, None)

    def _shutdown(self, entry: ConnectorEntry) -> None:
        self._stop_tasks(entry)
        if entry.connector is not None:
            try:
                entry.connector.stop()
            except Exception:
                log.exception("Failed to stop connector %s", entry.name)
            entry.connector = None

    def _restart_connector(self, entry: ConnectorEntry, restart_tasks: list[int] | None = None) -> None:
        if entry.target is TargetState.STOPPED:
            return
        numbers = list(entry.tasks) if restart_tasks is None else restart_tasks
        if entry.connector is not None:
            try:
                entry.connector.stop()
            except Exception:
                log.exception("Failed to stop connector %s", entry.name)
            entry.connector = None
        self._stop_tasks(entry, numbers)
        kept = dict(entry.tasks)
        try:
            connector = self.worker.new_connector(entry.config)
            connector.initialize(ConnectorContextImpl(self, entry.name))
            connector.start(entry.config)
            entry.connector = connector
            entry.status = Status(State.PAUSED if entry.target is TargetState.PAUSED else State.RUNNING,
                                  self.worker_id)
        except Exception as exc:  # noqa: BLE001 - a connector's failure becomes its FAILED status
            entry.status = Status(State.FAILED, self.worker_id, _trace(exc))
            return
        for number in range(len(entry.task_configs)):
            if number not in kept:
                self._start_task(entry, number)

    def _restart_task(self, entry: ConnectorEntry, number: int) -> None:
        if entry.connector is None:
            raise ConnectError(f"Cannot restart task {entry.name}-{number}: its connector is not running")
        self._stop_tasks(entry, [number])
        self._start_task(entry, number)


def _trace(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def _alter_source(worker: Worker, name: str, entries: list[Any]) -> None:
    from strom.connect.runtime.offsets import key_text

    changes: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for item in entries:
        partition = item.get("partition") if isinstance(item, dict) else None
        if not isinstance(partition, dict):
            raise BadRequestError("Source partitions may not be null")
        offset = item.get("offset")
        if offset is not None and not isinstance(offset, dict):
            raise BadRequestError("Source offsets must be JSON objects or null")
        changes[key_text(name, partition)] = (partition, offset)
    worker.store.put(name, changes)

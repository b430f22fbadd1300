"""Connector and task states, and the status objects the REST API shows.

States are Kafka's: UNASSIGNED, RUNNING, PAUSED, FAILED, RESTARTING, and STOPPED
(KIP-875, connectors only). A FAILED status carries the error's trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class State(Enum):
    UNASSIGNED = "UNASSIGNED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    FAILED = "FAILED"
    RESTARTING = "RESTARTING"
    STOPPED = "STOPPED"


class TargetState(Enum):
    """What the user asked for: started, paused or stopped."""

    STARTED = "STARTED"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"


@dataclass(frozen=True)
class TaskId:
    connector: str
    task: int

    def __str__(self) -> str:
        return f"{self.connector}-{self.task}"

    def as_json(self) -> dict[str, Any]:
        return {"connector": self.connector, "task": self.task}


@dataclass(frozen=True)
class Status:
    state: State
    worker_id: str
    trace: str | None = None

    def as_json(self, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {**extra, "state": self.state.value, "worker_id": self.worker_id}
        if self.trace is not None:
            body["trace"] = self.trace
        return body

"""`WorkerTask`: one task on its own thread, with the lifecycle Kafka's WorkerTask has.

The thread starts the task, then runs `iteration()` until stopped; pause and resume
change what an iteration does (a paused task does nothing, a paused sink keeps polling
with its partitions paused to stay in its group). An exception from the task ends the
thread with the task FAILED and its trace recorded; the herder reads the status through
the listener. `stop()` asks the thread to finish and waits up to
`task.shutdown.graceful.timeout.ms`; a task that overruns it is abandoned (Kafka's
"cancel"): it can no longer commit or report.
"""

from __future__ import annotations

import logging
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom.connect.api.config import AbstractConfig
from strom.connect.converters.base import Converter
from strom.connect.runtime.errors import ErrorHandler
from strom.connect.runtime.metrics import TaskMetrics
from strom.connect.runtime.status import State, TaskId
from strom.connect.transforms.chain import TransformationChain

log = logging.getLogger(__name__)

StatusListener = Callable[[TaskId, State, str | None], None]


@dataclass
class TaskParts:
    """What the worker builds for a task from the connector and worker configs."""

    id: TaskId
    task: Any  # SourceTask or SinkTask
    task_config: dict[str, str]
    connector_config: AbstractConfig
    key_converter: Converter
    value_converter: Converter
    header_converter: Converter
    converter_names: tuple[str, str, str]
    chain: TransformationChain
    errors: ErrorHandler


class WorkerTask(ABC):
    """A task thread; subclasses give `start_task`, `iteration`, `close_task`."""

    def __init__(self, parts: TaskParts, listener: StatusListener, shutdown_timeout_s: float) -> None:
        self.parts = parts
        self.id = parts.id
        self.listener = listener
        self.shutdown_timeout_s = shutdown_timeout_s
        self.stopping = threading.Event()
        self.paused = False
        self._resumed = threading.Event()
        self.cancelled = False
        self.metrics = TaskMetrics()  # the worker registers its own before start
        self.thread = threading.Thread(target=self._run, name=f"task-{self.id}", daemon=True)

    def start(self, paused: bool = False) -> None:
        self.paused = paused
        self.thread.start()

    def pause(self) -> None:
        self.paused = True
        self._resumed.clear()
        self._report(State.PAUSED)

    def resume(self) -> None:
        self.paused = False
        self._resumed.set()
        self._report(State.RUNNING)

    def stop(self) -> None:
        """Signal the thread to finish (non-blocking); see `await_stop`."""
        self.stopping.set()
        self._resumed.set()
        self.parts.errors.stop()

    def await_stop(self) -> bool:
        """Wait for the thread; False (and the task cancelled) if it overran the timeout."""
        self.thread.join(self.shutdown_timeout_s)
        if self.thread.is_alive():
            self.cancelled = True
            log.error("Graceful stop of task %s failed.", self.id)
            return False
        return True

    def wait_if_paused(self) -> bool:
        """True while paused (after waiting a little), so the loop skips its work."""
        if not self.paused:
            return False
        self._resumed.wait(0.2)
        return self.paused

    def _report(self, state: State, trace: str | None = None) -> None:
        if not self.cancelled:
            self.listener(self.id, state, trace)

    def _run(self) -> None:
        try:
            self.start_task()
            self.metrics.started()
            self._report(State.PAUSED if self.paused else State.RUNNING)
            while not self.stopping.is_set():
                self.iteration()
        except Exception as exc:
            log.error("%s Task threw an uncaught and unrecoverable exception. Task is being killed and "
                      "will not recover until manually restarted", self.id, exc_info=exc)
            self.metrics.crashed()
            self._report(State.FAILED, "".join(traceback.format_exception(exc)))
            self._close_quietly(failed=True)
            return
        self._close_quietly(failed=False)
        self._report(State.UNASSIGNED)

    def _close_quietly(self, failed: bool) -> None:
        try:
            self.close_task(failed)
        except Exception:
            log.exception("%s failed to close cleanly", self.id)

    @abstractmethod
    def start_task(self) -> None:
        """Create clients, initialize and start the connector's task."""

    @abstractmethod
    def iteration(self) -> None:
        """One round of work: poll and produce, or consume and put."""

    @abstractmethod
    def close_task(self, failed: bool) -> None:
        """Commit what can be committed (unless failed), stop the task, close clients."""

"""Kafka Connect's worker and task metrics, for Prometheus, at `GET /metrics` on the REST listener.

Kafka Connect publishes its metrics as JMX MBeans (`connect-worker-metrics`,
`connector-metrics`, `connector-task-metrics`, `source-task-metrics`, `sink-task-metrics`,
`task-error-metrics`); Strom Connect offers the same measurements under Prometheus names:
`kafka_connect_<group>_<metric>`, dashes as underscores, counters ending in `_total`
(`source-record-poll-total` → `kafka_connect_source_task_source_record_poll_total`), with
labels `connector` and `task` instead of MBean keys. The full list is in docs/connect.md.

Tasks count into plain attributes of their `TaskMetrics` (one writer: the task's thread,
no lock on the hot path); the collector reads them at scrape time, together with the
herder's statuses, so a scrape costs nothing between scrapes. Rates are Kafka's: events
per second over the last `WINDOW_S` seconds. A task's metrics start at zero when the task
starts (a restarted task is a new task, as in Kafka) and disappear with it; only tasks of
this worker are reported.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from strom.connect.runtime.errors import DeadLetterQueueReporter, ErrorHandler
from strom.connect.runtime.status import TaskId

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from strom.connect.runtime.herder_api import Herder

WINDOW_S = 30.0
PREFIX = "kafka_connect_"
STATES = ("running", "paused", "failed", "unassigned", "restarting", "stopped")


class Meter:
    """A total and its rate per second over the last `WINDOW_S` (Kafka's Rate)."""

    def __init__(self) -> None:
        self.total = 0
        self._points: deque[tuple[float, int]] = deque()  # (time, total before), ≥ 1 s apart

    def add(self, count: int) -> None:
        now = time.monotonic()
        if not self._points or now - self._points[-1][0] >= 1.0:
            self._points.append((now, self.total))
            if len(self._points) > WINDOW_S + 2:
                self._points.popleft()
        self.total += count

    def rate(self) -> float:
        now = time.monotonic()
        points = [p for p in list(self._points) if now - p[0] <= WINDOW_S]
        if not points:
            return 0.0
        start, before = points[0]
        return (self.total - before) / max(now - start, 1.0)


class Timing:
    """Count, sum and maximum of durations in ms (Kafka's avg/max time metrics)."""

    def __init__(self) -> None:
        self.count = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0

    def since(self, started: float) -> None:
        elapsed = (time.monotonic() - started) * 1000
        self.count += 1
        self.sum_ms += elapsed
        self.max_ms = max(self.max_ms, elapsed)

    def avg(self) -> float:
        return self.sum_ms / self.count if self.count else 0.0


class TaskMetrics:
    """What one task counts: records in and out, batch times, offset commits, errors."""

    def __init__(self, kind: str = "source", errors: ErrorHandler | None = None,
                 worker: WorkerMetrics | None = None) -> None:
        self.kind = kind
        self.errors = errors
        self.worker = worker
        self.is_started = False
        self.records_in = Meter()   # source: polled from the task; sink: read from Kafka
        self.records_out = Meter()  # source: written to Kafka; sink: sent to the task's put
        self.batch = Timing()       # source: poll; sink: put
        self.commit = Timing()
        self.commit_failures = 0

    def started(self) -> None:
        """The task started (its thread calls this once start() returned)."""
        self.is_started = True
        if self.worker is not None:
            self.worker.startup_successes += 1

    def crashed(self) -> None:
        """The task failed; a failure before `started` is a failed start-up."""
        if not self.is_started and self.worker is not None:
            self.worker.startup_failures += 1

    def polled(self, count: int, started: float) -> None:
        self.batch.since(started)
        self.records_in.add(count)

    def committed(self, ok: bool, started: float) -> None:
        self.commit.since(started)
        if not ok:
            self.commit_failures += 1


class WorkerMetrics:
    """The worker's registry of task metrics and its task start-up counts."""

    def __init__(self) -> None:
        self.tasks: dict[TaskId, TaskMetrics] = {}
        self.startup_attempts = 0
        self.startup_successes = 0
        self.startup_failures = 0

    def register(self, task_id: TaskId, kind: str, errors: ErrorHandler) -> TaskMetrics:
        """Fresh metrics for a task being built (replacing a previous incarnation's)."""
        self.startup_attempts += 1
        metrics = TaskMetrics(kind, errors, self)
        self.tasks[task_id] = metrics
        return metrics


class ConnectCollector(Collector):
    """Reads the herder's statuses and the worker's task metrics at scrape time."""

    def __init__(self, herder: Herder) -> None:
        self.herder = herder

    def collect(self) -> Iterator[Metric]:
        statuses = self._statuses()
        yield from _worker_families(statuses, self.herder.worker.metrics)
        yield from _status_families(statuses)
        local = {TaskId(name, t["id"]): status["type"] for name, status in statuses.items()
                 for t in status["tasks"]}
        metrics = {tid: m for tid, m in self.herder.worker.metrics.tasks.items() if tid in local}
        yield from _task_families(metrics)

    def _statuses(self) -> dict[str, dict[str, Any]]:
        """Each connector's status, with only the tasks this worker runs."""
        mine = self.herder.worker.worker_id
        found: dict[str, dict[str, Any]] = {}
        for name in self.herder.names():
            try:
                status = self.herder.status(name)
            except Exception:  # noqa: BLE001 - deleted while we read: not reported
                continue
            status["tasks"] = [t for t in status.get("tasks", []) if t.get("worker_id") == mine]
            if status["connector"].get("worker_id") == mine or status["tasks"]:
                found[name] = status
        return found


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=labels)


def _worker_families(statuses: dict[str, dict[str, Any]], worker: WorkerMetrics) -> Iterator[Metric]:
    """connect-worker-metrics: connector and task counts, task start-ups."""
    connectors = sum(1 for s in statuses.values() if s["connector"].get("worker_id"))
    yield _single_gauge("worker_connector_count", "Connectors run by this worker.", connectors)
    tasks = sum(len(s["tasks"]) for s in statuses.values())
    yield _single_gauge("worker_task_count", "Tasks run by this worker.", tasks)
    attempts = _counter("worker_task_startup_attempts", "Task start-ups attempted.")
    attempts.add_metric([], worker.startup_attempts)
    yield attempts
    failures = _counter("worker_task_startup_failure", "Task start-ups that failed.")
    failures.add_metric([], worker.startup_failures)
    yield failures
    success = _counter("worker_task_startup_success", "Task start-ups that succeeded.")
    success.add_metric([], worker.startup_successes)
    yield success
    per_state = _gauge("worker_connector_task_count", "A connector's tasks on this worker, by state.",
                       ["connector", "state"])
    for name, status in sorted(statuses.items()):
        for state in STATES:
            count = sum(1 for t in status["tasks"] if t["state"].lower() == state)
            per_state.add_metric([name, state], count)
    yield per_state


def _single_gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def _status_families(statuses: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    """connector-metrics and connector-task-metrics `status`: 1 for the current state."""
    connector = _gauge("connector_status", "1 for the connector's state.",
                       ["connector", "type", "status"])
    task = _gauge("connector_task_status", "1 for the task's state.", ["connector", "task", "status"])
    for name, status in sorted(statuses.items()):
        current = status["connector"]["state"].lower()
        for state in STATES:
            connector.add_metric([name, status.get("type", ""), state], 1 if state == current else 0)
        for entry in status["tasks"]:
            for state in STATES:
                task.add_metric([name, str(entry["id"]), state], 1 if entry["state"].lower() == state else 0)
    yield connector
    yield task


# (Prometheus name after the prefix, documentation, kind, value of a TaskMetrics)
_SOURCE = [
    ("source_task_source_record_poll", "Records polled from the task (before transforms).", "counter",
     lambda m: m.records_in.total),
    ("source_task_source_record_poll_rate", "Records polled per second.", "gauge",
     lambda m: m.records_in.rate()),
    ("source_task_source_record_write", "Records written to Kafka (after transforms).", "counter",
     lambda m: m.records_out.total),
    ("source_task_source_record_write_rate", "Records written per second.", "gauge",
     lambda m: m.records_out.rate()),
    ("source_task_poll_batch_avg_time_ms", "Average time of a poll.", "gauge", lambda m: m.batch.avg()),
    ("source_task_poll_batch_max_time_ms", "Longest poll.", "gauge", lambda m: m.batch.max_ms),
]
_SINK = [
    ("sink_task_sink_record_read", "Records read from Kafka (before transforms).", "counter",
     lambda m: m.records_in.total),
    ("sink_task_sink_record_read_rate", "Records read per second.", "gauge", lambda m: m.records_in.rate()),
    ("sink_task_sink_record_send", "Records given to the task's put (after transforms).", "counter",
     lambda m: m.records_out.total),
    ("sink_task_sink_record_send_rate", "Records sent per second.", "gauge", lambda m: m.records_out.rate()),
    ("sink_task_put_batch_avg_time_ms", "Average time of a put.", "gauge", lambda m: m.batch.avg()),
    ("sink_task_put_batch_max_time_ms", "Longest put.", "gauge", lambda m: m.batch.max_ms),
]
_COMMON = [
    ("connector_task_offset_commit_success", "Offset commits that succeeded.", "counter",
     lambda m: m.commit.count - m.commit_failures),
    ("connector_task_offset_commit_failure", "Offset commits that failed.", "counter",
     lambda m: m.commit_failures),
    ("connector_task_offset_commit_success_percentage", "Share of offset commits that succeeded.", "gauge",
     lambda m: (m.commit.count - m.commit_failures) / m.commit.count if m.commit.count else 0.0),
    ("connector_task_offset_commit_avg_time_ms", "Average time of an offset commit.", "gauge",
     lambda m: m.commit.avg()),
    ("connector_task_offset_commit_max_time_ms", "Longest offset commit.", "gauge",
     lambda m: m.commit.max_ms),
    ("task_error_record_errors", "Records whose processing failed (after retries).", "counter",
     lambda m: m.errors.failed if m.errors else 0),
    ("task_error_record_retries", "Retries of failed operations.", "counter",
     lambda m: m.errors.retries if m.errors else 0),
    ("task_error_records_skipped", "Records skipped under errors.tolerance=all.", "counter",
     lambda m: m.errors.skipped if m.errors else 0),
    ("task_error_errors_logged", "Errors logged (errors.log.enable).", "counter",
     lambda m: m.errors.skipped if m.errors and m.errors.logging else 0),
    ("task_error_deadletterqueue_produce_requests", "Records sent to the dead letter queue.", "counter",
     lambda m: _dlq(m, "requests")),
    ("task_error_deadletterqueue_produce_failures", "Dead letter queue writes that failed.", "counter",
     lambda m: _dlq(m, "failures")),
    ("task_error_last_error_timestamp", "When the last tolerated error happened (ms since the epoch).",
     "gauge", lambda m: m.errors.last_error_ms if m.errors else 0),
]


def _dlq(metrics: TaskMetrics, counter: str) -> int:
    """A count of the task's dead letter queue reporter (0 without one)."""
    reporters = metrics.errors.reporters if metrics.errors else []
    return sum(int(getattr(r, counter, 0)) for r in reporters if isinstance(r, DeadLetterQueueReporter))


def _task_families(tasks: dict[TaskId, TaskMetrics]) -> Iterator[Metric]:
    for table, kind in ((_SOURCE, "source"), (_SINK, "sink"), (_COMMON, None)):
        for name, doc, metric_kind, value in table:
            family = (_counter if metric_kind == "counter" else _gauge)(name, doc, ["connector", "task"])
            for task_id, metrics in sorted(tasks.items(), key=lambda i: (i[0].connector, i[0].task)):
                if kind is None or metrics.kind == kind:
                    family.add_metric([task_id.connector, str(task_id.task)], float(value(metrics)))
            yield family


def metrics_route(herder: Herder) -> Route:
    """`GET /metrics` in Prometheus' text format, for the REST app."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.responses import Response
    from starlette.routing import Route

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConnectCollector(herder))

    def scrape(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"])

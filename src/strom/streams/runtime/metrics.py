"""Prometheus metrics of a Streams application, computed when scraped.

The stream thread bumps plain counters (no prometheus-client call per record); the
collector turns them into metric families at scrape time, on the application's own
registry (several applications in one process do not collide). Names follow the
`strom_streams_` prefix; Kafka Streams' JMX equivalents in brackets:

- `strom_streams_records_processed_total{task_id}` (process-total per task)
- `strom_streams_commits_total`, `strom_streams_commit_seconds_total`,
  `strom_streams_last_commit_seconds` (commit-latency)
- `strom_streams_records_lag{topic,partition}` (records-lag, as of the last commit)
- `strom_streams_restored_records_total{store}` and
  `strom_streams_restore_remaining_records{store,partition}` (restore progress)
- per stream thread (`thread_id`, e.g. `app-StreamThread-2`): `strom_streams_thread_records_processed_total`,
  `strom_streams_thread_commits_total`, `strom_streams_thread_active_tasks`,
  `strom_streams_thread_standby_tasks` (Kafka's thread-level process-total,
  commit-total, and the task counts)

The threads of one instance share this object; each bumps only its own thread's entries.

`StreamsConfig.metrics_port` serves them over HTTP at `/metrics`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any


class StreamsMetrics:
    def __init__(self, application_id: str) -> None:
        self.application_id = application_id
        self.processed: dict[str, int] = defaultdict(int)
        self.commits = 0
        self.commit_seconds_total = 0.0
        self.last_commit_seconds = 0.0
        self.lag: dict[tuple[str, int], int] = {}
        self.restored: dict[str, int] = defaultdict(int)
        self.restore_remaining: dict[tuple[str, int], int] = {}
        self.thread_processed: dict[str, int] = defaultdict(int)
        self.thread_commits: dict[str, int] = defaultdict(int)
        self.thread_tasks: dict[str, tuple[int, int]] = {}  # thread → (active, standby)
        self._registry: Any = None

    # --- updates from the stream thread ----------------------------------------------

    def committed(self, seconds: float, thread: str = "") -> None:
        self.commits += 1
        self.commit_seconds_total += seconds
        self.last_commit_seconds = seconds
        self.thread_commits[thread] += 1

    def thread_gone(self, thread: str) -> None:
        """A removed thread's gauges go (its counters stay: they are totals)."""
        self.thread_tasks.pop(thread, None)

    def restore_progress(self, store: str, partition: int, restored: int, remaining: int) -> None:
        self.restored[store] += restored
        self.restore_remaining[(store, partition)] = remaining

    # --- exposition -------------------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        app = self.application_id
        processed = CounterMetricFamily("strom_streams_records_processed",
                                        "Records processed, per task",
                                        labels=["application_id", "task_id"])
        for task_id, count in sorted(self.processed.items()):
            processed.add_metric([app, task_id], count)
        yield processed
        yield _single(CounterMetricFamily, "strom_streams_commits", "Commits done", app,
                      self.commits)
        yield _single(CounterMetricFamily, "strom_streams_commit_seconds",
                      "Seconds spent committing", app, self.commit_seconds_total)
        yield _single(GaugeMetricFamily, "strom_streams_last_commit_seconds",
                      "Duration of the last commit", app, self.last_commit_seconds)
        lag = GaugeMetricFamily("strom_streams_records_lag", "Records behind the end",
                                labels=["application_id", "topic", "partition"])
        for (topic, partition), value in sorted(self.lag.items()):
            lag.add_metric([app, topic, str(partition)], value)
        yield lag
        restored = CounterMetricFamily("strom_streams_restored_records",
                                       "Changelog records restored", labels=["application_id",
                                                                             "store"])
        for store, count in sorted(self.restored.items()):
            restored.add_metric([app, store], count)
        yield restored
        remaining = GaugeMetricFamily("strom_streams_restore_remaining_records",
                                      "Changelog records left to restore",
                                      labels=["application_id", "store", "partition"])
        for (store, partition), count in sorted(self.restore_remaining.items()):
            remaining.add_metric([app, store, str(partition)], count)
        yield remaining
        yield from self._thread_families(CounterMetricFamily, GaugeMetricFamily)

    def _thread_families(self, counter: Any, gauge: Any) -> Iterator[Any]:
        app, labels = self.application_id, ["application_id", "thread_id"]
        processed = counter("strom_streams_thread_records_processed",
                            "Records processed, per stream thread", labels=labels)
        for thread, count in sorted(self.thread_processed.items()):
            processed.add_metric([app, thread], count)
        commits = counter("strom_streams_thread_commits", "Commits, per stream thread",
                          labels=labels)
        for thread, count in sorted(self.thread_commits.items()):
            commits.add_metric([app, thread], count)
        active = gauge("strom_streams_thread_active_tasks", "Active tasks of a stream thread",
                       labels=labels)
        standby = gauge("strom_streams_thread_standby_tasks",
                        "Standby tasks of a stream thread", labels=labels)
        for thread, (actives, standbys) in sorted(self.thread_tasks.items()):
            active.add_metric([app, thread], actives)
            standby.add_metric([app, thread], standbys)
        yield from (processed, commits, active, standby)

    def registry(self) -> Any:
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            self._registry = CollectorRegistry()
            self._registry.register(self)
        return self._registry

    def text(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry()).decode()

    def serve(self, port: int, addr: str = "0.0.0.0") -> Any:
        """Serve `/metrics` on `port` from a daemon thread; the server object."""
        from prometheus_client import start_http_server

        return start_http_server(port, addr=addr, registry=self.registry())


def _single(family: Any, name: str, documentation: str, app: str, value: float) -> Any:
    metric = family(name, documentation, labels=["application_id"])
    metric.add_metric([app], value)
    return metric

"""`StreamsApp`: a topology running against a cluster as the application `application_id`
(Kafka's KafkaStreams). Start it, or `run()` it in the foreground until SIGTERM/SIGINT.

    app = StreamsApp(builder, application_id="orders", bootstrap_servers="localhost:9092")
    app.run()

Before the first poll it checks the source topics exist and creates the internal topics
(`<application.id>-<name>-repartition`, `<application.id>-<store>-changelog`) with the
partition counts the topology needs. A clean `close()` commits, closes the stores
(writing their checkpoints) and leaves the group; the next start resumes from the
committed offsets and restores state from the changelogs.
"""

from __future__ import annotations

import enum
import logging
import signal
import threading
from typing import Any

from strom.client import KafkaClients
from strom.streams.dsl.builder import StreamsBuilder
from strom.streams.errors import StreamsError
from strom.streams.runtime import topics
from strom.streams.runtime.config import StreamsConfig
from strom.streams.runtime.global_updater import GlobalUpdater
from strom.streams.runtime.instance import Instance
from strom.streams.runtime.metrics import StreamsMetrics
from strom.streams.runtime.queries import Queries
from strom.streams.runtime.queries_http import QueryServer
from strom.streams.runtime.thread import StreamThread
from strom.streams.runtime.topics import Plan
from strom.streams.topology import Topology

log = logging.getLogger(__name__)


class State(enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    NOT_RUNNING = "NOT_RUNNING"
    ERROR = "ERROR"


class StreamsApp:
    def __init__(self, topology: Topology | StreamsBuilder, application_id: str | None = None,
                 bootstrap_servers: str | None = None, *, config: StreamsConfig | None = None,
                 **settings: Any) -> None:
        self.topology = topology.build() if isinstance(topology, StreamsBuilder) else topology
        if config is None:
            if application_id is None or bootstrap_servers is None:
                raise ValueError("application_id and bootstrap_servers (or config) are required")
            config = StreamsConfig(application_id, bootstrap_servers, **settings)
        self.config = config
        self.clients = KafkaClients(config.bootstrap_servers, config.client_properties,
                                    client_id=config.application_id)
        self.state = State.CREATED
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.stream_threads: list[StreamThread] = []
        self._runners: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._instance: Instance | None = None
        self._plan: Plan | None = None
        self._next_index = 1
        self._lock = threading.Lock()
        self._metrics_server: Any = None
        self.queries = Queries(self)
        self._query_server: QueryServer | None = None

    @property
    def stream_thread(self) -> StreamThread | None:
        """The first stream thread (the one that keeps the global stores)."""
        return self.stream_threads[0] if self.stream_threads else None

    def _prepare(self) -> None:
        app = self.config.application_id
        external = topics.external_partitions(self.clients, self.topology)
        self._plan = topics.plan(self.topology, app, external)
        topics.create_internal_topics(self.clients, self.topology, app, self._plan,
                                      self.config.replication_factor)
        self.config.app_state_dir.mkdir(parents=True, exist_ok=True)
        self._instance = Instance(GlobalUpdater(self.topology, self.config, self.clients),
                                  StreamsMetrics(app))

    def start(self) -> None:
        """Prepare topics and run `num_stream_threads` stream threads in the background."""
        if self.state is not State.CREATED:
            raise StreamsError(f"cannot start an application in state {self.state.value}")
        self._prepare()
        assert self._instance is not None
        if self.config.metrics_port is not None:
            self._metrics_server = self._instance.metrics.serve(self.config.metrics_port)
        if self.config.application_server:
            self._query_server = QueryServer(self.queries, self.config.application_server,
                                             self.config.query_key_parser)
            self._query_server.start()
        self.state = State.RUNNING
        for _ in range(max(1, self.config.num_stream_threads)):
            self._spawn()

    def _spawn(self) -> str:
        assert self._instance is not None and self._plan is not None
        with self._lock:
            index = self._next_index
            self._next_index += 1
            thread = StreamThread(self.topology, self.config, self.clients, self._plan,
                                  thread_index=index, instance=self._instance)
            stop = threading.Event()
            runner = threading.Thread(target=self._run, args=(thread, stop), name=thread.name,
                                      daemon=True)
            self.stream_threads.append(thread)
            self._runners[thread.name] = (runner, stop)
        runner.start()
        return thread.name

    def add_stream_thread(self) -> str:
        """Start one more stream thread (a new group member: a rebalance spreads the
        tasks over it); its name, as Kafka's addStreamThread returns."""
        if self.state is not State.RUNNING:
            raise StreamsError(f"cannot add a stream thread in state {self.state.value}")
        return self._spawn()

    def remove_stream_thread(self, timeout: float = 60.0) -> str | None:
        """Stop the newest stream thread (it commits, closes its tasks and leaves the
        group: the others take its tasks over); its name, or None if only the thread
        that keeps the global stores is left."""
        with self._lock:
            candidates = [t for t in self.stream_threads if t is not self.stream_thread]
            if self.state is not State.RUNNING or not candidates:
                return None
            thread = candidates[-1]
            runner, stop = self._runners.pop(thread.name)
        stop.set()
        runner.join(timeout)
        with self._lock:
            self.stream_threads.remove(thread)
        return thread.name

    def _run(self, thread: StreamThread, stop: threading.Event) -> None:
        try:
            thread.run(stop)
        except BaseException as exc:
            self.error = exc
            self.state = State.ERROR
            self._stop.set()  # one thread failing stops the instance, as Kafka's default
            log.exception("stream thread %s died", thread.name)

    def run(self) -> None:
        """Start and block until SIGTERM/SIGINT (or `close` from another thread)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        self.start()
        while not self._stop.wait(0.2):
            pass
        self.close()
        if self.error is not None:
            raise StreamsError(f"the application failed: {self.error}") from self.error

    def close(self, timeout: float = 60.0) -> bool:
        """Commit, close stores and leave the group; False if that took over `timeout`."""
        if self.state in (State.RUNNING, State.ERROR):
            if self.state is State.RUNNING:
                self.state = State.PENDING_SHUTDOWN
            self._stop.set()
            for _, stop in list(self._runners.values()):
                stop.set()
            for runner, _ in list(self._runners.values()):
                runner.join(timeout)
                if runner.is_alive():
                    return False
        if self.state is not State.ERROR:
            self.state = State.NOT_RUNNING
        if self._metrics_server is not None:
            self._metrics_server[0].shutdown()
            self._metrics_server = None
        if self._query_server is not None:
            self._query_server.stop()
            self._query_server = None
        return True

    def metrics_text(self) -> str:
        """The Prometheus exposition of this application's metrics."""
        return "" if self._instance is None else self._instance.metrics.text()

    def describe(self) -> str:
        return self.topology.describe()

    def __enter__(self) -> StreamsApp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
from strom.streams.runtime.queries import Queries
from strom.streams.runtime.queries_http import QueryServer
from strom.streams.runtime.thread import StreamThread
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
        self._thread: threading.Thread | None = None
        self.stream_thread: StreamThread | None = None
        self._metrics_server: Any = None
        self.queries = Queries(self)
        self._query_server: QueryServer | None = None

    def _prepare(self) -> StreamThread:
        app = self.config.application_id
        external = topics.external_partitions(self.clients, self.topology)
        the_plan = topics.plan(self.topology, app, external)
        topics.create_internal_topics(self.clients, self.topology, app, the_plan,
                                      self.config.replication_factor)
        self.config.app_state_dir.mkdir(parents=True, exist_ok=True)
        return StreamThread(self.topology, self.config, self.clients, the_plan)

    def start(self) -> None:
        """Prepare topics and run the stream thread in the background."""
        if self.state is not State.CREATED:
            raise StreamsError(f"cannot start an application in state {self.state.value}")
        self.stream_thread = self._prepare()
        if self.config.metrics_port is not None:
            self._metrics_server = self.stream_thread.metrics.serve(self.config.metrics_port)
        if self.config.application_server:
            self._query_server = QueryServer(self.queries, self.config.application_server,
                                             self.config.query_key_parser)
            self._query_server.start()
        self.state = State.RUNNING
        self._thread = threading.Thread(target=self._run, name=f"{self.config.application_id}-1",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.stream_thread is not None
        try:
            self.stream_thread.run(self._stop)
        except BaseException as exc:
            self.error = exc
            self.state = State.ERROR
            log.exception("stream thread died")
            return
        self.state = State.NOT_RUNNING

    def run(self) -> None:
        """Start and block until SIGTERM/SIGINT (or `close` from another thread)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(0.2)
        if self.error is not None:
            raise StreamsError(f"the application failed: {self.error}") from self.error

    def close(self, timeout: float = 60.0) -> bool:
        """Commit, close stores and leave the group; False if that took over `timeout`."""
        if self.state in (State.RUNNING, State.ERROR):
            if self.state is State.RUNNING:
                self.state = State.PENDING_SHUTDOWN
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout)
                if self._thread.is_alive():
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
        return "" if self.stream_thread is None else self.stream_thread.metrics.text()

    def describe(self) -> str:
        return self.topology.describe()

    def __enter__(self) -> StreamsApp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""`StromBroker`: a real Strom broker inside the test process, one line to use.

    with StromBroker() as broker:
        Producer({"bootstrap.servers": broker.bootstrap_servers}).produce("t", b"v")

The broker is the same `strom.broker.server.Broker` that `strom server` runs, on its own
thread with its own event loop (uvloop when installed), so a blocking client in the test
thread talks to it over loopback TCP exactly as it would to a separate process. Nothing
crosses the threads but three events: "ready or failed", "stop", and the thread's end.
The broker's objects are never touched from the caller's thread; they are not
thread-safe, and everything a test wants is reachable through the Kafka protocol.

What `strom server` does with signals, this class does with calls: `start()` returns
once the logs are loaded and the listener is bound, `stop()` runs the same clean
`Broker.stop()` as SIGTERM and joins the thread. No signal handler is installed (only the
main thread may), and an exception raised on the broker thread is raised again in the
caller, so a port already in use fails `start()` instead of hanging a test.

Importing this module imports no broker code: the broker is imported on its thread at the
first start, so `import strom.testing` (and the pytest plugin) stays cheap.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from strom.broker.server import Broker
    from strom.config.broker import BrokerConfig

log = logging.getLogger(__name__)

PropertyValue = str | int | float | bool

#: What a test broker sets unless told otherwise: no metrics port (two brokers in one
#: process, or a test run beside a real broker, would fight for 9644) and no 3-second wait
#: before a consumer group's first rebalance, which only pays off with many members.
TEST_DEFAULTS: Mapping[str, str] = {
    "strom.metrics.port": "-1",
    "group.initial.rebalance.delay.ms": "0",
}

_PORT_ATTEMPTS = 5  # a free port picked by us can be taken before the broker binds it
_STOP_TIMEOUT_S = 60.0  # a clean stop checkpoints every partition; minutes mean a hang


class BrokerThreadError(RuntimeError):
    """The broker thread did not report ready in time, or died without an exception."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free now; the broker binds it moments later."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _format(value: PropertyValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import asyncio

    try:
        import uvloop
    except ImportError:  # uvloop is a Strom dependency, but the broker runs without it
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class StromBroker:
    """A Strom broker on a background thread: `start()`/`stop()` or a `with` block.

    ``port``: the listener port on ``host`` (default a free one, kept across restarts).
    ``data_dir``: the log dir; by default a new temporary dir, removed by `stop()` unless
    ``keep_data`` is set. A dir you pass is yours and is never removed.
    ``properties``: any broker property (Kafka's `server.properties` names); they win over
    the listener, the log dir and `TEST_DEFAULTS`.
    """

    def __init__(self, port: int | None = None, data_dir: str | Path | None = None, *,
                 properties: Mapping[str, PropertyValue] | None = None,
                 keep_data: bool = False, host: str = "127.0.0.1",
                 startup_timeout: float = 60.0) -> None:
        self.host = host
        self.port = port or 0
        self._port_given = bool(port)
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.keep_data = keep_data
        self.properties = {k: _format(v) for k, v in (properties or {}).items()}
        self.startup_timeout = startup_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stop_wanted = threading.Event()  # seen by a broker still starting up
        self._failure: BaseException | None = None
        self._bootstrap: str | None = None

    # --- what tests use -------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for a client's ``bootstrap.servers``; known once started."""
        if self._bootstrap is None:
            raise RuntimeError("StromBroker is not started")
        return self._bootstrap

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> StromBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"on {self._bootstrap}" if self.running else "stopped"
        return f"<StromBroker {state}, data in {self.data_dir}>"

    def start(self) -> StromBroker:
        """Start the broker and return once it serves (logs loaded, listener bound).
        Whatever stopped the broker thread from getting there is raised here."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        created = self._prepare_data_dir()
        try:
            self._start_on_a_free_port()
        except BaseException:
            if created and not self.keep_data:  # no `stop()` follows a failed start
                self._remove_data_dir()
            raise
        return self

    def _start_on_a_free_port(self) -> None:
        for attempt in range(_PORT_ATTEMPTS):
            try:
                self._start_once()
                return
            except OSError as exc:
                if self._port_given or exc.errno != errno.EADDRINUSE \
                        or attempt == _PORT_ATTEMPTS - 1:
                    raise
                log.info("port %d was taken before the broker bound it; trying another",
                         self.port)
                self.port = 0

    def stop(self) -> None:
        """Stop cleanly, as SIGTERM stops `strom server`, and join the thread; then remove
        a temporary data dir unless ``keep_data``. A second call does nothing."""
        try:
            self._stop_thread()
        finally:
            if not self.keep_data and not self.running:  # a stop that failed still cleans up
                self._remove_data_dir()

    def restart(self) -> StromBroker:
        """Stop cleanly and start again on the same port and data dir (a temporary dir is
        kept for the restart): committed records, offsets and topics survive."""
        self._stop_thread()
        return self.start()

    def create_topic(self, name: str, partitions: int = 1,
                     config: Mapping[str, PropertyValue] | None = None, *,
                     replication_factor: int = 1, timeout: float = 30.0) -> None:
        """Create a topic through the Kafka protocol (CreateTopics from confluent-kafka's
        AdminClient), the way an application or `strom topic create` would: the same
        validation and errors, and no reach into the broker's objects from this thread.
        Returns when the broker has answered, i.e. the topic exists and has leaders."""
        from confluent_kafka.admin import AdminClient, NewTopic

        # log_level 3: librdkafka's notices about its own shutdown are not the test's business
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 3})
        topic = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                         config={k: _format(v) for k, v in (config or {}).items()})
        futures = admin.create_topics([topic], operation_timeout=timeout,
                                      request_timeout=timeout)
        futures[name].result(timeout=timeout)  # raises KafkaException with Kafka's error

    # --- lifecycle, caller's side -----------------------------------------------------------

    def _prepare_data_dir(self) -> bool:
        """True when a temporary dir was made for this start."""
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="strom-test-"))
            return True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return False

    def _remove_data_dir(self) -> None:
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None  # the next start makes a new one

    def _config(self) -> BrokerConfig:
        """Built on the caller's thread, so an invalid property fails `start()` at once."""
        from strom.config.broker import BrokerConfig

        if not self.port:
            self.port = free_port(self.host)
        props = {
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": str(self.data_dir),
            **TEST_DEFAULTS,
            **self.properties,
        }
        return BrokerConfig(props)

    def _start_once(self) -> None:
        config = self._config()
        advertised = config.advertised_listeners[0]
        self._ready.clear()
        self._stop_wanted.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, args=(config,), daemon=True,
                                        name=f"strom-broker-{self.port}")
        self._thread.start()
        if not self._ready.wait(self.startup_timeout):
            self._stop_thread()
            raise BrokerThreadError(f"broker not ready after {self.startup_timeout}s")
        if self._failure is not None or not self.running:
            self._thread.join()
            self._thread = None
            failure, self._failure = self._failure, None
            raise failure or BrokerThreadError("the broker thread ended before it was ready")
        self._bootstrap = f"{advertised.host}:{advertised.port}"

    def _stop_thread(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop_wanted.set()  # before reading the loop: see `_serve`
        loop, stop = self._loop, self._stop_requested
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it is ending
                loop.call_soon_threadsafe(stop.set)
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():
            raise BrokerThreadError(f"broker thread still running {_STOP_TIMEOUT_S}s after stop")
        self._thread = None
        self._bootstrap = None
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    # --- the broker thread --------------------------------------------------------------

    def _run(self, config: BrokerConfig) -> None:
        import asyncio  # here, not at the top: importing this module stays cheap

        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._serve(config))
        except BaseException as exc:
            log.debug("broker thread failed; raising it on the caller's thread", exc_info=True)
            self._failure = exc
        finally:
            self._loop = None
            self._stop_requested = None
            self._ready.set()

    async def _serve(self, config: BrokerConfig) -> None:
        import asyncio

        from strom.broker.server import Broker

        self._stop_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        broker = Broker(config)
        try:
            await broker.start()
        except BaseException:
            await _release(broker)
            raise
        self._ready.set()
        # No lost wake-up: `_stop_thread` sets `_stop_wanted` before it reads `_loop`, and
        # `_loop` was set above, before this check.
        if not self._stop_wanted.is_set():
            await self._stop_requested.wait()
        await broker.stop()


async def _release(broker: Broker) -> None:
    """After a failed start: close what was opened (logs, store, threads) so the process
    keeps no files or pool of a broker that never served; the start's error is the one
    the caller sees."""
    try:
        await broker.stop()
    except Exception:
        log.exception("cleaning up after a failed broker start")

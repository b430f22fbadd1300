"""The broker process: storage, metadata, partitions, listeners and housekeeping.

`Broker.start()` recovers the logs, loads metadata, opens the listeners and starts the
periodic jobs (retention, time-based flush, checkpoints). `Broker.stop()` undoes it in
reverse and leaves a clean-shutdown marker so the next start skips recovery.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from strom.broker import dynamic_config, handlers
from strom.broker.hosts.group_host import GroupHost
from strom.broker.hosts.txn_host import TransactionHost
from strom.broker.log_cleaning import LogCleaning
from strom.broker.network.connection import KafkaConnection
from strom.broker.network.connection_limits import ConnectionLimits
from strom.broker.observability.admin_access import AdminAccess
from strom.broker.observability.metrics import DEFAULT_PORT, BrokerMetrics, MetricsServer
from strom.broker.producer_id_manager import FileBlockReserver, ProducerIdManager
from strom.broker.quotas import ClientQuotas
from strom.broker.replication.peer import PeerChannel
from strom.broker.replication.replica_fetcher import ReplicaFetcherManager
from strom.broker.replication.replica_manager import ReplicaManager
from strom.broker.replication.txn_markers import LocalMarkerWriter
from strom.broker.resource_budget import raise_open_file_limit
from strom.broker.security import listener as listener_security
from strom.broker.security import tls_reload
from strom.broker.services import Services
from strom.broker.topic_admin import TopicAdmin
from strom.cluster.controller import Controller
from strom.cluster.image import BrokerInfo
from strom.cluster.local import LocalMetadataStore
from strom.cluster.store import InconsistentClusterId, MetadataStore
from strom.config.broker import BrokerConfig
from strom.config.security_protocols import check_listeners
from strom.storage import LogManager

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def new_cluster_id() -> str:
    """Kafka's format: a random UUID in URL-safe base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Broker:
    def __init__(self, config: BrokerConfig, clock: Callable[[], int] = wall_clock_ms) -> None:
        handlers.register_all()
        raise_open_file_limit()  # before the budget is derived from it and logs open
        self.config = config
        self.clock = clock
        self.broker_id = config.broker_id
        self.connections: set[KafkaConnection] = set()
        self.connection_limits = ConnectionLimits(config, self.connections)
        self.started_at = time.monotonic()
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._fsync_pool: concurrent.futures.ThreadPoolExecutor | None = None
        cluster_id = config.get_str("cluster.id") or new_cluster_id()
        in_zookeeper = bool(config.get_str("zookeeper.connect"))
        self.logs = LogManager(
            config.log_dirs,
            clock=clock,
            broker_id=self.broker_id,
            cluster_id=None if in_zookeeper else cluster_id,  # ZooKeeper's id, checked at start
        )
        # ZooKeeper mode: only a proposal for an empty /cluster/id, never meta.properties' id
        self.cluster_id = cluster_id if in_zookeeper else self.logs.cluster_id or cluster_id
        self.store: MetadataStore = self._open_store()
        self.peers = PeerChannel(self.broker_id)
        self.replicas = ReplicaManager(config, self.logs, clock, self.store,
                                       ReplicaFetcherManager(self))
        self.controller: Controller | None = None  # ZooKeeper mode only
        self.admin = TopicAdmin(config, self.store, self.replicas)
        self.producer_ids = ProducerIdManager(self._producer_id_reserver())
        self.bound_ports: list[int] = []
        self.groups = GroupHost(config, clock, self.store, self.replicas, self.admin)
        self.transactions = TransactionHost(
            config, clock, self.store, self.replicas, self.admin, self.producer_ids.next_id,
            LocalMarkerWriter(self.replicas, self.groups.on_offsets_marker))
        self.metrics = BrokerMetrics(self.broker_id)
        self.cleaning = LogCleaning(self.logs, config, clock, self._cleanable_below,
                                    self._producer_last_offsets)
        self.quotas = ClientQuotas(config, clock)
        self.services = Services(self.broker_id, config, self.store, self.replicas, self.groups,
                                 self.admin, self.metrics, self.producer_ids, self.transactions,
                                 self.quotas)
        self._secure_peer_channels()
        self.metrics_server: MetricsServer | None = None
        self.ready = False  # /readyz: logs loaded, listeners bound, not stopping

    def _secure_peer_channels(self) -> None:
        """Brokers reach each other on the inter-broker listener, with its TLS and SASL
        (replica fetches, transaction markers, AddPartitionsToTxn verification)."""
        from strom.broker.security.peer_client import build_inter_broker

        if not self.config.get_str("zookeeper.connect"):
            return  # a single broker has no peers
        security = build_inter_broker(self.config)
        if security.protocol == "PLAINTEXT" and \
                security.listener == self.config.advertised_listeners[0].name.upper():
            return  # the registered address already is the inter-broker one

        def endpoint(broker_id: int) -> tuple[str, int] | None:
            info = self.store.image().brokers.get(broker_id)
            return None if info is None else info.endpoint(security.listener)

        for channel in (self.peers, self.transactions.peers):
            channel.use(security.open, endpoint)

    def _open_store(self) -> MetadataStore:
        advertised = self.config.advertised_listeners
        listener = advertised[0]
        me = BrokerInfo(self.broker_id, listener.host, listener.port, self.config.raw("broker.rack"),
                        tuple((ln.name.upper(), ln.host, ln.port) for ln in advertised))
        connect = self.config.get_str("zookeeper.connect")
        if connect:
            from strom.cluster.zookeeper import ZooKeeperMetadataStore

            return ZooKeeperMetadataStore(
                connect, me, self.cluster_id,
                session_timeout_ms=self.config.get_int("zookeeper.session.timeout.ms"),
            )
        path_raw = self.config.get_str("strom.metadata.file")
        path = Path(path_raw) if path_raw else self.config.log_dirs[0] / "strom-metadata.json"
        return LocalMetadataStore(path, me, self.cluster_id)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._start_cluster_membership()
        # dynamic broker configs: in force before the logs load, and first on every image
        dynamic_config.follow(self.config, self.store, self.broker_id, self.replicas,
                              self.connection_limits)
        self.replicas.set_startup_high_watermarks(self.logs.high_watermarks)
        image = self.store.image()
        self.logs.load_all(self.replicas.log_config_lookup(image),
                           reserve_fds=self.replicas.budget.reserve)
        self.replicas.on_image(image)
        self._drop_stray_logs()
        self.store.subscribe(self.replicas.on_image)
        self.store.subscribe(self.groups.on_image)
        self.replicas.ready_listeners.append(self.groups.on_image)  # built in the background
        self.store.subscribe(self.transactions.on_image)
        self.replicas.ready_listeners.append(self.transactions.on_image)
        self.metrics.on_image(image)
        self.store.subscribe(self.metrics.on_image)
        self.quotas.on_image(image)
        self.store.subscribe(self.quotas.on_image)
        loop = asyncio.get_running_loop()
        self.groups.on_image(image)
        self.transactions.on_image(image)
        check_listeners(self.config)  # `strom server` checked before; this is for embedders
        securities = listener_security.build_all(self.config, listener_security.scram_lookup_from(
            lambda: self.store.image().user_configs))
        tls_reload.follow_reloads(self.config, [(s.name, s.protocol, s.ssl_context)
                                                for s in securities.values() if s.ssl_context])
        for listener in self.config.listeners:
            security = securities[listener.name.upper()]
            server = await loop.create_server(
                lambda security=security: KafkaConnection(
                    self.services, self.connection_limits, self.connections, self.metrics,
                    security),
                host=listener.host or None,
                port=listener.port,
                reuse_address=True,
                ssl=security.ssl_context,
                # a TLS handshake counts against no connection limit until it is done:
                # one left hanging goes after the slow-sender timeout, not asyncio's 60 s
                ssl_handshake_timeout=(
                    self.config.get_int("strom.request.receive.timeout.ms") / 1000
                    if security.ssl_context is not None else None),
            )
            self._servers.append(server)
            for sock in server.sockets:
                self.bound_ports.append(sock.getsockname()[1])
        self._tasks.append(asyncio.create_task(
            self.connection_limits.sweep_forever(self.connections)))
        await self._start_metrics()
        self._schedule_housekeeping()
        self.ready = True
        log.info(
            "broker %d started, cluster %s, listening on %s, data in %s",
            self.broker_id, self.cluster_id,
            ", ".join(f"{ln.host}:{p}" for ln, p in zip(self.config.listeners, self.bound_ports,
                                                        strict=False)),
            ", ".join(str(d) for d in self.config.log_dirs),
        )

    def _producer_id_reserver(self) -> Callable[[int], int]:
        reserve = getattr(self.store, "reserve_producer_id_block", None)
        if reserve is not None:
            return reserve
        return FileBlockReserver(self.config.log_dirs[0] / "strom-producer-ids")

    def _start_cluster_membership(self) -> None:
        """In ZooKeeper mode: register, start watching, and stand for controller."""
        if not self.config.get_str("zookeeper.connect"):
            return  # embedded mode: kazoo is not even imported (startup time)
        from strom.cluster.zookeeper import ZooKeeperMetadataStore

        store = self.store
        if not isinstance(store, ZooKeeperMetadataStore):
            return
        zk_cluster_id = store.connect()  # Kafka's InconsistentClusterIdException check:
        stored = self.logs.stored_cluster_id  # ZooKeeper's id is the truth, fresh dirs take it
        if stored is not None and stored != zk_cluster_id:
            store.close()
            raise InconsistentClusterId(zk_cluster_id, stored)
        self.logs.adopt_cluster_id(zk_cluster_id)
        self.cluster_id = zk_cluster_id
        self.controller = Controller(
            store,
            self.config.get_bool("unclean.leader.election.enable"),
            live_brokers=lambda: set(store.image().brokers),
            topics=lambda: list(store.image().topics.values()),
            rebalance_interval_s=(
                self.config.get_int("leader.imbalance.check.interval.seconds")
                if self.config.get_bool("auto.leader.rebalance.enable") else None
            ),
        )
        store.on_controller_change(self.controller.on_controller_change)
        store.start(asyncio.get_running_loop())
        self.cluster_id = store.image().cluster_id

    async def stop(self) -> None:
        self.ready = False  # /readyz answers 503 until the metrics server closes below
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.transactions.stop()  # markers under way: the next load resends them
        await self.cleaning.stop()  # before the logs close: a clean under way is aborted
        self.replicas.fetchers.stop()
        self.peers.close()
        if self.controller is not None:
            self.controller.stop()
        if self._fsync_pool is not None:  # let an fsync under way finish first
            self._fsync_pool.shutdown(wait=True)
        self._checkpoint()
        self.replicas.builder.close()  # waits for deleted partitions' files to go
        self.logs.close()
        self.store.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
        log.info("broker %d stopped cleanly", self.broker_id)

    async def _start_metrics(self) -> None:
        """The HTTP admin port (`strom.metrics.port`: -1 off, 0 any free port) on
        `strom.metrics.host`: loopback by default, so that it does not follow a listener
        bound to every interface; off loopback it can ask for basic authentication and
        speak TLS (`observability.admin_access`). When the port is only
        the default and is taken, e.g. by a second broker on one machine, the broker runs
        without it; a port set explicitly must be free."""
        port = self.config.get_int("strom.metrics.port")
        if port < 0:
            return
        host = self.config.get_str("strom.metrics.host") or ""
        access = AdminAccess.from_config(self.config)
        access.warn_if_exposed(host)
        server = MetricsServer(self, host, port, access)
        try:
            await server.start()
        except OSError as exc:
            if "strom.metrics.port" in self.config.props or port != DEFAULT_PORT:
                raise
            log.warning("metrics disabled: cannot listen on port %d (%s); set "
                        "strom.metrics.port to another port, 0 for any, or -1", port,
                        exc.strerror or exc)
            return
        self.metrics_server = server

    @property
    def metrics_url(self) -> str | None:
        if self.metrics_server is None:
            return None
        host = self.metrics_server.host or "localhost"
        if host in ("0.0.0.0", "::"):
            host = "localhost"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.metrics_server.access.tls is not None else "http"
        return f"{scheme}://{host}:{self.metrics_server.port}/metrics"

    def _drop_stray_logs(self) -> None:
        """Logs on disk for topics the metadata no longer knows were deleted while down,
        or belong to a create that died before its metadata was written (rolled back)."""
        image = self.store.image()
        stray = [key for key in self.logs.logs if key not in self.replicas.partitions
                 and not self.replicas.assigned_here(image, key)]
        for key in stray:
            log.info("deleting stray log %s-%d", *key)
        self.replicas.builder.delete(stray)  # one checkpoint for all, files off the loop

    # --- housekeeping -----------------------------------------------------------------

    def _schedule_housekeeping(self) -> None:
        # One worker thread takes every periodic fsync (time-based flush, flush of rolled
        # segments, producer snapshots, checkpoints): each costs 1-200 ms on a busy disk
        # and, on the event loop, stalled every connection that long. One thread keeps
        # them ordered: a checkpoint never claims a recovery point not yet fsynced.
        self._fsync_pool = concurrent.futures.ThreadPoolExecutor(1, "strom-fsync")
        jobs: list[tuple[str, int, Callable[[], object]]] = [
            ("retention", self.config.get_int("log.retention.check.interval.ms"),
             self._enforce_retention),
            ("flush", 1000, self._flush_off_loop),
            ("offset expiry", self.config.get_int("offsets.retention.check.interval.ms"),
             self.groups.coordinator.expire_offsets),
            ("isr shrink", max(self.config.get_int("replica.lag.time.max.ms") // 2, 100),
             self.replicas.shrink_lagging_isrs),
            ("checkpoint", self.config.get_int("replica.high.watermark.checkpoint.interval.ms"),
             self._checkpoint_off_loop),
            ("producer expiry", self.config.get_int("producer.id.expiration.check.interval.ms"),
             self._expire_producers),
        ]
        for name, interval_ms, job in jobs:
            self._tasks.append(asyncio.create_task(self._every(name, interval_ms, job)))
        self.cleaning.start()

    def _cleanable_below(self, key: tuple[str, int]) -> int:
        """The cleaner stops at the last stable offset (the high watermark, or the first
        record of the oldest open transaction); a log without a partition (stray,
        offline) is left alone."""
        partition = self.replicas.partitions.get(key)
        return 0 if partition is None else partition.last_stable_offset

    def _producer_last_offsets(self, key: tuple[str, int]) -> dict[int, int]:
        partition = self.replicas.partitions.get(key)
        return {} if partition is None else partition.producer_last_offsets()

    async def _in_fsync_thread(self, work: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._fsync_pool, work)

    async def _flush_off_loop(self) -> None:
        now = self.clock()
        await self._in_fsync_thread(lambda: self.logs.flush_dirty(now))

    async def _checkpoint_off_loop(self) -> None:
        """What to write is taken on the loop (producer state, high watermarks: both
        change there); the files are written and fsynced by the worker thread."""
        writers, high_watermarks = self._checkpoint_state()
        await self._in_fsync_thread(lambda: self._write_checkpoint(writers, high_watermarks))

    def _checkpoint(self) -> None:
        """The same, all on the calling thread (at shutdown, when nothing else runs)."""
        self._write_checkpoint(*self._checkpoint_state())

    def _checkpoint_state(self) -> tuple[list[Callable[[], None]], dict[tuple[str, int], int]]:
        writers = [w for p in self.replicas.partitions.values()
                   if (w := p.producer_snapshot_writer()) is not None]
        return writers, self.replicas.high_watermarks()

    def _write_checkpoint(self, writers: list[Callable[[], None]],
                          high_watermarks: dict[tuple[str, int], int]) -> None:
        for write in writers:
            write()
        self.logs.checkpoint(high_watermarks)

    def _enforce_retention(self) -> None:
        deleted = self.logs.enforce_retention(self.clock())
        if deleted:  # each partition logged its own deletions
            log.debug("retention deleted %d segment(s)", deleted)

    def _expire_producers(self) -> None:
        """Forget idempotent producers idle for `producer.id.expiration.ms` (read each
        time: the setting is dynamic in Kafka), so their state stays bounded."""
        now, expiration = self.clock(), self.config.get_int("producer.id.expiration.ms")
        removed = sum(p.remove_expired_producers(now, expiration)
                      for p in self.replicas.partitions.values())
        if removed:
            log.info("expired %d idle producer id(s)", removed)

    async def _every(self, name: str, interval_ms: int, job: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(interval_ms / 1000)
            try:
                result = job()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("housekeeping job %s failed", name)

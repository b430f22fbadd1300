"""The ZooKeeper back end of `MetadataStore`, for clusters (kazoo).

Liveness and election use ephemeral znodes, as Kafka did before KRaft: each broker
registers `/brokers/ids/<id>`, and the first to create `/controller` is the controller
until its session ends. Topic state lives in persistent znodes and changes only through
version-checked writes (see zk_data).

Threads: kazoo delivers watch callbacks on its own threads. They update the store's
cache under a lock and hand the new image to the event loop with call_soon_threadsafe;
subscribers always run on the loop. Writes are made from the loop with kazoo's
synchronous calls (a loopback round trip) and applied to the cache at once, so a caller
sees its own write without waiting for the watch.

Controller fencing (Kafka's ZooKeeper mode): the election is one multi-op that creates
the ephemeral `/controller` and increments `/controller_epoch`; the store remembers the
epoch and the znode version it gave. Every controller write (`update_topic_as_controller`)
is a multi-op that checks that version, so a controller superseded while it was paused
past its session cannot change anything, even if it acts once on a stale flag before it
learns it lost: ZooKeeper refuses the write, and the store resigns.

Dynamic broker configs live where Kafka's ZooKeeper mode kept them: `/config/brokers/
<default>` for the cluster-wide defaults and `/config/brokers/<id>` per broker, each
write followed by a `config_change_` notice. Each broker watches the two entities it
applies, so a change made through any broker reaches all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, RolledBackError
from kazoo.protocol.states import KazooState
from kio.schema.errors import ErrorCode

from strom.cluster import zk_acls, zk_quotas
from strom.cluster import zk_data as zd
from strom.cluster.acls import Ace, AclTable, Resource
from strom.cluster.image import (
    BrokerInfo,
    MetadataImage,
    PartitionInfo,
    TopicInfo,
    broker_entity,
)
from strom.cluster.quotas import split_user_configs
from strom.cluster.store import ControllerMovedError, MetadataError, validate_topic_name

log = logging.getLogger(__name__)
CONFIG_CHANGE_EXPIRY_MS = 15 * 60 * 1000
TopicUpdate = Callable[[TopicInfo], TopicInfo | None]


@dataclass(frozen=True)
class ControllerFence:
    """What this broker won the election with: the controller epoch, and the version of
    the `/controller_epoch` znode that every one of its writes checks."""

    epoch: int
    zk_version: int


class ZooKeeperMetadataStore:
    def __init__(self, connect: str, broker: BrokerInfo, cluster_id: str,
                 session_timeout_ms: int = 18000) -> None:
        self.me = broker
        self._client = KazooClient(hosts=connect, timeout=session_timeout_ms / 1000)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[MetadataImage], None]] = []
        self._brokers: dict[int, BrokerInfo] = {}
        self._topics: dict[str, TopicInfo] = {}
        self._configs: dict[str, dict[str, str]] = {}
        self._broker_configs: dict[str, dict[str, str]] = {}  # <default> and our own id
        self._user_configs: dict[str, dict[str, str]] = {}  # by user name
        self._group_configs: dict[str, dict[str, str]] = {}  # by group id
        self._client_quotas: dict[str, dict[str, str]] = {}  # by entity path (cluster.quotas)
        self._acls: AclTable = {}
        self._watched: set[str] = set()
        self._controller_id = -1
        self._cluster_id = cluster_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._image = MetadataImage(cluster_id, -1, {}, {})
        self._controller_callbacks: list[Callable[[bool], None]] = []
        self._fence: ControllerFence | None = None
        self._connected = False
        self._closed = False

    # --- lifecycle --------------------------------------------------------------------

    def connect(self) -> str:
        """Open the session and claim the cluster id; returns ZooKeeper's cluster id (the
        first broker's proposal wins). Separate from `start` so the broker can check its
        log dirs' meta.properties against that id before it registers."""
        if not self._connected:
            self._client.start(timeout=30)
            self._client.add_listener(self._on_connection_state)
            for path in zd.PERSISTENT_PATHS:
                self._client.ensure_path(path)
            self._cluster_id = self._claim_cluster_id(self._cluster_id)
            self._connected = True
        return self._cluster_id

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.connect()
        self._register_broker()
        for entity in (broker_entity(None), broker_entity(self.me.broker_id)):
            self._client.DataWatch(zd.broker_config_path(entity),
                                   self._broker_config_watcher(entity))
        # user entities (SCRAM credentials; their quotas come by change notice) and groups
        # with configs: each znode watched from its first sighting, dropped when it goes
        users = _EntityWatch(self, zd.USER_CONFIGS, self._user_configs,
                             lambda configs: split_user_configs(configs)[0])
        groups = _EntityWatch(self, zd.GROUP_CONFIGS, self._group_configs, dict)
        self._client.ChildrenWatch(zd.USER_CONFIGS, users.on_children)
        self._client.ChildrenWatch(zd.GROUP_CONFIGS, groups.on_children)
        self._client.ChildrenWatch(zd.CONFIG_CHANGES, self._on_config_change)
        for notices in (zk_acls.LITERAL_CHANGES, zk_acls.EXTENDED_CHANGES):
            self._client.ensure_path(notices)
            self._client.ChildrenWatch(notices, self._on_acl_change)
        self._client.ChildrenWatch(zd.BROKER_IDS, self._on_broker_ids)
        self._client.ChildrenWatch(zd.TOPICS, self._on_topic_names)
        self._client.DataWatch(zd.CONTROLLER, self._on_controller)

    def _claim_cluster_id(self, proposed: str) -> str:
        try:
            self._client.create(zd.CLUSTER_ID, zd.dumps({"version": "1", "id": proposed}))
            return proposed
        except NodeExistsError:
            data, _ = self._client.get(zd.CLUSTER_ID)
            return str(zd.loads(data)["id"])

    def _register_broker(self) -> None:
        """Register our ephemeral node, waiting out a previous session of ours (after kill -9)."""
        path = zd.broker_path(self.me.broker_id)
        deadline = time.monotonic() + self._client._session_timeout / 1000 + 10
        while True:
            try:
                self._client.create(path, zd.encode_broker(self.me), ephemeral=True)
                return
            except NodeExistsError:
                if time.monotonic() > deadline:
                    raise MetadataError(
                        ErrorCode.broker_id_not_registered,
                        f"broker id {self.me.broker_id} is registered by another live broker",
                    ) from None
                log.info("broker id %d still registered by an old session; waiting",
                         self.me.broker_id)
                time.sleep(0.5)

    def _on_connection_state(self, state: str) -> None:
        if state == KazooState.LOST and not self._closed:
            log.error("ZooKeeper session lost; re-registering when reconnected")
            if self._fence is not None:  # the ephemeral /controller went with the session
                self._drop_fence("the ZooKeeper session was lost")
        elif state == KazooState.CONNECTED and not self._closed:
            threading.Thread(target=self._reregister, daemon=True).start()

    def _reregister(self) -> None:
        try:
            if self._client.exists(zd.broker_path(self.me.broker_id)) is None:
                self._register_broker()
                self._try_become_controller()
        except Exception:
            log.exception("re-registration failed")

    def close(self) -> None:
        self._closed = True
        self._listeners.clear()
        try:
            self._client.stop()
            self._client.close()
        except Exception:
            log.exception("closing the ZooKeeper client failed")

    # --- reading ----------------------------------------------------------------------

    def image(self) -> MetadataImage:
        return self._image

    def subscribe(self, listener: Callable[[MetadataImage], None]) -> None:
        self._listeners.append(listener)

    def on_controller_change(self, callback: Callable[[bool], None]) -> None:
        """`callback(is_controller)`; called on a kazoo thread."""
        self._controller_callbacks.append(callback)

    @property
    def is_controller(self) -> bool:
        """True only while `/controller` names us *and* we hold the epoch we won it with."""
        return self._controller_id == self.me.broker_id and self._fence is not None

    @property
    def controller_epoch(self) -> int:
        """The epoch this broker controls with, or -1 when it is not the controller."""
        fence = self._fence
        return -1 if fence is None else fence.epoch

    def _publish(self) -> None:
        with self._lock:
            image = MetadataImage(
                cluster_id=self._cluster_id,
                controller_id=self._controller_id,
                brokers=dict(self._brokers),
                topics=dict(self._topics),
                epoch=self._image.epoch + 1,
                broker_configs=dict(self._broker_configs),
                user_configs=dict(self._user_configs),
                group_configs=dict(self._group_configs),
                acls=dict(self._acls),
                client_quotas=dict(self._client_quotas),
            )
            self._image = image
        if threading.get_ident() == self._loop_thread or self._loop is None:
            self._deliver(image)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._deliver, image)

    def _deliver(self, image: MetadataImage) -> None:
        if image is not self._image:
            return  # a newer image is already queued
        for listener in list(self._listeners):
            try:
                listener(image)
            except Exception:
                log.exception("metadata listener failed")

    # --- watches (kazoo threads) ------------------------------------------------------

    def _on_broker_ids(self, children: list[str]) -> None:
        brokers = {}
        for child in children:
            try:
                data, _ = self._client.get(zd.broker_path(int(child)))
                brokers[int(child)] = zd.decode_broker(int(child), data)
            except (NoNodeError, ValueError, KeyError):
                continue
            except Exception:
                # e.g. ConnectionLoss: the watch will not fire again for the same children,
                # so re-read them shortly rather than keep a stale set of live brokers.
                log.warning("reading broker %s failed; retrying", child, exc_info=True)
                retry = threading.Timer(1.0, self._refresh_brokers)
                retry.daemon = True
                retry.start()
                return
        with self._lock:
            changed = set(brokers) != set(self._brokers)
            self._brokers = brokers
        if changed:
            log.info("live brokers: %s", sorted(brokers))
        self._publish()
        if changed and self.is_controller:
            for callback in list(self._controller_callbacks):
                callback(True)

    def _refresh_brokers(self) -> None:
        if self._closed:
            return
        try:
            self._on_broker_ids(self._client.get_children(zd.BROKER_IDS))
        except Exception:
            log.warning("refreshing live brokers failed; retrying", exc_info=True)
            retry = threading.Timer(1.0, self._refresh_brokers)
            retry.daemon = True
            retry.start()

    def _on_topic_names(self, children: list[str]) -> None:
        for name in children:
            if name not in self._watched:
                self._watched.add(name)
                self._client.DataWatch(zd.topic_config_path(name), self._config_watcher(name))
                self._client.DataWatch(zd.topic_path(name), self._topic_watcher(name))
        gone = set(self._topics) - set(children)
        if gone:
            with self._lock:
                for name in gone:
                    self._topics.pop(name, None)
            self._publish()

    def _topic_watcher(self, name: str) -> Callable[..., bool]:
        def watch(data: bytes | None, stat: object, event: object = None) -> bool:
            with self._lock:
                if data is None:
                    self._topics.pop(name, None)
                    self._watched.discard(name)
                else:
                    self._topics[name] = zd.decode_topic(name, data, self._configs.get(name, {}))
            self._publish()
            if data is not None and self.is_controller:
                for callback in list(self._controller_callbacks):
                    callback(True)  # ISR or replica changes may let a reassignment finish
            return data is not None

        return watch

    def _config_watcher(self, name: str) -> Callable[..., bool]:
        def watch(data: bytes | None, stat: object, event: object = None) -> bool:
            configs = zd.decode_configs(data)
            with self._lock:
                self._configs[name] = configs
                topic = self._topics.get(name)
                if topic is not None:
                    self._topics[name] = replace(topic, configs=configs)
            self._publish()
            return name in self._watched or data is not None

        return watch

    def _broker_config_watcher(self, entity: str) -> Callable[..., bool]:
        """Dynamic broker configs of `entity`, read at start and whenever they change
        (whoever wrote them: this broker, another one, or a tool writing Kafka's layout)."""
        def watch(data: bytes | None, stat: object, event: object = None) -> bool:
            configs = zd.decode_configs(data)
            with self._lock:
                if self._broker_configs.get(entity, {}) == configs:
                    return not self._closed
                if configs:
                    self._broker_configs[entity] = configs
                else:
                    self._broker_configs.pop(entity, None)
            self._publish()
            return not self._closed

        return watch

    def _on_controller(self, data: bytes | None, stat: object, event: object = None) -> None:
        controller = int(zd.loads(data).get("brokerid", -1)) if data else -1
        was = self.is_controller
        with self._lock:
            self._controller_id = controller
            if controller != self.me.broker_id:
                self._fence = None  # a term once lost is never resumed; a new one has a new epoch
        self._publish()
        if controller == -1 and not self._closed:
            self._try_become_controller()
        elif was != self.is_controller:
            for callback in list(self._controller_callbacks):
                callback(self.is_controller)

    def _try_become_controller(self) -> None:
        fence = self._elect_self()
        if fence is None:
            return
        self._fence = fence
        log.info("broker %d is the controller (epoch %d)", self.me.broker_id, fence.epoch)
        if self._controller_id == self.me.broker_id:
            # the /controller watch already ran (on another thread) before the fence was set
            for callback in list(self._controller_callbacks):
                callback(True)

    def _elect_self(self) -> ControllerFence | None:
        """Create `/controller` and increment `/controller_epoch` in one multi-op (as
        Kafka's registerControllerAndIncrementControllerEpoch); None if another broker
        is the controller."""
        mine = zd.dumps({"version": 1, "brokerid": self.me.broker_id})
        while True:
            try:
                data, stat = self._client.get(zd.CONTROLLER_EPOCH)
            except NoNodeError:
                with contextlib.suppress(NodeExistsError):
                    self._client.create(zd.CONTROLLER_EPOCH, zd.encode_controller_epoch(0))
                continue
            epoch = zd.decode_controller_epoch(data) + 1
            transaction = self._client.transaction()
            transaction.create(zd.CONTROLLER, mine, ephemeral=True)
            transaction.set_data(zd.CONTROLLER_EPOCH, zd.encode_controller_epoch(epoch),
                                 version=stat.version)
            created, bumped = transaction.commit()
            if isinstance(created, NodeExistsError):
                return None
            if isinstance(bumped, BadVersionError):
                continue  # another election raced us on the epoch; read it again
            if isinstance(created, Exception) or isinstance(bumped, Exception):
                raise MetadataError(ErrorCode.unknown_server_error,
                                    f"controller election failed: {[created, bumped]}")
            return ControllerFence(epoch, bumped.version)

    def _drop_fence(self, reason: str) -> None:
        """Stop acting as controller: tell the controller thread and log why."""
        fence, self._fence = self._fence, None
        if fence is None:
            return
        log.error("broker %d is no longer the controller (epoch %d): %s; resigning",
                  self.me.broker_id, fence.epoch, reason)
        for callback in list(self._controller_callbacks):
            callback(False)

    def resign(self, fence: ControllerFence, reason: str) -> None:
        """Our epoch was superseded. If `/controller` still holds our session's node (it
        cannot normally, but a stale one would stop every election), delete it so a new
        election gives some broker a fresh epoch."""
        if self._fence != fence:
            return  # resigned already, or a newer term of ours has begun
        self._drop_fence(reason)
        try:
            _, stat = self._client.get(zd.CONTROLLER)
            if stat.ephemeralOwner == self._client.client_id[0]:
                self._client.delete(zd.CONTROLLER, version=stat.version)
        except NoNodeError:
            pass

    # --- writes (event loop thread) ---------------------------------------------------

    def _refuse_collision(self, name: str) -> None:
        """Kafka refuses names that differ only by '.' versus '_' (they clash in metrics).
        Checked against the watched topic list, not a ZooKeeper read per create: a create
        racing on another broker can slip through, as it could in Kafka's ZooKeeper mode."""
        key = name.replace(".", "_")
        with self._lock:
            clash = next((t for t in self._topics if t != name and t.replace(".", "_") == key),
                         None)
        if clash is not None:
            raise MetadataError(ErrorCode.invalid_topic_exception,
                                f"Topic '{name}' collides with existing topic: {clash}")

    def create_topic(self, name: str, assignments: Mapping[int, list[int]],
                     configs: Mapping[str, str], *, internal: bool = False) -> TopicInfo:
        validate_topic_name(name)
        self._refuse_collision(name)
        live = set(self._brokers)
        partitions = {}
        for p, replicas in assignments.items():
            alive = [r for r in replicas if r in live]
            partitions[p] = PartitionInfo(p, alive[0] if alive else -1, 0, tuple(replicas),
                                          tuple(alive or replicas))
        topic = TopicInfo(name, uuid.uuid4(), partitions, dict(configs), internal)
        transaction = self._client.transaction()
        transaction.create(zd.topic_config_path(name), zd.encode_configs(dict(configs)))
        transaction.create(zd.topic_path(name), zd.encode_topic(topic))
        results = transaction.commit()
        if any(isinstance(r, NodeExistsError) for r in results):
            raise MetadataError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
        if any(isinstance(r, Exception) for r in results):
            raise MetadataError(ErrorCode.unknown_server_error, f"creating {name} failed: {results}")
        with self._lock:  # known before the config watch fires: an update right after
            self._configs[name] = dict(configs)  # the create must not drop them
        self._apply(topic)
        return topic

    def delete_topic(self, name: str) -> None:
        if not self._client.exists(zd.topic_path(name)):
            raise MetadataError(ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist")
        self._client.delete(zd.topic_path(name), recursive=True)
        with contextlib.suppress(NoNodeError):
            self._client.delete(zd.topic_config_path(name))
        with self._lock:
            self._topics.pop(name, None)
        self._publish()

    def add_partitions(self, name: str, assignments: Mapping[int, list[int]]) -> TopicInfo:
        live = set(self._brokers)

        def grow(topic: TopicInfo) -> TopicInfo:
            partitions = dict(topic.partitions)
            for p, replicas in assignments.items():
                alive = [r for r in replicas if r in live]
                partitions[p] = PartitionInfo(p, alive[0] if alive else -1, 0, tuple(replicas),
                                              tuple(alive or replicas))
            return replace(topic, partitions=partitions)

        updated = self.update_topic(name, grow)
        assert updated is not None
        return updated

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        try:
            self._client.set(zd.topic_config_path(name), zd.encode_configs(dict(configs)))
        except NoNodeError:
            raise MetadataError(ErrorCode.unknown_topic_or_partition,
                                f"Topic {name} does not exist") from None
        with self._lock:
            self._configs[name] = dict(configs)
            topic = replace(self._topics[name], configs=dict(configs))
            self._topics[name] = topic
        self._publish()
        return topic

    def set_broker_configs(self, broker_id: int | None, configs: Mapping[str, str]) -> None:
        """Write `/config/brokers/<entity>` and a change notice under `/config/changes`, as
        Kafka's ZooKeeper mode did; every broker watching the entity applies it."""
        entity = broker_entity(broker_id)
        self._upsert(zd.broker_config_path(entity), zd.encode_configs(dict(configs)))
        self._notify_config_change(f"brokers/{entity}")
        if entity in (broker_entity(None), broker_entity(self.me.broker_id)):
            self._remember(self._broker_configs, entity, dict(configs))

    def set_user_configs(self, user: str, configs: Mapping[str, str]) -> None:
        """Write `/config/users/<user>` and a change notice, as Kafka's ZooKeeper mode
        did for SCRAM credentials; every broker's watch picks it up."""
        # the same znode keeps the user's quotas: only the other keys are replaced
        zk_quotas.merge_write(self._client, zd.user_config_path(user), configs,
                              lambda key: not zk_quotas.is_quota_key(key))
        self._notify_config_change(f"users/{zd.sanitize_user(user)}")
        self._remember(self._user_configs, user, dict(configs))

    def set_client_quotas(self, path: str, quotas: Mapping[str, str]) -> None:
        """Kafka's quota znode and change notice (strom.cluster.zk_quotas)."""
        zk_quotas.merge_write(self._client, f"/config/{path}", quotas, zk_quotas.is_quota_key)
        self._notify_config_change(path)
        self._remember(self._client_quotas, path, dict(quotas))

    def _on_config_change(self, _children: list[str]) -> None:
        """A config change notice (ours, another broker's, Kafka's tools'): re-read the
        client quota entities, as Kafka's brokers did on each notice."""
        if self._closed:
            return
        quotas = zk_quotas.read_all(self._client)
        with self._lock:
            if quotas == self._client_quotas:
                return
            self._client_quotas = quotas
        self._publish()

    def set_group_configs(self, group_id: str, configs: Mapping[str, str]) -> None:
        """Write (or, with none left, delete) `/config/groups/<group>`; every broker's
        watch picks it up."""
        path = zd.group_config_path(group_id)
        if configs:
            self._upsert(path, zd.encode_configs(dict(configs)))
        else:
            with contextlib.suppress(NoNodeError):
                self._client.delete(path)
        self._remember(self._group_configs, group_id, dict(configs))

    def set_acls(self, resource: Resource, entries: frozenset[Ace]) -> None:
        """Kafka's ACL znode and change notice (strom.cluster.zk_acls)."""
        zk_acls.write(self._client, resource, entries)
        self._remember(self._acls, resource, entries)

    def _on_acl_change(self, _children: list[str]) -> None:
        """A change notice (ours or another broker's or Kafka's tools'): re-read all."""
        if self._closed:
            return
        acls = zk_acls.read_all(self._client)
        with self._lock:
            if acls == self._acls:
                return
            self._acls = acls
        self._publish()

    def _upsert(self, path: str, data: bytes) -> None:
        """Set a znode's data, creating it (and its parents) if it is not there yet."""
        try:
            self._client.set(path, data)
        except NoNodeError:
            try:
                self._client.create(path, data, makepath=True)
            except NodeExistsError:
                self._client.set(path, data)

    def _notify_config_change(self, entity_path: str) -> None:
        """Kafka's change notice under `/config/changes` for an entity just written."""
        self._client.create(f"{zd.CONFIG_CHANGES}/{zd.CONFIG_CHANGE_PREFIX}",
                            zd.encode_config_change(entity_path), sequence=True, makepath=True)
        self._purge_config_changes()

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        """Our own write, seen at once by the caller before the watch fires: kept in (or,
        empty, dropped from) its cache, and a new image published."""
        with self._lock:
            if value:
                cache[key] = value
            else:
                cache.pop(key, None)
        self._publish()

    def _purge_config_changes(self) -> None:
        """Drop change notices older than 15 minutes (Kafka's expiry of them)."""
        horizon_ms = time.time() * 1000 - CONFIG_CHANGE_EXPIRY_MS
        try:
            for child in self._client.get_children(zd.CONFIG_CHANGES):
                path = f"{zd.CONFIG_CHANGES}/{child}"
                stat = self._client.exists(path)
                if stat is not None and stat.ctime < horizon_ms:
                    with contextlib.suppress(NoNodeError):
                        self._client.delete(path)
        except NoNodeError:
            pass

    def reserve_producer_id_block(self, size: int) -> int:
        """Claim the next block of producer ids cluster-wide; returns its first id."""
        while True:
            try:
                data, stat = self._client.get(zd.PRODUCER_ID_BLOCK)
            except NoNodeError:
                doc = {"version": 1, "broker": self.me.broker_id, "block_start": 0,
                       "block_end": size - 1}
                try:
                    self._client.create(zd.PRODUCER_ID_BLOCK, zd.dumps(doc))
                    return 0
                except NodeExistsError:
                    continue
            start = int(zd.loads(data)["block_end"]) + 1
            doc = {"version": 1, "broker": self.me.broker_id, "block_start": start,
                   "block_end": start + size - 1}
            try:
                self._client.set(zd.PRODUCER_ID_BLOCK, zd.dumps(doc), version=stat.version)
                return start
            except BadVersionError:
                continue

    def update_topic(self, name: str, change: TopicUpdate) -> TopicInfo | None:
        """Version-checked read-modify-write of a topic's state; `change` returns None to
        abort. Retries when another writer got there first. For writes by leaders and
        admins; the controller's go through `update_topic_as_controller`."""
        return self._update_topic(name, change, None)

    def update_topic_as_controller(self, name: str, change: TopicUpdate) -> TopicInfo | None:
        """`update_topic` fenced by our controller epoch: the write is a multi-op that also
        checks `/controller_epoch`'s version, and each partition it changes is stamped with
        our epoch. Raises ControllerMovedError (after resigning) when the epoch moved on."""
        fence = self._fence
        if fence is None:
            raise ControllerMovedError(f"broker {self.me.broker_id} is not the controller")
        return self._update_topic(name, change, fence)

    def _update_topic(self, name: str, change: TopicUpdate,
                      fence: ControllerFence | None) -> TopicInfo | None:
        path = zd.topic_path(name)
        while True:
            try:
                data, stat = self._client.get(path)
            except NoNodeError:
                raise MetadataError(ErrorCode.unknown_topic_or_partition,
                                    f"Topic {name} does not exist") from None
            current = zd.decode_topic(name, data, self._configs.get(name, {}))
            updated = change(current)
            if updated is None:
                return None
            if fence is None:
                try:
                    self._client.set(path, zd.encode_topic(updated), version=stat.version)
                except BadVersionError:
                    continue
            else:
                updated = _stamp(current, updated, fence.epoch)
                if not self._fenced_set(path, zd.encode_topic(updated), stat.version, fence):
                    continue
            self._apply(updated)
            return updated

    def _fenced_set(self, path: str, data: bytes, version: int, fence: ControllerFence) -> bool:
        """Set `path` at `version` only if our controller epoch still holds; False when the
        znode changed under us (read again), ControllerMovedError when the epoch did."""
        transaction = self._client.transaction()
        transaction.check(zd.CONTROLLER_EPOCH, fence.zk_version)
        transaction.set_data(path, data, version=version)
        checked, written = transaction.commit()
        if isinstance(checked, (BadVersionError, NoNodeError)):
            reason = (f"controller epoch {fence.epoch} was superseded (/controller_epoch is no "
                      f"longer at version {fence.zk_version}); the write to {path} was refused")
            self.resign(fence, reason)
            raise ControllerMovedError(reason)
        if isinstance(written, BadVersionError):
            return False
        if isinstance(written, NoNodeError):
            raise MetadataError(ErrorCode.unknown_topic_or_partition, f"{path} does not exist")
        if isinstance(checked, Exception) and not isinstance(checked, RolledBackError):
            raise checked
        if isinstance(written, Exception):
            raise written
        return True

    def _apply(self, topic: TopicInfo) -> None:
        with self._lock:
            self._topics[topic.name] = replace(topic, configs=self._configs.get(topic.name,
                                                                                topic.configs))
        self._publish()


def _stamp(current: TopicInfo, updated: TopicInfo, controller_epoch: int) -> TopicInfo:
    """Mark every partition the controller changed with its epoch, as Kafka's partition
    state records the controller_epoch of the decision."""
    partitions = {
        index: p if p == current.partitions.get(index) else replace(p, controller_epoch=controller_epoch)
        for index, p in updated.partitions.items()
    }
    return replace(updated, partitions=partitions)


class _EntityWatch:
    """The config znodes under one root (`/config/users`, `/config/groups`): each entity
    watched from its first sighting, its configs (as `keep` selects them) kept in
    `values` under the desanitized name, and dropped when its znode goes."""

    def __init__(self, store: ZooKeeperMetadataStore, root: str,
                 values: dict[str, dict[str, str]],
                 keep: Callable[[dict[str, str]], dict[str, str]]) -> None:
        self.store, self.root, self.values, self.keep = store, root, values, keep
        self.watched: set[str] = set()

    def on_children(self, children: list[str]) -> None:
        for entity in children:
            if entity not in self.watched:
                self.watched.add(entity)
                self.store._client.DataWatch(f"{self.root}/{entity}", self._watcher(entity))

    def _watcher(self, entity: str) -> Callable[..., bool]:
        name = zd.desanitize_user(entity)
        store = self.store

        def watch(data: bytes | None, stat: object, event: object = None) -> bool:
            configs = self.keep(zd.decode_configs(data))
            with store._lock:
                if self.values.get(name, {}) == configs:
                    return data is not None and not store._closed
                if configs:
                    self.values[name] = configs
                else:
                    self.values.pop(name, None)
            store._publish()
            if data is None:
                self.watched.discard(entity)
            return data is not None and not store._closed

        return watch

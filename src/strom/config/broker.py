"""Broker configuration: Kafka's `server.properties` names, defaults, and typed access.

Unknown properties are kept (a real `server.properties` carries many we do not act on)
and logged once by the server, never rejected.

A broker's config has Kafka's four levels: per-broker dynamic configs, cluster-wide
dynamic defaults (both kept in the metadata store), the static properties, and the
defaults. `BrokerConfig.props` is always the effective merge of them, so every reader
that asks for a value when it needs it follows dynamic changes; code that keeps a value
subscribes (`BrokerConfig.subscribe`) and is told which names changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from strom.config import kafka_names
from strom.config.defs import LONG_MAX, ConfigDef, ConfigType, InvalidConfig
from strom.config.topic import (
    BROKER_SYNONYMS,
    BrokerLayers,
    EffectiveProps,
    synonym_group,
)

log = logging.getLogger(__name__)
T = ConfigType

BROKER_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        ConfigDef("broker.id", T.INT, "0", "this broker's id (alias node.id)", min=-1,
                  read_only=True),
        ConfigDef("node.id", T.INT, None, "alias of broker.id", min=-1, read_only=True),
        ConfigDef("broker.rack", T.STRING, None, read_only=True),
        ConfigDef("listeners", T.STRING, "PLAINTEXT://localhost:9092", read_only=True),
        ConfigDef("advertised.listeners", T.STRING, None, read_only=True),
        ConfigDef("listener.security.protocol.map", T.STRING,
                  "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
                  "listener name to security protocol; Strom serves PLAINTEXT only",
                  read_only=True),
        ConfigDef("log.dirs", T.STRING, None, "comma-separated data directories", read_only=True),
        ConfigDef("log.dir", T.STRING, "./strom-data", read_only=True),
        ConfigDef("zookeeper.connect", T.STRING, None, "host:port[/chroot]; unset = embedded",
                  read_only=True),
        ConfigDef("zookeeper.session.timeout.ms", T.INT, "18000", read_only=True),
        ConfigDef("cluster.id", T.STRING, None, read_only=True),
        ConfigDef("num.partitions", T.INT, "1", min=1),
        ConfigDef("default.replication.factor", T.INT, "1", min=1),
        ConfigDef("auto.create.topics.enable", T.BOOLEAN, "true"),
        ConfigDef("delete.topic.enable", T.BOOLEAN, "true"),
        ConfigDef("socket.request.max.bytes", T.INT, "104857600", min=1, read_only=True),
        ConfigDef("connections.max.idle.ms", T.LONG, "600000",
                  "close connections idle this long; -1 = never", read_only=True),
        ConfigDef("max.connections", T.INT, str(2**31 - 1), "connections accepted at once",
                  min=0),
        ConfigDef("max.connections.per.ip", T.INT, str(2**31 - 1), min=0),
        ConfigDef("max.connections.per.ip.overrides", T.STRING, "",
                  "comma-separated host:count pairs", ),
        ConfigDef("queued.max.request.bytes", T.LONG, "-1",
                  "bytes of received and queued requests across all connections before "
                  "reading pauses; -1 = no limit (Strom also caps half-received frames, "
                  "see strom.socket.partial.request.max.bytes)", read_only=True),
        ConfigDef("strom.socket.partial.request.max.bytes", T.LONG, "536870912",
                  "bytes of half-received request frames held across all connections; the "
                  "connection that would exceed it is closed", min=1, read_only=True),
        ConfigDef("strom.request.receive.timeout.ms", T.LONG, "30000",
                  "a connection that started a request frame and sent none of the rest for "
                  "this long is closed (slow-sender defence)", min=1, read_only=True),
        ConfigDef("strom.decompression.max.bytes", T.INT, "67108864",
                  "largest decompressed size of one batch the broker accepts; a batch whose "
                  "records expand beyond it is refused as CORRUPT_MESSAGE", min=1),
        ConfigDef("strom.max.partitions", T.INT, "0",
                  "partition replicas this broker hosts at most; 0 = derived from the file "
                  "descriptor limit", min=0),
        ConfigDef("strom.metrics.host", T.STRING, "127.0.0.1",
                  "interface of the metrics port: loopback unless told otherwise (off "
                  "loopback, protect it with strom.metrics.basic.auth.* and "
                  "strom.metrics.ssl.*)", read_only=True),
        # protection of the metrics port when it leaves loopback (observability.admin_access)
        ConfigDef("strom.metrics.basic.auth.user", T.STRING, None,
                  "HTTP basic authentication for /metrics (with the password)", read_only=True),
        ConfigDef("strom.metrics.basic.auth.password", T.PASSWORD, None, read_only=True,
                  sensitive=True),
        ConfigDef("strom.metrics.ssl.certificate.location", T.STRING, None,
                  "PEM certificate chain: the metrics port speaks HTTPS", read_only=True),
        ConfigDef("strom.metrics.ssl.key.location", T.STRING, None,
                  "PEM private key of the metrics port's certificate", read_only=True),
        ConfigDef("strom.metrics.ssl.key.password", T.PASSWORD, None, read_only=True,
                  sensitive=True),
        ConfigDef("message.max.bytes", T.INT, "1048588", min=0),
        ConfigDef("max.request.partition.size.limit", T.INT, "2000",
                  "partitions one DescribeTopicPartitions answer holds at most", min=1,
                  read_only=True),
        ConfigDef("log.retention.check.interval.ms", T.LONG, "300000", min=1),
        ConfigDef("log.flush.offset.checkpoint.interval.ms", T.INT, "60000", min=0,
                  read_only=True),
        ConfigDef("log.flush.scheduler.interval.ms", T.LONG, str(LONG_MAX)),
        ConfigDef("log.flush.start.offset.checkpoint.interval.ms", T.INT, "60000",
                  read_only=True),
        ConfigDef("replica.high.watermark.checkpoint.interval.ms", T.LONG, "5000",
                  read_only=True),
        ConfigDef("replica.lag.time.max.ms", T.LONG, "30000"),
        ConfigDef("auto.leader.rebalance.enable", T.BOOLEAN, "true"),
        ConfigDef("leader.imbalance.check.interval.seconds", T.LONG, "300", min=1),
        ConfigDef("replica.fetch.max.bytes", T.INT, "1048576"),
        ConfigDef("replica.fetch.wait.max.ms", T.INT, "500"),
        ConfigDef("offsets.topic.num.partitions", T.INT, "50", min=1, read_only=True),
        ConfigDef("offsets.topic.replication.factor", T.SHORT, "3", min=1, read_only=True),
        ConfigDef("offsets.topic.segment.bytes", T.INT, "104857600", read_only=True),
        ConfigDef("offsets.retention.minutes", T.INT, "10080", min=1),
        ConfigDef("offsets.retention.check.interval.ms", T.LONG, "600000"),
        ConfigDef("offset.metadata.max.bytes", T.INT, "4096"),
        ConfigDef("group.initial.rebalance.delay.ms", T.INT, "3000", min=0),
        ConfigDef("group.min.session.timeout.ms", T.INT, "6000"),
        ConfigDef("group.max.session.timeout.ms", T.INT, "1800000"),
        ConfigDef("group.max.size", T.INT, str(2**31 - 1), min=1),
        ConfigDef("group.coordinator.rebalance.protocols", T.LIST, "classic,consumer",
                  "the group protocols served: classic, consumer (KIP-848: "
                  "ConsumerGroupHeartbeat and ConsumerGroupDescribe are advertised only with "
                  "it; Kafka 4's default too; Kafka 4.4 also lists streams, KIP-1071, which "
                  "Strom does not serve) and share (Kafka 4.0's switch for KIP-932; share "
                  "groups are on anyway while strom.share.version is 1)",
                  read_only=True),
        ConfigDef("strom.share.version", T.SHORT, "1", "the share.version feature (KIP-932 "
                  "share groups), finalized as on a new Kafka 4.4 cluster: 1 serves share "
                  "groups and advertises their APIs, 0 turns them off (unless `share` is in "
                  "group.coordinator.rebalance.protocols)", min=0, max=1, read_only=True),
        ConfigDef("group.consumer.session.timeout.ms", T.INT, "45000", min=1, read_only=True),
        ConfigDef("group.consumer.heartbeat.interval.ms", T.INT, "5000", min=1, read_only=True),
        ConfigDef("group.consumer.max.size", T.INT, str(2**31 - 1), min=1, read_only=True),
        ConfigDef("group.consumer.min.session.timeout.ms", T.INT, "45000", min=1, read_only=True),
        ConfigDef("group.consumer.max.session.timeout.ms", T.INT, "60000", min=1, read_only=True),
        ConfigDef("group.consumer.min.heartbeat.interval.ms", T.INT, "5000", min=1,
                  read_only=True),
        ConfigDef("group.consumer.max.heartbeat.interval.ms", T.INT, "15000", min=1,
                  read_only=True),
        ConfigDef("group.consumer.assignors", T.LIST, "uniform,range", read_only=True),
        ConfigDef("group.consumer.migration.policy", T.STRING, "bidirectional",
                  "whether a classic group with members becomes a consumer group when a "
                  "consumer-protocol member joins (upgrade), goes back when its last one "
                  "leaves (downgrade), both, or neither", read_only=True,
                  choices=("disabled", "upgrade", "downgrade", "bidirectional")),
        ConfigDef("transaction.state.log.num.partitions", T.INT, "50", read_only=True),
        ConfigDef("transaction.state.log.replication.factor", T.SHORT, "3", read_only=True),
        ConfigDef("transaction.state.log.min.isr", T.INT, "2", read_only=True),
        ConfigDef("transaction.max.timeout.ms", T.INT, "900000", min=1),
        ConfigDef("transactional.id.expiration.ms", T.INT, "604800000", min=1),
        ConfigDef("strom.transaction.version", T.SHORT, "2", "the transaction.version feature "
                  "advertised to clients (Kafka's finalized feature; 2 on a new Kafka 4.4 "
                  "cluster): 2 lets them end transactions with epoch bumps (KIP-890 part 2), "
                  "1 keeps them on AddPartitionsToTxn and EndTxn v4", min=1, max=2,
                  read_only=True),
        ConfigDef("producer.id.expiration.ms", T.INT, "86400000", min=1),
        ConfigDef("producer.id.expiration.check.interval.ms", T.INT, "600000",
                  "how often idle idempotent producers are looked for (an internal setting "
                  "in Kafka)", min=1, read_only=True),
        ConfigDef("log.cleaner.enable", T.BOOLEAN, "true",
                  "run the log cleaner for compacted topics", read_only=True),
        ConfigDef("log.cleaner.threads", T.INT, "1", min=0),
        ConfigDef("log.cleaner.dedupe.buffer.size", T.LONG, "134217728", min=1),
        ConfigDef("log.cleaner.io.buffer.size", T.INT, "524288", min=0),
        ConfigDef("log.cleaner.io.buffer.load.factor", T.DOUBLE, "0.9"),
        ConfigDef("log.cleaner.io.max.bytes.per.second", T.DOUBLE, "1.7976931348623157E308"),
        ConfigDef("log.cleaner.backoff.ms", T.LONG, "15000", min=0),
        ConfigDef("strom.metrics.port", T.INT, "9644",
                  "HTTP port for /metrics, /healthz and /readyz on strom.metrics.host; "
                  "-1 = off, 0 = any free port; the default is skipped with a warning if taken",
                  min=-1, read_only=True),
        # security (strom.broker.security): Kafka's names and defaults; secrets are
        # PASSWORD, so DescribeConfigs shows no value for them
        ConfigDef("ssl.client.auth", T.STRING, "none", read_only=True,
                  choices=("required", "requested", "none")),
        ConfigDef("ssl.keystore.type", T.STRING, "JKS", read_only=True),
        ConfigDef("ssl.keystore.location", T.STRING, None, read_only=True),
        ConfigDef("ssl.truststore.type", T.STRING, "JKS", read_only=True),
        ConfigDef("ssl.truststore.location", T.STRING, None, read_only=True),
        ConfigDef("ssl.protocol", T.STRING, "TLSv1.3", read_only=True),
        ConfigDef("ssl.enabled.protocols", T.LIST, "TLSv1.2,TLSv1.3", read_only=True),
        ConfigDef("ssl.cipher.suites", T.LIST, None, read_only=True),
        ConfigDef("ssl.principal.mapping.rules", T.STRING, "DEFAULT", read_only=True),
        ConfigDef("ssl.endpoint.identification.algorithm", T.STRING, "https", read_only=True),
        ConfigDef("sasl.enabled.mechanisms", T.LIST, "GSSAPI", read_only=True),
        ConfigDef("connections.max.reauth.ms", T.LONG, "0", read_only=True),
        ConfigDef("connection.failed.authentication.delay.ms", T.INT, "100", min=0,
                  read_only=True),
        ConfigDef("authorizer.class.name", T.STRING, "",
                  "set (Kafka's StandardAuthorizer or AclAuthorizer): ACLs are enforced",
                  read_only=True),
        ConfigDef("super.users", T.STRING, None, "principals ACLs never refuse, ';'-separated",
                  read_only=True),
        ConfigDef("allow.everyone.if.no.acl.found", T.BOOLEAN, "false", read_only=True),
        ConfigDef("inter.broker.listener.name", T.STRING, None, read_only=True),
        ConfigDef("security.inter.broker.protocol", T.STRING, "PLAINTEXT", read_only=True),
        ConfigDef("sasl.mechanism.inter.broker.protocol", T.STRING, "GSSAPI", read_only=True),
        *(ConfigDef(name, T.PASSWORD, None, read_only=True, sensitive=True) for name in (
            "ssl.key.password", "ssl.keystore.password", "ssl.truststore.password",
            "ssl.keystore.key", "ssl.keystore.certificate.chain",
            "ssl.truststore.certificates", "sasl.jaas.config")),
        ConfigDef("strom.metadata.file", T.STRING, None,
                  "embedded metadata store file; default <first log dir>/strom-metadata.json",
                  read_only=True),
    ]
}


@dataclass(frozen=True)
class Listener:
    name: str
    host: str
    port: int


def parse_listeners(raw: str) -> list[Listener]:
    listeners = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, rest = item.partition("://")
        if not sep:
            raise InvalidConfig(f"listener {item!r} is not NAME://host:port")
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise InvalidConfig(f"listener {item!r} has no port")
        listeners.append(Listener(name, host.strip("[]"), int(port)))
    if not listeners:
        raise InvalidConfig("no listeners configured")
    return listeners


@dataclass(frozen=True)
class BrokerConfigChange:
    """What a dynamic config change changed: the names whose effective value differs."""

    changed: frozenset[str]

    def touches(self, *names: str) -> bool:
        return not self.changed.isdisjoint(names)


BrokerConfigListener = Callable[[BrokerConfigChange], None]


def broker_def(name: str) -> ConfigDef | None:
    """A broker config's definition, including the broker-side topic synonyms."""
    return BROKER_CONFIGS.get(name) or BROKER_SYNONYMS.get(name)


STROM_DYNAMIC = frozenset({"strom.decompression.max.bytes"})
"""Strom's own settings that apply without a restart."""

_STROM_STATIC_PREFIXES = ("listener.name.", "ssl.", "sasl.")
_STROM_STATIC = frozenset({"listeners", "listener.security.protocol.map",
                           "principal.builder.class", "config.providers"})


RELOADABLE_SSL = frozenset({
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.keystore.key", "ssl.keystore.certificate.chain", "ssl.truststore.type",
    "ssl.truststore.location", "ssl.truststore.password", "ssl.truststore.certificates"})
"""Kafka's SslConfigs.RECONFIGURABLE_CONFIGS: a listener's key- and truststore, reloaded
without a restart (`strom.broker.security.tls_reload`), listener-prefixed and per broker."""


def reloadable_ssl(name: str) -> bool:
    """`ssl.keystore.location` or `listener.name.<l>.ssl.keystore.location` (and the
    other RELOADABLE_SSL names)."""
    if name.startswith("listener.name."):
        name = name.split(".", 3)[-1] if name.count(".") >= 3 else ""
    return name in RELOADABLE_SSL


def is_dynamic(name: str) -> bool:
    """Kafka 4.4's dynamic set, less the listener and security settings Strom cannot
    change while running (but with the key- and truststores it reloads), plus Strom's own
    dynamic settings."""
    if name in STROM_DYNAMIC or reloadable_ssl(name):
        return True
    if name in _STROM_STATIC or name.startswith(_STROM_STATIC_PREFIXES):
        return False
    return name in kafka_names.KAFKA_DYNAMIC


def is_known(name: str) -> bool:
    """A name Kafka 4.4 or Strom defines as a broker config."""
    return (name in kafka_names.KAFKA_DYNAMIC or name in kafka_names.KAFKA_STATIC
            or broker_def(name) is not None or name.startswith(_STROM_STATIC_PREFIXES))


def _overlay(props: dict[str, str], layer: Mapping[str, str]) -> None:
    """Kafka's overrideProps: a value replaces its synonyms from lower levels (a dynamic
    log.retention.ms hides a static log.retention.hours)."""
    for name, value in layer.items():
        for synonym in synonym_group(name):
            props.pop(synonym, None)
        props[name] = value


class BrokerConfig:
    """The broker's properties at every level and typed views of the effective ones."""

    def __init__(self, props: Mapping[str, str] | None = None) -> None:
        self.static: dict[str, str] = dict(props or {})
        for name, raw in self.static.items():
            definition = broker_def(name)
            if definition is not None:
                try:
                    definition.parse(raw)
                except InvalidConfig as exc:
                    raise InvalidConfig(f"Invalid value {raw!r} for {name}: {exc}") from exc
        self.dynamic_default: dict[str, str] = {}
        self.dynamic_broker: dict[str, str] = {}
        self._listeners: list[BrokerConfigListener] = []
        self.props: EffectiveProps = self._effective()

    @classmethod
    def from_file(cls, path: Path | None, overrides: Mapping[str, str]) -> BrokerConfig:
        from strom.config.properties import load_properties

        props = load_properties(path) if path else {}
        props.update(overrides)
        return cls(props)

    # --- levels and dynamic changes -----------------------------------------------------

    @property
    def layers(self) -> BrokerLayers:
        return self.props.layers

    def _effective(self) -> EffectiveProps:
        merged = dict(self.static)
        _overlay(merged, self.dynamic_default)
        _overlay(merged, self.dynamic_broker)
        return EffectiveProps(merged, BrokerLayers(
            dict(self.dynamic_broker), dict(self.dynamic_default), dict(self.static),
            DEFAULTS))

    def subscribe(self, listener: BrokerConfigListener) -> None:
        """Be told after every dynamic change, with the names whose value changed; the
        new values are already in `props`. Called on the event loop. The one hook for
        code that keeps a broker setting (the log cleaner's log.cleaner.*, connection
        limits, the partitions' log configs)."""
        self._listeners.append(listener)

    def set_dynamic(self, default: Mapping[str, str],
                    broker: Mapping[str, str]) -> BrokerConfigChange | None:
        """Adopt the dynamic configs the metadata store holds (cluster-wide defaults and
        this broker's own). As Kafka does with what it reads back, names that cannot be
        changed dynamically and values that do not parse are left out, with an error in
        the log. Returns the change (None when nothing changed) after telling the
        subscribers."""
        default = _usable(default, "default cluster")
        broker = _usable(broker, "broker")
        if default == self.dynamic_default and broker == self.dynamic_broker:
            return None
        old = self.props
        self.dynamic_default, self.dynamic_broker = default, broker
        self.props = self._effective()
        changed = frozenset(n for n in set(old) | set(self.props)
                            if old.get(n) != self.props.get(n))
        change = BrokerConfigChange(changed)
        if changed:
            log.info("dynamic broker configs changed: %s", ", ".join(sorted(changed)))
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:
                    log.exception("a broker config listener failed")
        return change

    # --- typed access to the effective values -------------------------------------------

    def raw(self, name: str) -> str | None:
        if name in self.props:
            return self.props[name]
        definition = BROKER_CONFIGS.get(name)
        return definition.default if definition else None

    def get_int(self, name: str) -> int:
        value = self.raw(name)
        if value is None:
            raise KeyError(name)
        return int(value)

    def get_float(self, name: str) -> float:
        value = self.raw(name)
        if value is None:
            raise KeyError(name)
        return float(value)

    def get_bool(self, name: str) -> bool:
        return (self.raw(name) or "false").strip().lower() == "true"

    def get_str(self, name: str) -> str | None:
        return self.raw(name)

    @property
    def broker_id(self) -> int:
        node_id = self.props.get("node.id")
        return int(node_id) if node_id is not None else self.get_int("broker.id")

    @property
    def log_dirs(self) -> list[Path]:
        raw = self.props.get("log.dirs") or self.raw("log.dir") or "./strom-data"
        return [Path(p.strip()) for p in raw.split(",") if p.strip()]

    @property
    def listeners(self) -> list[Listener]:
        return parse_listeners(self.raw("listeners") or "")

    @property
    def advertised_listeners(self) -> list[Listener]:
        raw = self.raw("advertised.listeners")
        if not raw:
            return [
                Listener(ln.name, ln.host if ln.host not in ("", "0.0.0.0", "::") else "localhost",
                         ln.port)
                for ln in self.listeners
            ]
        return parse_listeners(raw)


DEFAULTS: dict[str, str] = {
    name: definition.default
    for name, definition in {**BROKER_SYNONYMS, **BROKER_CONFIGS}.items()
    if definition.default is not None
}
"""Every broker config's default that has a value (Kafka's DEFAULT_CONFIG level)."""


def _usable(values: Mapping[str, str], level: str) -> dict[str, str]:
    """The stored dynamic configs this broker can apply: dynamic names with valid values
    (Kafka's fromPersistentProps drops the rest and logs it)."""
    usable: dict[str, str] = {}
    for name, raw in values.items():
        if is_known(name) and not is_dynamic(name):
            log.error("dynamic %s config %s cannot be changed dynamically; ignored", level, name)
            continue
        definition = broker_def(name)
        try:
            if definition is not None:
                definition.parse(raw)
        except InvalidConfig as exc:
            log.error("dynamic %s config %s=%r is invalid (%s); ignored", level, name, raw, exc)
            continue
        usable[name] = raw
    return usable

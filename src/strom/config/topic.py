"""Topic-level configs: their definitions and how an effective value is resolved.

A topic value comes from the topic's own override, else from the broker property that is
its synonym (e.g. `retention.ms` <- `log.retention.ms` <- `log.retention.minutes` <-
`log.retention.hours`), else from the default. DescribeConfigs reports which, so the
resolution returns the source and the synonym chain along with the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from strom.config.defs import LONG_MAX, ConfigDef, ConfigSource, ConfigType, InvalidConfig

T = ConfigType
_DAY_MS = 24 * 3600 * 1000


def _gzip_level(value: object) -> None:
    if value != -1 and not (isinstance(value, int) and 1 <= value <= 9):
        raise InvalidConfig("Value must be between 1 and 9 or equal to -1")


def _throttled_replicas(name: str) -> Callable[[object], None]:
    """Kafka's rule: '*' alone, or partition:broker pairs."""

    def check(value: object) -> None:
        items = value if isinstance(value, list) else []
        if items == ["*"] or all(_is_pair(item) for item in items):
            return
        raise InvalidConfig(f"{name} must be the literal '*' or a list of replicas in the "
                            "following format: [partitionId]:[brokerId],[partitionId]:"
                            "[brokerId],...", shown=f"[{', '.join(items)}]")

    return check


def _is_pair(item: str) -> bool:
    partition, colon, broker = item.partition(":")
    return bool(colon) and partition.strip().isdigit() and broker.strip().isdigit()

TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        ConfigDef("cleanup.policy", T.LIST, "delete", "delete or compact, or both",
                  choices=("compact", "delete"), synonyms=("log.cleanup.policy",)),
        ConfigDef("compression.type", T.STRING, "producer", "final codec; producer keeps it",
                  choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
                  synonyms=("compression.type",)),
        ConfigDef("compression.gzip.level", T.INT, "-1", synonyms=("compression.gzip.level",),
                  extra_check=_gzip_level),
        ConfigDef("compression.lz4.level", T.INT, "9", min=1, max=17,
                  synonyms=("compression.lz4.level",)),
        ConfigDef("compression.zstd.level", T.INT, "3", min=-131072, max=22,
                  synonyms=("compression.zstd.level",)),
        ConfigDef("delete.retention.ms", T.LONG, str(_DAY_MS), min=0,
                  synonyms=("log.cleaner.delete.retention.ms",)),
        ConfigDef("file.delete.delay.ms", T.LONG, "60000", min=0,
                  synonyms=("log.segment.delete.delay.ms",)),
        ConfigDef("flush.messages", T.LONG, str(LONG_MAX), min=1,
                  synonyms=("log.flush.interval.messages",)),
        ConfigDef("flush.ms", T.LONG, str(LONG_MAX), min=0,
                  synonyms=("log.flush.interval.ms", "log.flush.scheduler.interval.ms")),
        ConfigDef("errors.deadletterqueue.group.enable", T.BOOLEAN, "false",
                  "share groups may write undeliverable records here (not used by Strom)"),
        ConfigDef("follower.replication.throttled.replicas", T.LIST, "",
                  extra_check=_throttled_replicas("follower.replication.throttled.replicas")),
        ConfigDef("leader.replication.throttled.replicas", T.LIST, "",
                  extra_check=_throttled_replicas("leader.replication.throttled.replicas")),
        ConfigDef("index.interval.bytes", T.INT, "4096", min=0,
                  synonyms=("log.index.interval.bytes",)),
        ConfigDef("local.retention.bytes", T.LONG, "-2", min=-2,
                  synonyms=("log.local.retention.bytes",)),
        ConfigDef("local.retention.ms", T.LONG, "-2", min=-2,
                  synonyms=("log.local.retention.ms",)),
        ConfigDef("max.compaction.lag.ms", T.LONG, str(LONG_MAX), min=1,
                  synonyms=("log.cleaner.max.compaction.lag.ms",)),
        ConfigDef("max.decompressed.message.bytes", T.INT, "2147483639", min=1,
                  max=2147483639, synonyms=("max.decompressed.message.bytes",)),
        ConfigDef("max.message.bytes", T.INT, "1048588", min=0,
                  synonyms=("message.max.bytes",)),
        ConfigDef("message.timestamp.after.max.ms", T.LONG, "3600000", min=0,
                  synonyms=("log.message.timestamp.after.max.ms",)),
        ConfigDef("message.timestamp.before.max.ms", T.LONG, str(LONG_MAX), min=0,
                  synonyms=("log.message.timestamp.before.max.ms",)),
        ConfigDef("message.timestamp.type", T.STRING, "CreateTime",
                  choices=("CreateTime", "LogAppendTime"),
                  synonyms=("log.message.timestamp.type",)),
        ConfigDef("min.cleanable.dirty.ratio", T.DOUBLE, "0.5", min=0, max=1,
                  synonyms=("log.cleaner.min.cleanable.ratio",)),
        ConfigDef("min.compaction.lag.ms", T.LONG, "0", min=0,
                  synonyms=("log.cleaner.min.compaction.lag.ms",)),
        ConfigDef("min.insync.replicas", T.INT, "1", min=1, synonyms=("min.insync.replicas",)),
        ConfigDef("preallocate", T.BOOLEAN, "false", synonyms=("log.preallocate",)),
        ConfigDef("remote.copy.lag.bytes", T.LONG, "-1", min=-1,
                  synonyms=("log.remote.copy.lag.bytes",)),
        ConfigDef("remote.copy.lag.ms", T.LONG, "0", min=-1, synonyms=("log.remote.copy.lag.ms",)),
        ConfigDef("remote.storage.enable", T.BOOLEAN, "false"),
        ConfigDef("remote.log.copy.disable", T.BOOLEAN, "false"),
        ConfigDef("remote.log.delete.on.disable", T.BOOLEAN, "false"),
        ConfigDef("retention.bytes", T.LONG, "-1", synonyms=("log.retention.bytes",)),
        ConfigDef("retention.ms", T.LONG, str(7 * _DAY_MS), min=-1,
                  synonyms=("log.retention.ms", "log.retention.minutes", "log.retention.hours")),
        ConfigDef("segment.bytes", T.INT, str(1 << 30), min=14,
                  synonyms=("log.segment.bytes",)),
        ConfigDef("segment.index.bytes", T.INT, str(10 * 1024 * 1024), min=4,
                  synonyms=("log.index.size.max.bytes",)),
        ConfigDef("segment.jitter.ms", T.LONG, "0", min=0, synonyms=("log.roll.jitter.ms",
                  "log.roll.jitter.hours")),
        ConfigDef("segment.ms", T.LONG, str(7 * _DAY_MS), min=1,
                  synonyms=("log.roll.ms", "log.roll.hours")),
        ConfigDef("unclean.leader.election.enable", T.BOOLEAN, "false",
                  synonyms=("unclean.leader.election.enable",)),
    ]
}

# Broker properties in coarser units that stand for a millisecond topic config.
_UNIT_SCALE = {
    "log.retention.minutes": 60_000,
    "log.retention.hours": 3_600_000,
    "log.roll.hours": 3_600_000,
    "log.roll.jitter.hours": 3_600_000,
}

# The broker-side names behind topic configs, typed and defaulted as Kafka 4.4's broker
# defines them (not as the topic config is): several have no default of their own
# (log.retention.ms, log.roll.ms, ...) and fall back to a coarser synonym that has one.
# Kafka lists a default-level synonym only when it has a value, so these matter to the
# synonym chains DescribeConfigs reports.
_BROKER_SIDE = {
    "log.retention.ms": (T.LONG, None), "log.retention.minutes": (T.INT, None),
    "log.retention.hours": (T.INT, "168"), "log.roll.ms": (T.LONG, None),
    "log.roll.hours": (T.INT, "168"), "log.roll.jitter.ms": (T.LONG, None),
    "log.roll.jitter.hours": (T.INT, "0"), "log.flush.interval.ms": (T.LONG, None),
}


def _broker_synonym_defs() -> dict[str, ConfigDef]:
    defs: dict[str, ConfigDef] = {}
    for topic_def in TOPIC_CONFIGS.values():
        for name in topic_def.synonyms:
            kind, default = _BROKER_SIDE.get(name, (topic_def.type, topic_def.default))
            choices = topic_def.choices if kind is topic_def.type else ()
            defs[name] = ConfigDef(name, kind, default, topic_def.doc, choices=choices)
    return defs


BROKER_SYNONYMS: dict[str, ConfigDef] = _broker_synonym_defs()
"""Every broker property that supplies a topic config's default, as a broker config."""

# Names Kafka treats as one setting in different units: a dynamic value of one hides the
# others from lower levels (Kafka's DynamicBrokerConfig.brokerConfigSynonyms).
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("log.roll.ms", "log.roll.hours"),
    ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
    ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
)


def synonym_group(name: str) -> tuple[str, ...]:
    """The names that set the same broker value as `name`, in precedence order."""
    for group in SYNONYM_GROUPS:
        if name in group:
            return group
    return (name,)


Synonym = tuple[str, str | None, ConfigSource]


@dataclass(frozen=True)
class BrokerLayers:
    """The broker's config in Kafka's four levels, highest first. `defaults` holds only
    names with a default value (Kafka never lists a null default as a synonym)."""

    dynamic_broker: Mapping[str, str]
    dynamic_default: Mapping[str, str]
    static: Mapping[str, str]
    defaults: Mapping[str, str]

    def levels(self) -> tuple[tuple[ConfigSource, Mapping[str, str]], ...]:
        return ((ConfigSource.DYNAMIC_BROKER_CONFIG, self.dynamic_broker),
                (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, self.dynamic_default),
                (ConfigSource.STATIC_BROKER_CONFIG, self.static),
                (ConfigSource.DEFAULT_CONFIG, self.defaults))

    def chain(self, names: tuple[str, ...]) -> list[Synonym]:
        """Every value of these names, level by level, as DescribeConfigs lists them."""
        return [(n, values[n], source) for source, values in self.levels()
                for n in names if values.get(n) is not None]


SYNONYM_DEFAULTS: dict[str, str] = {
    n: d.default for n, d in BROKER_SYNONYMS.items() if d.default is not None}


class EffectiveProps(dict[str, str]):
    """The broker's effective properties (what every reader of `BrokerConfig.props`
    sees) that also know their levels, so topic configs can report where a value came
    from."""

    def __init__(self, values: Mapping[str, str], layers: BrokerLayers) -> None:
        super().__init__(values)
        self.layers = layers


def _layers_of(broker_props: Mapping[str, str]) -> BrokerLayers:
    layers = getattr(broker_props, "layers", None)
    if isinstance(layers, BrokerLayers):
        return layers
    return BrokerLayers({}, {}, broker_props, SYNONYM_DEFAULTS)  # plain props: all static


@dataclass(frozen=True)
class ResolvedConfig:
    """One topic config: its value and the level it comes from (`source`, what a
    CreateTopics answer reports), and what DescribeConfigs reports: the synonym chain
    and its head's level (`described_source`). The two differ where Kafka's do: a value
    from a coarser synonym such as log.retention.hours is described as DEFAULT_CONFIG
    with no synonyms, because Kafka drops the chain's entries before the first synonym's
    own name."""

    name: str
    value: str | None
    source: ConfigSource
    synonyms: tuple[Synonym, ...]
    definition: ConfigDef | None
    described_source: ConfigSource = ConfigSource.DEFAULT_CONFIG


def _broker_value(name: str, raw: str) -> str:
    scale = _UNIT_SCALE.get(name)
    return str(int(raw) * scale) if scale else raw


def drop_before(chain: list[Synonym], name: str) -> list[Synonym]:
    """Kafka's `dropWhile(_.name != name)` on a synonym chain."""
    for index, (synonym, _, _) in enumerate(chain):
        if synonym == name:
            return chain[index:]
    return []


def resolve_topic_config(
    name: str, overrides: Mapping[str, str], broker_props: Mapping[str, str]
) -> ResolvedConfig:
    """The effective value of one topic config, where it came from, and its synonyms.

    `broker_props` is `BrokerConfig.props` (levels known) or a plain mapping (taken as
    static properties)."""
    definition = TOPIC_CONFIGS.get(name)
    names = definition.synonyms if definition else ()
    chain = _layers_of(broker_props).chain(names)
    described = drop_before(chain, names[0]) if names else []
    if name in overrides:
        value: str | None = overrides[name]
        source = ConfigSource.DYNAMIC_TOPIC_CONFIG
        described = [(name, value, source), *described]
    elif chain:
        first, raw, source = chain[0]
        value = _broker_value(first, raw) if raw is not None else None
    elif definition is not None:
        value, source = definition.default, ConfigSource.DEFAULT_CONFIG
    else:
        return ResolvedConfig(name, None, ConfigSource.UNKNOWN, (), None)
    head = described[0][2] if described else ConfigSource.DEFAULT_CONFIG
    return ResolvedConfig(name, value, source, tuple(described), definition, head)


def effective_topic_configs(
    overrides: Mapping[str, str], broker_props: Mapping[str, str]
) -> dict[str, ResolvedConfig]:
    names = list(TOPIC_CONFIGS) + [n for n in overrides if n not in TOPIC_CONFIGS]
    return {n: resolve_topic_config(n, overrides, broker_props) for n in sorted(names)}


def validate_topic_overrides(overrides: Mapping[str, str | None],
                             kept: Mapping[str, str] | None = None) -> dict[str, str]:
    """Check a topic's overrides as Kafka 4.4's controller does: names first (an unknown
    name is INVALID_CONFIG, "Unknown topic config name: x"), then values.

    `kept` are the overrides the topic already has: an unknown name stored before Strom
    refused them (older releases kept them) is carried along unchanged, so unrelated
    changes to that topic still go through; setting it anew is refused.
    """
    nulls = [name for name, raw in overrides.items() if raw is None]
    if nulls:
        raise InvalidConfig(f"Null value not supported for topic configs: {','.join(nulls)}")
    clean = {name: raw for name, raw in overrides.items() if raw is not None}
    for name, raw in clean.items():
        if name not in TOPIC_CONFIGS and (kept is None or kept.get(name) != raw):
            raise InvalidConfig(f"Unknown topic config name: {name}")
    for name, raw in clean.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is not None:
            try:
                definition.parse(raw)
            except InvalidConfig as exc:
                raise definition.invalid(raw, exc) from exc
    return clean


def typed_topic_value(
    name: str, overrides: Mapping[str, str], broker_props: Mapping[str, str]
) -> object:
    resolved = resolve_topic_config(name, overrides, broker_props)
    definition = TOPIC_CONFIGS[name]
    return definition.parse(resolved.value if resolved.value is not None else "")

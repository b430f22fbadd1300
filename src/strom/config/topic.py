"""Topic-level configs: their definitions and how an effective value is resolved.

A topic value comes from the topic's own override, else from the broker property that is
its synonym (e.g. `retention.ms` <- `log.retention.ms` <- `log.retention.minutes` <-
`log.retention.hours`), else from the default. DescribeConfigs reports which, so the
resolution returns the source and the synonym chain along with the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from strom.config.defs import LONG_MAX, ConfigDef, ConfigSource, ConfigType, InvalidConfig

T = ConfigType
_DAY_MS = 24 * 3600 * 1000

TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        ConfigDef("cleanup.policy", T.LIST, "delete", "delete or compact, or both",
                  choices=("delete", "compact"), synonyms=("log.cleanup.policy",)),
        ConfigDef("compression.type", T.STRING, "producer", "final codec; producer keeps it",
                  choices=("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
                  synonyms=("compression.type",)),
        ConfigDef("compression.gzip.level", T.INT, "-1", synonyms=("compression.gzip.level",)),
        ConfigDef("compression.lz4.level", T.INT, "9", synonyms=("compression.lz4.level",)),
        ConfigDef("compression.zstd.level", T.INT, "3", synonyms=("compression.zstd.level",)),
        ConfigDef("delete.retention.ms", T.LONG, str(_DAY_MS), min=0,
                  synonyms=("log.cleaner.delete.retention.ms",)),
        ConfigDef("file.delete.delay.ms", T.LONG, "60000", min=0,
                  synonyms=("log.segment.delete.delay.ms",)),
        ConfigDef("flush.messages", T.LONG, str(LONG_MAX), min=1,
                  synonyms=("log.flush.interval.messages",)),
        ConfigDef("flush.ms", T.LONG, str(LONG_MAX), min=0,
                  synonyms=("log.flush.interval.ms", "log.flush.scheduler.interval.ms")),
        ConfigDef("follower.replication.throttled.replicas", T.LIST, ""),
        ConfigDef("leader.replication.throttled.replicas", T.LIST, ""),
        ConfigDef("index.interval.bytes", T.INT, "4096", min=0,
                  synonyms=("log.index.interval.bytes",)),
        ConfigDef("local.retention.bytes", T.LONG, "-2", min=-2,
                  synonyms=("log.local.retention.bytes",)),
        ConfigDef("local.retention.ms", T.LONG, "-2", min=-2,
                  synonyms=("log.local.retention.ms",)),
        ConfigDef("max.compaction.lag.ms", T.LONG, str(LONG_MAX), min=1,
                  synonyms=("log.cleaner.max.compaction.lag.ms",)),
        ConfigDef("max.message.bytes", T.INT, "1048588", min=0,
                  synonyms=("message.max.bytes",)),
        ConfigDef("message.timestamp.after.max.ms", T.LONG, "3600000", min=0,
                  synonyms=("log.message.timestamp.after.max.ms",)),
        ConfigDef("message.timestamp.before.max.ms", T.LONG, str(LONG_MAX), min=0,
                  synonyms=("log.message.timestamp.before.max.ms",)),
        ConfigDef("message.timestamp.type", T.STRING, "CreateTime",
                  choices=("CreateTime", "LogAppendTime"),
                  synonyms=("log.message.timestamp.type",)),
        ConfigDef("min.cleanable.dirty.ratio", T.DOUBLE, "0.5",
                  synonyms=("log.cleaner.min.cleanable.ratio",)),
        ConfigDef("min.compaction.lag.ms", T.LONG, "0", min=0,
                  synonyms=("log.cleaner.min.compaction.lag.ms",)),
        ConfigDef("min.insync.replicas", T.INT, "1", min=1, synonyms=("min.insync.replicas",)),
        ConfigDef("preallocate", T.BOOLEAN, "false", synonyms=("log.preallocate",)),
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


@dataclass(frozen=True)
class ResolvedConfig:
    name: str
    value: str | None
    source: ConfigSource
    synonyms: tuple[tuple[str, str | None, ConfigSource], ...]
    definition: ConfigDef | None


def _broker_value(name: str, raw: str) -> str:
    scale = _UNIT_SCALE.get(name)
    return str(int(raw) * scale) if scale else raw


def resolve_topic_config(
    name: str, overrides: Mapping[str, str], broker_props: Mapping[str, str]
) -> ResolvedConfig:
    """The effective value of one topic config, where it came from, and its synonyms."""
    definition = TOPIC_CONFIGS.get(name)
    synonyms: list[tuple[str, str | None, ConfigSource]] = []  # first one wins
    if name in overrides:
        synonyms.append((name, overrides[name], ConfigSource.DYNAMIC_TOPIC_CONFIG))
    for broker_name in definition.synonyms if definition else ():
        if broker_name in broker_props:
            # Kafka lists a synonym with its own value (log.retention.hours=3, not ms)
            synonyms.append(
                (broker_name, broker_props[broker_name], ConfigSource.STATIC_BROKER_CONFIG)
            )
    if definition is not None and definition.synonyms:
        synonyms.append((definition.synonyms[0], definition.default, ConfigSource.DEFAULT_CONFIG))
    elif definition is not None:
        synonyms.append((name, definition.default, ConfigSource.DEFAULT_CONFIG))
    if not synonyms:
        return ResolvedConfig(name, None, ConfigSource.UNKNOWN, (), None)
    first, value, source = synonyms[0]
    if source == ConfigSource.STATIC_BROKER_CONFIG and value is not None:
        value = _broker_value(first, value)
    return ResolvedConfig(name, value, source, tuple(synonyms), definition)


def effective_topic_configs(
    overrides: Mapping[str, str], broker_props: Mapping[str, str]
) -> dict[str, ResolvedConfig]:
    names = list(TOPIC_CONFIGS) + [n for n in overrides if n not in TOPIC_CONFIGS]
    return {n: resolve_topic_config(n, overrides, broker_props) for n in sorted(names)}


def validate_topic_overrides(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """Check values of known configs; keep unknown names as Kafka tools expect.

    Strict rejection of unknown-but-valid names broke Debezium and Connect on other
    Kafka-compatible brokers, so an unknown name is stored, not refused.
    """
    clean: dict[str, str] = {}
    for name, raw in overrides.items():
        if raw is None:
            raise InvalidConfig(f"null value for {name}")
        definition = TOPIC_CONFIGS.get(name)
        if definition is not None:
            try:
                definition.parse(raw)
            except InvalidConfig as exc:
                raise InvalidConfig(f"Invalid value {raw} for configuration {name}: {exc}") from exc
        clean[name] = raw
    return clean


def typed_topic_value(
    name: str, overrides: Mapping[str, str], broker_props: Mapping[str, str]
) -> object:
    resolved = resolve_topic_config(name, overrides, broker_props)
    definition = TOPIC_CONFIGS[name]
    return definition.parse(resolved.value if resolved.value is not None else "")

"""Group configs: the GROUP config resource (DescribeConfigs resource type 32), Kafka 4.4's
GroupConfig.

A group's configs override, for that group alone, the broker-wide `group.consumer.*`,
`group.share.*` and `group.streams.*` settings: a consumer group's session timeout and
heartbeat interval, a share group's record lock duration, delivery count limit and
where a share-partition starts. They exist independently of the group (Kafka keeps them
as ConfigRecords of the GROUP resource; Strom in the metadata store beside the topic
configs), so they can be set before the group's first member arrives.

The rules are Kafka's, in Kafka's order, with its messages (every refusal is
INVALID_CONFIG): unknown names first ("Unknown group config name: x"), duplicate rack
tags, then each value parsed by its definition ("Invalid value x for configuration n:
Not a number of type INT", "... Value must be at least 2"), then the bounds the broker
sets (`group.consumer.min.session.timeout.ms` .. `max`, "n must be in the range a to b
inclusive."), and last a session timeout that is not above the heartbeat interval.

Four configs of Kafka's are internal (accepted, never described): the assignor offload
switches and three streams tuning knobs.

`GroupConfigs.for_group(group_id)` is the read seam for the coordinators: the resolved
values of one group (its overrides, else the broker's), typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from strom.config.defs import ConfigDef, ConfigSource, ConfigType, InvalidConfig

T = ConfigType
GROUP_RESOURCE = 32

# The broker-level settings group configs fall back to or are bounded by, with Kafka 4.4's
# defaults; read from the broker's properties when it has them.
BROKER_DEFAULTS: dict[str, str] = {
    "group.consumer.session.timeout.ms": "45000",
    "group.consumer.min.session.timeout.ms": "45000",
    "group.consumer.max.session.timeout.ms": "60000",
    "group.consumer.heartbeat.interval.ms": "5000",
    "group.consumer.min.heartbeat.interval.ms": "5000",
    "group.consumer.max.heartbeat.interval.ms": "15000",
    "group.consumer.assignment.interval.ms": "1000",
    "group.consumer.min.assignment.interval.ms": "0",
    "group.consumer.max.assignment.interval.ms": "15000",
    "group.share.session.timeout.ms": "45000",
    "group.share.min.session.timeout.ms": "45000",
    "group.share.max.session.timeout.ms": "60000",
    "group.share.heartbeat.interval.ms": "5000",
    "group.share.min.heartbeat.interval.ms": "5000",
    "group.share.max.heartbeat.interval.ms": "15000",
    "group.share.record.lock.duration.ms": "30000",
    "group.share.min.record.lock.duration.ms": "15000",
    "group.share.max.record.lock.duration.ms": "60000",
    "group.share.delivery.count.limit": "5",
    "group.share.min.delivery.count.limit": "2",
    "group.share.max.delivery.count.limit": "10",
    "group.share.partition.max.record.locks": "2000",
    "group.share.min.partition.max.record.locks": "100",
    "group.share.max.partition.max.record.locks": "4000",
    "group.share.assignment.interval.ms": "1000",
    "group.share.min.assignment.interval.ms": "0",
    "group.share.max.assignment.interval.ms": "15000",
    "group.streams.session.timeout.ms": "45000",
    "group.streams.min.session.timeout.ms": "45000",
    "group.streams.max.session.timeout.ms": "60000",
    "group.streams.heartbeat.interval.ms": "5000",
    "group.streams.min.heartbeat.interval.ms": "5000",
    "group.streams.max.heartbeat.interval.ms": "15000",
    "group.streams.assignment.interval.ms": "1000",
    "group.streams.min.assignment.interval.ms": "0",
    "group.streams.max.assignment.interval.ms": "15000",
    "group.streams.num.standby.replicas": "0",
    "group.streams.max.standby.replicas": "2",
    "group.streams.initial.rebalance.delay.ms": "3000",
    "group.streams.rack.aware.assignment.tags": "",
    "group.streams.assignors": "sticky",
}

_DURATION = re.compile(r"[-+]?P(?:[-+]?\d+D)?(?:T(?:[-+]?\d+H)?(?:[-+]?\d+M)?"
                       r"(?:[-+]?\d+(?:[.,]\d{0,9})?S)?)?", re.IGNORECASE)


def _offset_reset(value: object) -> None:
    """earliest, latest or by_duration:<ISO-8601 duration>, as Kafka's share groups."""
    text = str(value)
    lowered = text.lower()
    if lowered in ("earliest", "latest"):
        return
    if lowered.startswith("by_duration:"):
        duration = text[len("by_duration:"):].strip()
        if (_DURATION.fullmatch(duration) and not duration.upper().endswith(("P", "T"))
                and not duration.startswith("-")):
            return
    raise InvalidConfig(
        f"Invalid value `{text}` for configuration share.auto.offset.reset. The value must "
        "be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.")


def _dlq_topic(value: object) -> None:
    if str(value).startswith("__"):
        raise _Refusal("errors.deadletterqueue.topic.name: DLQ topic name must not start "
                       "with '__'")


class _Refusal(InvalidConfig):
    """A refusal with Kafka's own whole message (not wrapped as `Invalid value ...`)."""


@dataclass(frozen=True)
class GroupConfigDef:
    """One group config: its definition (type, default, Kafka's `atLeast`), the broker
    property that supplies its default (`synonym`; the name itself when none), the
    broker properties bounding it (`bounds`: min and max; min None: only a maximum), and
    whether Kafka hides it from DescribeConfigs (`internal`)."""

    definition: ConfigDef
    synonym: str | None = None
    bounds: tuple[str | None, str] | None = None
    internal: bool = False

    @property
    def name(self) -> str:
        return self.definition.name


def _int(name: str, default: str, at_least: int, synonym: str | None = None,
         bounds: tuple[str | None, str] | None = None, internal: bool = False,
         kind: ConfigType = T.INT) -> GroupConfigDef:
    return GroupConfigDef(ConfigDef(name, kind, default, min=at_least), synonym, bounds,
                          internal)


def _ranged(name: str, default: str, at_least: int, family: str, stem: str,
            min_stem: str | None = None) -> GroupConfigDef:
    """A config bounded by `group.<family>.min.<stem>` .. `group.<family>.max.<stem>`."""
    low = f"group.{family}.min.{min_stem or stem}"
    return _int(name, default, at_least, f"group.{family}.{stem}",
                (low, f"group.{family}.max.{min_stem or stem}"))


# In Kafka's definition order: values are parsed and checked in this order.
GROUP_CONFIG_DEFS: tuple[GroupConfigDef, ...] = (
    _ranged("consumer.session.timeout.ms", "45000", 1, "consumer", "session.timeout.ms"),
    _ranged("consumer.heartbeat.interval.ms", "5000", 1, "consumer", "heartbeat.interval.ms"),
    _ranged("consumer.assignment.interval.ms", "1000", 0, "consumer", "assignment.interval.ms"),
    GroupConfigDef(ConfigDef("consumer.assignor.offload.enable", T.BOOLEAN, "true"),
                   internal=True),
    _ranged("share.session.timeout.ms", "45000", 1, "share", "session.timeout.ms"),
    _ranged("share.heartbeat.interval.ms", "5000", 1, "share", "heartbeat.interval.ms"),
    _ranged("share.record.lock.duration.ms", "30000", 1000, "share", "record.lock.duration.ms"),
    _ranged("share.delivery.count.limit", "5", 2, "share", "delivery.count.limit"),
    _ranged("share.partition.max.record.locks", "2000", 100, "share",
            "partition.max.record.locks"),
    GroupConfigDef(ConfigDef("share.auto.offset.reset", T.STRING, "latest",
                             extra_check=_offset_reset)),
    GroupConfigDef(ConfigDef("share.isolation.level", T.STRING, "read_uncommitted",
                             choices=("read_committed", "read_uncommitted"))),
    GroupConfigDef(ConfigDef("share.renew.acknowledge.enable", T.BOOLEAN, "true")),
    _ranged("share.assignment.interval.ms", "1000", 0, "share", "assignment.interval.ms"),
    GroupConfigDef(ConfigDef("share.assignor.offload.enable", T.BOOLEAN, "true"),
                   internal=True),
    _ranged("streams.session.timeout.ms", "45000", 1, "streams", "session.timeout.ms"),
    _ranged("streams.heartbeat.interval.ms", "5000", 1, "streams", "heartbeat.interval.ms"),
    _int("streams.num.standby.replicas", "0", 0, "group.streams.num.standby.replicas",
         (None, "group.streams.max.standby.replicas")),
    _int("streams.initial.rebalance.delay.ms", "3000", 0,
         "group.streams.initial.rebalance.delay.ms"),
    _ranged("streams.assignment.interval.ms", "1000", 0, "streams", "assignment.interval.ms"),
    GroupConfigDef(ConfigDef("streams.assignor.offload.enable", T.BOOLEAN, "true"),
                   internal=True),
    _int("streams.task.offset.interval.ms", "60000", 1, internal=True),
    _int("streams.num.warmup.replicas", "2", 0, internal=True),
    GroupConfigDef(ConfigDef("streams.rack.aware.assignment.tags", T.LIST, ""),
                   "group.streams.rack.aware.assignment.tags"),
    _int("streams.acceptable.recovery.lag", "10000", 0, internal=True, kind=T.LONG),
    GroupConfigDef(ConfigDef("streams.assignor.name", T.STRING, None),
                   "group.streams.assignors"),
    GroupConfigDef(ConfigDef("errors.deadletterqueue.topic.name", T.STRING, "",
                             extra_check=_dlq_topic)),
    GroupConfigDef(ConfigDef("errors.deadletterqueue.copy.record.enable", T.BOOLEAN, "false")),
)
_DOCS = {
    "consumer.session.timeout.ms": "How long a consumer group member may stay silent "
                                   "before it is removed from the group.",
    "consumer.heartbeat.interval.ms": "How often the members of a consumer group are told "
                                      "to heartbeat.",
    "consumer.assignment.interval.ms": "The least time between two target assignments of "
                                       "a consumer group.",
    "share.session.timeout.ms": "How long a share group member may stay silent before it "
                                "is removed from the group.",
    "share.heartbeat.interval.ms": "How often the members of a share group are told to "
                                   "heartbeat.",
    "share.record.lock.duration.ms": "How long a share group member holds a record it "
                                     "acquired before the record is offered again.",
    "share.delivery.count.limit": "How many times a record is delivered to a share group "
                                  "before it is archived.",
    "share.partition.max.record.locks": "The most records in flight per share-partition.",
    "share.auto.offset.reset": "Where a share-partition without a start offset begins: "
                               "earliest, latest, or by_duration:<ISO-8601 duration>.",
    "share.isolation.level": "read_committed delivers only committed transactional "
                             "records; read_uncommitted delivers all of them.",
    "share.renew.acknowledge.enable": "Whether members may renew the lock of a record "
                                      "they hold.",
    "share.assignment.interval.ms": "The least time between two target assignments of a "
                                    "share group.",
    "streams.session.timeout.ms": "How long a streams group member may stay silent before "
                                  "it is removed from the group.",
    "streams.heartbeat.interval.ms": "How often the members of a streams group are told to "
                                     "heartbeat.",
    "streams.num.standby.replicas": "Standby replicas per task of a streams group.",
    "streams.initial.rebalance.delay.ms": "How long a new streams group waits for more "
                                          "members before its first assignment.",
    "streams.assignment.interval.ms": "The least time between two target assignments of a "
                                      "streams group.",
    "streams.rack.aware.assignment.tags": "Client tags standby replicas are spread over.",
    "streams.assignor.name": "The task assignor of a streams group, one of the broker's "
                             "group.streams.assignors.",
    "errors.deadletterqueue.topic.name": "Where a share group's rejected records are "
                                         "copied; empty for none.",
    "errors.deadletterqueue.copy.record.enable": "Whether the dead-letter record carries "
                                                 "the original record.",
}
GROUP_CONFIG_DEFS = tuple(
    replace(d, definition=replace(d.definition, doc=_DOCS.get(d.name, ""))) for d in GROUP_CONFIG_DEFS)
GROUP_CONFIGS: dict[str, GroupConfigDef] = {d.name: d for d in GROUP_CONFIG_DEFS}

# The order Kafka 4.4's DescribeConfigs lists a group's configs in (its hash map's).
DESCRIBE_ORDER: tuple[str, ...] = (
    "consumer.session.timeout.ms", "streams.assignor.name", "consumer.assignment.interval.ms",
    "errors.deadletterqueue.copy.record.enable", "share.auto.offset.reset",
    "streams.rack.aware.assignment.tags", "share.renew.acknowledge.enable",
    "streams.initial.rebalance.delay.ms", "share.session.timeout.ms",
    "streams.assignment.interval.ms", "share.heartbeat.interval.ms",
    "streams.heartbeat.interval.ms", "share.delivery.count.limit",
    "errors.deadletterqueue.topic.name", "consumer.heartbeat.interval.ms",
    "share.record.lock.duration.ms", "share.assignment.interval.ms", "share.isolation.level",
    "streams.session.timeout.ms", "share.partition.max.record.locks",
    "streams.num.standby.replicas")

_SESSION_HEARTBEAT = (("consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"),
                      ("share.session.timeout.ms", "share.heartbeat.interval.ms"),
                      ("streams.session.timeout.ms", "streams.heartbeat.interval.ms"))


def broker_value(broker: Mapping[str, str], name: str) -> str | None:
    """A broker-level group setting: the broker's own value, else Kafka's default."""
    value = broker.get(name)
    return value if value is not None else BROKER_DEFAULTS.get(name)


def _broker_int(broker: Mapping[str, str], name: str) -> int:
    return int(str(broker_value(broker, name)).strip())


def _assignor_names(broker: Mapping[str, str]) -> list[str]:
    raw = broker_value(broker, "group.streams.assignors") or ""
    return [n.strip() for n in raw.split(",") if n.strip()]


def validate_group_configs(configs: Mapping[str, str], broker: Mapping[str, str]
                           ) -> dict[str, Any]:
    """Check a group's whole set of overrides as Kafka's controller does; returns the
    parsed values; raises InvalidConfig with Kafka's message."""
    for name in configs:
        if name not in GROUP_CONFIGS:
            raise InvalidConfig(f"Unknown group config name: {name}")
    tags = configs.get("streams.rack.aware.assignment.tags")
    if tags is not None and tags.strip():
        items = re.split(r"\s*,\s*", tags.strip())
        if len(set(items)) != len(items):
            raise InvalidConfig("streams.rack.aware.assignment.tags must not contain "
                                "duplicate tag keys.")
    parsed: dict[str, Any] = {}
    for group_def in GROUP_CONFIG_DEFS:
        raw = configs.get(group_def.name)
        if raw is None:
            continue
        try:
            parsed[group_def.name] = group_def.definition.parse(raw)
        except _Refusal:
            raise
        except InvalidConfig as exc:
            raise group_def.definition.invalid(raw, exc) from exc
    _check_bounds(parsed, broker)
    return parsed


def _check_bounds(parsed: Mapping[str, Any], broker: Mapping[str, str]) -> None:
    for group_def in GROUP_CONFIG_DEFS:
        value = parsed.get(group_def.name)
        if value is None or group_def.bounds is None:
            continue
        low_name, high_name = group_def.bounds
        high = _broker_int(broker, high_name)
        if low_name is None:
            if value > high:
                raise InvalidConfig(f"{group_def.name} must be less than or equal to {high}")
            continue
        low = _broker_int(broker, low_name)
        if not low <= value <= high:
            raise InvalidConfig(f"{group_def.name} must be in the range {low} to {high} "
                                "inclusive.")
    name = parsed.get("streams.assignor.name")
    if name is not None and name not in _assignor_names(broker):
        registered = ", ".join(_assignor_names(broker))
        raise InvalidConfig(f"streams.assignor.name '{name}' is not a registered task "
                            f"assignor. Registered assignors are: [{registered}].")
    for session, heartbeat in _SESSION_HEARTBEAT:
        if session not in parsed and heartbeat not in parsed:
            continue
        session_ms = parsed.get(session, _broker_int(broker, f"group.{session}"))
        heartbeat_ms = parsed.get(heartbeat, _broker_int(broker, f"group.{heartbeat}"))
        if session_ms <= heartbeat_ms:
            raise InvalidConfig(f"{session} must be greater than {heartbeat}")


# --- DescribeConfigs ---------------------------------------------------------------------

Synonym = tuple[str, str | None, ConfigSource]


@dataclass(frozen=True)
class DescribedGroupConfig:
    """One entry of DescribeConfigs for a group, with its synonym chain."""

    name: str
    value: str | None
    source: ConfigSource
    synonyms: tuple[Synonym, ...]
    definition: ConfigDef


def _default_chain(group_def: GroupConfigDef, broker: Mapping[str, str]) -> list[Synonym]:
    """Where the value comes from without an override: the broker's synonym at each
    level it is set (Kafka's sources), else the default."""
    if group_def.synonym is None:
        return [(group_def.name, group_def.definition.default, ConfigSource.DEFAULT_CONFIG)]
    layers = getattr(broker, "layers", None)
    chain: list[Synonym] = []
    if layers is not None:
        chain = [s for s in layers.chain((group_def.synonym,))
                 if s[2] != ConfigSource.DEFAULT_CONFIG]
    elif group_def.synonym in broker:
        chain = [(group_def.synonym, broker[group_def.synonym],
                  ConfigSource.STATIC_BROKER_CONFIG)]
    default = BROKER_DEFAULTS.get(group_def.synonym)
    if group_def.name == "streams.assignor.name":
        default = next(iter(_assignor_names(broker)), None)
    return [*chain, (group_def.synonym, default, ConfigSource.DEFAULT_CONFIG)]


def describe_group_configs(overrides: Mapping[str, str], broker: Mapping[str, str]
                           ) -> list[DescribedGroupConfig]:
    """Every described group config of one group: its override (DYNAMIC_GROUP_CONFIG),
    else the broker's value, in Kafka's order."""
    entries = []
    for name in DESCRIBE_ORDER:
        group_def = GROUP_CONFIGS[name]
        chain = _default_chain(group_def, broker)
        if name in overrides:
            chain.insert(0, (name, overrides[name].strip(), ConfigSource.DYNAMIC_GROUP_CONFIG))
        head = chain[0]
        entries.append(DescribedGroupConfig(name, head[1], head[2], tuple(chain),
                                            group_def.definition))
    return entries


# --- the read seam -----------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedGroupConfig:
    """The effective group configs of one group (overrides, else the broker's values)."""

    consumer_session_timeout_ms: int
    consumer_heartbeat_interval_ms: int
    share_session_timeout_ms: int
    share_heartbeat_interval_ms: int
    share_record_lock_duration_ms: int
    share_delivery_count_limit: int
    share_partition_max_record_locks: int
    share_auto_offset_reset: str
    share_isolation_level: str
    values: Mapping[str, str]
    """Every described config by name, as strings (what DescribeConfigs reports)."""


class GroupConfigs:
    """Resolves a group's configs from the metadata store's overrides and the broker's
    properties, both read at call time so changes apply to live groups at once (a result
    is reused while neither the group's overrides nor the broker's properties changed:
    every heartbeat asks)."""

    def __init__(self, overrides: Callable[[str], Mapping[str, str]],
                 broker: Callable[[], Mapping[str, str]]) -> None:
        self._overrides = overrides
        self._broker = broker
        self._cache: dict[str, tuple[Mapping[str, str], Mapping[str, str],
                                     ResolvedGroupConfig]] = {}

    def for_group(self, group_id: str) -> ResolvedGroupConfig:
        overrides, broker = self._overrides(group_id), self._broker()
        cached = self._cache.get(group_id)
        if (cached is not None and cached[1] is broker
                and (cached[0] is overrides or not (cached[0] or overrides))):
            return cached[2]  # the same overrides (or none, in a fresh empty dict each time)
        resolved = resolve(overrides, broker)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[group_id] = (overrides, broker, resolved)
        return resolved


def _effective_int(name: str, raw: str, broker: Mapping[str, str]) -> int:
    """An int group config as the coordinator uses it: a stored value outside the
    broker's current bounds (the bounds changed after it was set) is capped, as Kafka
    caps it."""
    value = int(raw.strip())
    bounds = GROUP_CONFIGS[name].bounds
    if bounds is None:
        return value
    low, high = bounds
    value = min(value, _broker_int(broker, high))
    return value if low is None else max(value, _broker_int(broker, low))


def resolve(overrides: Mapping[str, str], broker: Mapping[str, str]) -> ResolvedGroupConfig:
    """One group's effective configs."""
    values = {e.name: e.value or "" for e in describe_group_configs(overrides, broker)}

    def num(name: str) -> int:
        return _effective_int(name, values[name], broker)

    return ResolvedGroupConfig(
        num("consumer.session.timeout.ms"), num("consumer.heartbeat.interval.ms"),
        num("share.session.timeout.ms"), num("share.heartbeat.interval.ms"),
        num("share.record.lock.duration.ms"), num("share.delivery.count.limit"),
        num("share.partition.max.record.locks"), values["share.auto.offset.reset"],
        values["share.isolation.level"], values)

"""Dynamic broker configs (Kafka's KIP-226): what DescribeConfigs reports for a broker
resource, and which changes AlterConfigs and IncrementalAlterConfigs accept.

A BROKER resource named "<id>" is that broker's own dynamic configs; the name "" is the
cluster-wide default every broker falls back to. Describing "<id>" lists every config
with its effective value, its source (the highest level that sets it) and its synonyms
level by level; describing "" lists only the dynamic defaults. Changes are refused as
Kafka 4.4 refuses them: a name that cannot change without a restart, a value that does
not parse, or a log cleaner thread count outside half to double of the running one,
all as INVALID_REQUEST with Kafka's messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from strom.config.broker import DEFAULTS, BrokerConfig, broker_def, is_dynamic, is_known
from strom.config.defs import ConfigDef, ConfigSource, ConfigType, InvalidConfig
from strom.config.topic import Synonym, drop_before, synonym_group


@dataclass(frozen=True)
class BrokerEntry:
    """One row of a broker resource's DescribeConfigs answer."""

    name: str
    value: str | None
    source: ConfigSource
    synonyms: tuple[Synonym, ...]
    definition: ConfigDef | None
    read_only: bool
    sensitive: bool


def describe_broker(config: BrokerConfig, per_broker: bool) -> list[BrokerEntry]:
    """The broker resource "<id>" (`per_broker`, every config) or "" (the dynamic
    defaults only), as Kafka's ConfigHelper answers it."""
    layers = config.layers
    if per_broker:
        names = (set(DEFAULTS) | set(_defined_without_default()) | set(layers.static)
                 | set(layers.dynamic_default) | set(layers.dynamic_broker))
        values: Mapping[str, str] = config.props
    else:
        names = set(layers.dynamic_default)
        values = layers.dynamic_default
    return [_entry(config, name, values.get(name, _default(name)), per_broker)
            for name in sorted(names)]


def _defined_without_default() -> Iterable[str]:
    from strom.config.broker import BROKER_CONFIGS
    from strom.config.topic import BROKER_SYNONYMS

    return [n for n, d in {**BROKER_SYNONYMS, **BROKER_CONFIGS}.items() if d.default is None]


def _default(name: str) -> str | None:
    definition = broker_def(name)
    return definition.default if definition is not None else None


def _entry(config: BrokerConfig, name: str, value: str | None,
           per_broker: bool) -> BrokerEntry:
    definition = broker_def(name)
    # a config of no known type may be a secret: Kafka shows no value for it
    sensitive = definition is None or definition.sensitive or (
        definition.type is ConfigType.PASSWORD)
    chain = drop_before(config.layers.chain(synonym_group(name)), name)
    if not per_broker:
        chain = [s for s in chain if s[2] == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG]
    if sensitive:
        chain = [(n, None, source) for n, _, source in chain]
    source = chain[0][2] if chain else ConfigSource.DEFAULT_CONFIG
    return BrokerEntry(name, None if sensitive else value, source, tuple(chain), definition,
                       not is_dynamic(name), sensitive)


class DynamicConfigRefused(InvalidConfig):
    """A dynamic broker config change Kafka answers with INVALID_REQUEST."""


def validate_update(config: BrokerConfig, resulting: Mapping[str, str],
                    per_broker: bool) -> None:
    """Check the whole dynamic config a resource would have after the change (Kafka
    validates the resulting set, not the delta); raise DynamicConfigRefused."""
    fixed = [name for name in resulting if is_known(name) and not is_dynamic(name)]
    if fixed:
        raise DynamicConfigRefused(
            f"Cannot update these configs dynamically: {java_set(fixed)}")
    for name, raw in resulting.items():
        definition = broker_def(name)
        if definition is None:
            continue
        try:
            definition.parse(raw)
        except InvalidConfig as exc:
            raise DynamicConfigRefused(str(definition.invalid(raw, exc))) from exc
    _check_cleaner_threads(config, resulting, per_broker)
    _check_thread_pools(config, resulting)


def _check_cleaner_threads(config: BrokerConfig, resulting: Mapping[str, str],
                           per_broker: bool) -> None:
    """Kafka's LogCleaner.validateReconfiguration: at least 1, and between half and
    double the running count."""
    name = "log.cleaner.threads"
    if name not in resulting:
        return
    wanted, current = int(resulting[name]), config.get_int(name)
    if not per_broker and name in config.dynamic_broker:
        return  # this broker's own value hides the default; Kafka checks the effective one
    reason = None
    if wanted < 1:
        reason = "Log cleaner threads should be at least 1"
    elif wanted < current // 2:
        reason = f"Log cleaner threads cannot be reduced to less than half the current value {current}"
    elif wanted > current * 2:
        reason = f"Log cleaner threads cannot be increased to more than double the current value {current}"
    if reason is not None:
        raise DynamicConfigRefused(
            f"Invalid value org.apache.kafka.common.config.ConfigException: {reason} "
            "for configuration Invalid dynamic configuration")


# Kafka's dynamic thread pools and their defaults. Strom has no such pools (it keeps the
# values for tools that read them back) but refuses the changes Kafka refuses.
THREAD_POOLS = {"num.io.threads": 8, "num.network.threads": 3, "num.replica.fetchers": 1,
                "num.recovery.threads.per.data.dir": 2, "background.threads": 10}


def _check_thread_pools(config: BrokerConfig, resulting: Mapping[str, str]) -> None:
    """Kafka's DynamicThreadPool rule: at least 1, within half to double of the current."""
    for name, default in THREAD_POOLS.items():
        if name not in resulting:
            continue
        try:
            wanted = int(resulting[name])
        except ValueError:
            raise DynamicConfigRefused(f"Invalid value {resulting[name]} for configuration "
                                       f"{name}: Not a number of type INT") from None
        current = int(config.raw(name) or default)
        if wanted == current:
            continue
        prefix = f"Dynamic thread count update validation failed for {name}={wanted}"
        reason = None
        if wanted <= 0:
            reason = f"{prefix}, value should be at least 1"
        elif wanted < current // 2:
            reason = f"{prefix}, value should be at least half the current value {current}"
        elif wanted > current * 2:
            reason = f"{prefix}, value should not be greater than double the current value {current}"
        if reason is not None:
            raise DynamicConfigRefused(
                f"Invalid value org.apache.kafka.common.config.ConfigException: {reason} "
                "for configuration Invalid dynamic configuration")


def java_set(names: Iterable[str]) -> str:
    """How Kafka prints a set of names in its messages: `[a, b]` in java.util.HashSet's
    iteration order (by bucket of String.hashCode, growing at 3/4 load), so a message
    naming several configs reads exactly as Kafka's."""
    unique = list(dict.fromkeys(names))
    capacity = 16
    while len(unique) > capacity * 3 // 4:
        capacity *= 2

    def bucket(name: str) -> int:
        data, h = name.encode("utf-16-be"), 0
        for i in range(0, len(data), 2):  # String.hashCode runs over UTF-16 code units
            h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)

    return "[" + ", ".join(sorted(unique, key=bucket)) + "]"

"""The `transforms` / `predicates` configuration of a connector, parsed as Kafka does,
and the chain that applies it.

    transforms=route,mask
    transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter
    transforms.route.regex=(.*)
    transforms.route.replacement=copy-$1
    transforms.route.predicate=isOrders
    transforms.route.negate=false
    predicates=isOrders
    predicates.isOrders.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches
    predicates.isOrders.pattern=orders.*

Each alias's own properties reach its transform with the `transforms.<alias>.` prefix
stripped. `enrich` adds the definitions Kafka's ConnectorConfig.enrich adds (`type`,
`predicate`, `negate`, and the transform's own keys, in the group `Transforms: <alias>`),
so validate reports them like Kafka does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.connect.api.config import ConfigDef, ConfigKey, ConfigType, Importance, Width, parse_value
from strom.connect.api.errors import ConfigError
from strom.connect.api.records import ConnectRecord
from strom.connect.transforms.base import Predicate, Transformation

if TYPE_CHECKING:
    from strom.connect.plugins import Plugins

TRANSFORMS = "transforms"
PREDICATES = "predicates"


@dataclass
class Stage:
    """One transform with its optional predicate."""

    alias: str
    transform: Transformation
    predicate: Predicate | None = None
    negate: bool = False

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        if self.predicate is not None and self.predicate.test(record) == self.negate:
            return record
        return self.transform.apply(record)


class TransformationChain:
    """The stages in order; a stage returning None drops the record."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages

    def apply(self, record: ConnectRecord) -> ConnectRecord | None:
        current: ConnectRecord | None = record
        for stage in self.stages:
            if current is None:
                return None
            current = stage.apply(current)
        return current

    def close(self) -> None:
        for stage in self.stages:
            stage.transform.close()
            if stage.predicate is not None:
                stage.predicate.close()


def aliases(config: Mapping[str, Any], key: str) -> list[str]:
    """The alias list of `transforms` or `predicates`; duplicates refused as Kafka does."""
    raw = config.get(key)
    names = [a for a in parse_value(key, raw, ConfigType.LIST) or [] if a] if raw else []
    if len(set(names)) != len(names):
        raise ConfigError(key, raw, "Duplicate alias provided.")
    return names


def _own(config: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}


def _type_name(config: Mapping[str, Any], prefix: str) -> str:
    name = config.get(prefix + "type")
    if not name:
        raise ConfigError(f'Missing required configuration "{prefix}type" which has no default value.')
    return str(name)


def build_predicates(config: Mapping[str, Any], plugins: Plugins) -> dict[str, Predicate]:
    built: dict[str, Predicate] = {}
    for alias in aliases(config, PREDICATES):
        prefix = f"{PREDICATES}.{alias}."
        predicate = plugins.new(_type_name(config, prefix), Predicate, prefix + "type")
        predicate.configure(_own(config, prefix))
        built[alias] = predicate
    return built


def build_chain(config: Mapping[str, Any], plugins: Plugins) -> TransformationChain:
    """Configured transforms and predicates; ConfigError for the first problem."""
    predicates = build_predicates(config, plugins)
    stages: list[Stage] = []
    for alias in aliases(config, TRANSFORMS):
        prefix = f"{TRANSFORMS}.{alias}."
        transform = plugins.new(_type_name(config, prefix), Transformation, prefix + "type")
        own = _own(config, prefix)
        predicate_alias = own.pop("predicate", None)
        negate = parse_value(prefix + "negate", own.pop("negate", "false"), ConfigType.BOOLEAN)
        own.pop("type", None)
        transform.configure(own)
        predicate = None
        if predicate_alias:
            predicate = predicates.get(predicate_alias)
            if predicate is None:
                raise ConfigError(prefix + "predicate", predicate_alias,
                                  f"Predicate {predicate_alias} not found in {PREDICATES}")
        stages.append(Stage(alias, transform, predicate, bool(negate)))
    return TransformationChain(stages)


def enrich(definition: ConfigDef, config: Mapping[str, Any], plugins: Plugins) -> ConfigDef:
    """`definition` plus each transform's and predicate's keys (Kafka's ConnectorConfig.enrich);
    aliases whose class cannot be found add only their `type` key, which then fails."""
    enriched = ConfigDef(definition.keys.values())
    for key, group_label, base in ((TRANSFORMS, "Transforms", Transformation),
                                   (PREDICATES, "Predicates", Predicate)):
        try:
            names = aliases(config, key)
        except ConfigError:
            continue
        for alias in names:
            _enrich_alias(enriched, config, plugins, f"{key}.{alias}.", f"{group_label}: {alias}", base)
    return enriched


def _enrich_alias(enriched: ConfigDef, config: Mapping[str, Any], plugins: Plugins, prefix: str,
                  group: str, base: type) -> None:
    """Kafka's order: `type` (0), `plugin.version` (1), then the rest by name (2, 3, ...)."""
    alias = group.split(": ", 1)[1]
    noun = "Transformation" if base is Transformation else "Predicate"

    def check_class(name: str, value: Any) -> None:
        plugins.find(str(value), base, name)

    enriched.define(prefix + "type", ConfigType.CLASS, importance=Importance.HIGH,
                    documentation=f"Class for the '{alias}' {noun.lower()}.", validator=check_class,
                    group=group, order_in_group=0, width=Width.LONG, display_name=f"{noun} type for {alias}")
    enriched.define(prefix + "plugin.version", ConfigType.STRING, None, Importance.LOW,
                    f"Version of the '{alias}' {noun.lower()} (informational).", group=group,
                    order_in_group=1, width=Width.LONG, display_name=f"{noun} version for {alias}")
    rest: list[ConfigKey] = []
    if base is Transformation:
        rest.append(ConfigKey("predicate", ConfigType.STRING, None, None, Importance.MEDIUM,
                              "The alias of a predicate used to determine whether to apply this "
                              "transformation."))
        rest.append(ConfigKey("negate", ConfigType.BOOLEAN, False, None, Importance.MEDIUM,
                              "Whether the configured predicate should be negated."))
    desc = plugins.describe(str(config.get(prefix + "type", "")))
    if desc is not None and issubclass(desc.cls, base):
        plugin: Transformation | Predicate = desc.cls()  # type: ignore[assignment]  # checked above
        rest.extend(plugin.config().keys.values())
    for order, key in enumerate(sorted(rest, key=lambda k: k.name), start=2):
        enriched.define_key(ConfigKey(prefix + key.name, key.type, key.default, key.validator,
                                      key.importance, key.documentation, group, order, key.width,
                                      key.name))

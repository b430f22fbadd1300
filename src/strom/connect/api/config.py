"""`ConfigDef`: a connector's (or transform's) configuration, declared once and used to
parse, validate and document it, with the JSON shapes of Kafka Connect's validate API.

Kafka's types (BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD),
importance and width keep their names because they appear verbatim in the REST answers
of `/connector-plugins/{plugin}/config/validate`. Values arrive as strings (properties
files, REST JSON) and are parsed by type; error texts are Kafka's, since tools and
people match on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from strom.connect.api.errors import ConfigError


class ConfigType(Enum):
    BOOLEAN = "BOOLEAN"
    STRING = "STRING"
    INT = "INT"
    SHORT = "SHORT"
    LONG = "LONG"
    DOUBLE = "DOUBLE"
    LIST = "LIST"
    CLASS = "CLASS"
    PASSWORD = "PASSWORD"


class Importance(Enum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Width(Enum):
    NONE = "NONE"
    SHORT = "SHORT"
    MEDIUM = "MEDIUM"
    LONG = "LONG"


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT_VALUE"


NO_DEFAULT: Any = _NoDefault()
HIDDEN = "[hidden]"

Validator = Callable[[str, Any], None]

_INT_BOUNDS = {ConfigType.INT: 2**31, ConfigType.SHORT: 2**15, ConfigType.LONG: 2**63}


class Password:
    """A secret value; prints as [hidden] (Kafka's Password type)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return HIDDEN

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Password) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def parse_value(name: str, value: Any, kind: ConfigType) -> Any:
    """A value of `kind` from a string (or an already typed value); ConfigError as Kafka words it."""
    if value is None:
        return None
    if isinstance(value, str) and kind not in (ConfigType.STRING, ConfigType.PASSWORD):
        value = value.strip()
    parser = _PARSERS[kind]
    return parser(name, value, kind)


def _parse_bool(name: str, value: Any, kind: ConfigType) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(name, value, "Expected value to be either true or false")


def _parse_int(name: str, value: Any, kind: ConfigType) -> int:
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value), 10)
    except ValueError:
        raise ConfigError(name, value, f"Not a number of type {kind.value}") from None
    bound = _INT_BOUNDS[kind]
    if not -bound <= number < bound:
        raise ConfigError(name, value, f"Not a number of type {kind.value}")
    return number


def _parse_double(name: str, value: Any, kind: ConfigType) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, value, "Not a number of type DOUBLE") from None


def _parse_list(name: str, value: Any, kind: ConfigType) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if not isinstance(value, str):
        raise ConfigError(name, value, "Expected a comma separated list.")
    return [] if not value else [part.strip() for part in re.split(r"\s*,\s*", value)]


def _parse_string(name: str, value: Any, kind: ConfigType) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, value, "Expected value to be a string, but it was a " + type(value).__name__)
    return value


def _parse_password(name: str, value: Any, kind: ConfigType) -> Password:
    if isinstance(value, Password):
        return value
    return Password(_parse_string(name, value, kind))


_PARSERS: dict[ConfigType, Callable[[str, Any, ConfigType], Any]] = {
    ConfigType.BOOLEAN: _parse_bool, ConfigType.STRING: _parse_string,
    ConfigType.CLASS: _parse_string, ConfigType.INT: _parse_int, ConfigType.SHORT: _parse_int,
    ConfigType.LONG: _parse_int, ConfigType.DOUBLE: _parse_double, ConfigType.LIST: _parse_list,
    ConfigType.PASSWORD: _parse_password,
}


def to_config_string(value: Any, kind: ConfigType) -> str | None:
    """A parsed value back in its string form (Kafka's ConfigDef.convertToString)."""
    if value is None or value is NO_DEFAULT:
        return None
    if kind is ConfigType.PASSWORD:
        return HIDDEN
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


# --- validators ---------------------------------------------------------------------------


def at_least(minimum: float) -> Validator:
    """Kafka's Range.atLeast."""

    def check(name: str, value: Any) -> None:
        if value is not None and value < minimum:
            raise ConfigError(name, value, f"Value must be at least {minimum}")

    return check


def between(minimum: float, maximum: float) -> Validator:
    """Kafka's Range.between."""

    def check(name: str, value: Any) -> None:
        if value is not None and not minimum <= value <= maximum:
            raise ConfigError(name, value, f"Value must be no less than {minimum} "
                                           f"and no more than {maximum}")

    return check


def one_of(*choices: str, case_insensitive: bool = False) -> Validator:
    """Kafka's ValidString.in / CaseInsensitiveValidString.in."""

    def check(name: str, value: Any) -> None:
        if value is None:
            return
        matches = ({c.lower() for c in choices} if case_insensitive else set(choices))
        if (value.lower() if case_insensitive else value) not in matches:
            raise ConfigError(name, value, "String must be one of: " + ", ".join(choices))

    return check


def non_empty_string(name: str, value: Any) -> None:
    if value is not None and not str(value).strip():
        raise ConfigError(name, value, "String may not be empty")


# --- definitions -------------------------------------------------------------------------


@dataclass
class ConfigKey:
    """One definition (Kafka's ConfigDef.ConfigKey)."""

    name: str
    type: ConfigType
    default: Any
    validator: Validator | None
    importance: Importance
    documentation: str
    group: str | None = None
    order_in_group: int = -1
    width: Width = Width.NONE
    display_name: str | None = None
    dependents: list[str] = field(default_factory=list)
    internal: bool = False

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclass
class ConfigValue:
    """A value with its errors, as validate returns it (Kafka's ConfigValue)."""

    name: str
    value: Any = None
    recommended_values: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    visible: bool = True


class ConfigDef:
    """An ordered set of `ConfigKey`s; `parse` for use, `validate` for the REST API."""

    def __init__(self, keys: Iterable[ConfigKey] = ()) -> None:
        self.keys: dict[str, ConfigKey] = {}
        for key in keys:
            self.define_key(key)

    def define(self, name: str, kind: ConfigType, default: Any = NO_DEFAULT,
               importance: Importance = Importance.MEDIUM, documentation: str = "", *,
               validator: Validator | None = None, group: str | None = None,
               order_in_group: int = -1, width: Width = Width.NONE,
               display_name: str | None = None) -> ConfigDef:
        """Declare a key; a default that does not parse or validate raises at once."""
        if default is not NO_DEFAULT and default is not None:
            default = parse_value(name, default, kind)
            if validator is not None:
                validator(name, default)
        return self.define_key(ConfigKey(name, kind, default, validator, importance, documentation,
                                         group, order_in_group, width, display_name or name))

    def define_key(self, key: ConfigKey) -> ConfigDef:
        if key.name in self.keys:
            raise ConfigError(f"Configuration {key.name} is defined twice.")
        self.keys[key.name] = key
        return self

    def merge(self, other: ConfigDef) -> ConfigDef:
        """A new def with this one's keys, then `other`'s that are not already here."""
        merged = ConfigDef(self.keys.values())
        for key in other.keys.values():
            if key.name not in merged.keys:
                merged.define_key(key)
        return merged

    def groups(self) -> list[str]:
        seen: list[str] = []
        for key in self.keys.values():
            if key.group and key.group not in seen:
                seen.append(key.group)
        return seen

    def parse(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Every key's parsed value; the first missing or invalid one raises ConfigError."""
        values: dict[str, Any] = {}
        for key in self.keys.values():
            values[key.name] = self._parse_one(key, props)
        return values

    def _parse_one(self, key: ConfigKey, props: Mapping[str, Any]) -> Any:
        if key.name in props:
            value = parse_value(key.name, props[key.name], key.type)
        elif key.required:
            raise ConfigError(f'Missing required configuration "{key.name}" which has no default value.')
        else:
            value = key.default
        if key.validator is not None:
            key.validator(key.name, value)
        return value

    def validate(self, props: Mapping[str, Any]) -> list[ConfigValue]:
        """One ConfigValue per key, with every error found (nothing raises)."""
        found: list[ConfigValue] = []
        for key in self.keys.values():
            entry = ConfigValue(key.name, props.get(key.name, None))
            try:
                entry.value = self._parse_one(key, props)
            except ConfigError as exc:
                entry.errors.append(str(exc))
            found.append(entry)
        return found


class AbstractConfig:
    """Parsed values of a ConfigDef with typed getters (Kafka's AbstractConfig)."""

    def __init__(self, definition: ConfigDef, originals: Mapping[str, Any]) -> None:
        self.definition = definition
        self.originals = dict(originals)
        self.values = definition.parse(originals)

    def get(self, name: str) -> Any:
        return self.values[name]

    def get_string(self, name: str) -> str:
        return str(self.values[name])

    def get_int(self, name: str) -> int:
        return int(self.values[name])

    def get_bool(self, name: str) -> bool:
        return bool(self.values[name])

    def get_list(self, name: str) -> list[str]:
        return list(self.values[name] or [])

    def originals_with_prefix(self, prefix: str, strip: bool = True) -> dict[str, Any]:
        return {(k[len(prefix):] if strip else k): v for k, v in self.originals.items()
                if k.startswith(prefix)}


# --- the REST shape -------------------------------------------------------------------------


def key_info(key: ConfigKey) -> dict[str, Any]:
    """The `definition` object of validate's answer (Kafka's ConfigKeyInfo)."""
    return {
        "name": key.name,
        "type": key.type.value,
        "required": key.required,
        "default_value": to_config_string(key.default, key.type)
        if key.type is not ConfigType.PASSWORD or key.default in (None, NO_DEFAULT)
        else HIDDEN,
        "importance": key.importance.value,
        "documentation": key.documentation,
        "group": key.group,
        "order_in_group": key.order_in_group,
        "width": key.width.value,
        "display_name": key.display_name or key.name,
        "dependents": list(key.dependents),
    }


def value_info(value: ConfigValue, kind: ConfigType | None) -> dict[str, Any]:
    """The `value` object of validate's answer (Kafka's ConfigValueInfo)."""
    shown = value.value
    if kind is not None:
        shown = to_config_string(shown, kind)
    elif shown is not None:
        shown = str(shown)
    return {"name": value.name, "value": shown,
            "recommended_values": [str(v) for v in value.recommended_values],
            "errors": list(value.errors), "visible": value.visible}


def config_infos(connector_class: str, definition: ConfigDef, values: Iterable[ConfigValue],
                 groups: list[str]) -> dict[str, Any]:
    """validate's whole answer: {name, error_count, groups, configs: [{definition, value}]};
    `error_count` counts error messages, not keys, as Kafka does."""
    configs: list[dict[str, Any]] = []
    errors = 0
    for value in values:
        key = definition.keys.get(value.name)
        errors += len(value.errors)
        configs.append({"definition": key_info(key) if key is not None else None,
                        "value": value_info(value, key.type if key else None)})
    return {"name": connector_class, "error_count": errors, "groups": groups, "configs": configs}

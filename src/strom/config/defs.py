"""Typed config definitions: one table per scope, Kafka's own property names.

Every default lives here, once. Kafka's DescribeConfigs reports a type, a source and
synonyms for each entry, so the definitions carry what that answer needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum


class ConfigType(IntEnum):
    """Values of DescribeConfigs' config_type (v3+)."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """Values of DescribeConfigs' config_source (v1+)."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    DYNAMIC_CLIENT_METRICS_CONFIG = 7
    DYNAMIC_GROUP_CONFIG = 8


class InvalidConfig(ValueError):
    """A refused config value or name; `shown` is the part of the value to name, if any."""

    def __init__(self, message: str, shown: str | None = None) -> None:
        super().__init__(message)
        self.shown = shown


LONG_MAX = 2**63 - 1


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidConfig("Expected value to be either true or false")
    return lowered == "true"


def _parse_int(kind: ConfigType, lo: int, hi: int) -> Callable[[str], int]:
    """Kafka's wording: a value beyond the type's range is not a number of that type; one
    beyond the definition's bounds says which bound."""
    type_lo, type_hi = _RANGES[kind]

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidConfig(f"Not a number of type {kind.name}") from None
        if not type_lo <= value <= type_hi:
            raise InvalidConfig(f"Not a number of type {kind.name}")
        if value < lo:
            raise InvalidConfig(f"Value must be at least {lo}")
        if value > hi:
            raise InvalidConfig(f"Value must be no more than {hi}")
        return value

    return parse


def _parse_float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise InvalidConfig("Not a number of type DOUBLE") from None


_RANGES = {
    ConfigType.INT: (-(2**31), 2**31 - 1),
    ConfigType.SHORT: (-(2**15), 2**15 - 1),
    ConfigType.LONG: (-(2**63), LONG_MAX),
}


@dataclass(frozen=True)
class ConfigDef:
    name: str
    type: ConfigType
    default: str | None
    doc: str = ""
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()  # broker properties that supply the default, in order
    read_only: bool = False
    sensitive: bool = False
    extra_check: Callable[[object], None] | None = field(default=None, compare=False)

    def parse(self, raw: str) -> object:
        """Validate a string value the way Kafka's ConfigDef would; raise InvalidConfig
        with Kafka's reason (the caller names the value and the config)."""
        value: object
        if self.type is ConfigType.BOOLEAN:
            value = _parse_bool(raw)
        elif self.type in _RANGES:
            lo, hi = _RANGES[self.type]
            value = _parse_int(self.type, lo if self.min is None else self.min,
                               hi if self.max is None else self.max)(raw)
        elif self.type is ConfigType.DOUBLE:
            value = _parse_float(raw)
            if self.min is not None and value < self.min:
                raise InvalidConfig(f"Value must be at least {self.min}")
            if self.max is not None and value > self.max:
                raise InvalidConfig(f"Value must be no more than {self.max}")
        elif self.type is ConfigType.LIST:
            value = [item.strip() for item in raw.split(",") if item.strip()]
            self._check_choices(value)
        else:
            value = raw
            self._check_choices([raw])
        if self.extra_check is not None:
            self.extra_check(value)
        return value

    def _check_choices(self, values: list[str]) -> None:
        bad = [v for v in values if self.choices and v not in self.choices]
        if bad:
            raise InvalidConfig(f"String must be one of: {', '.join(self.choices)}",
                                shown=bad[0])

    def invalid(self, raw: str, exc: InvalidConfig) -> InvalidConfig:
        """Kafka's message for a refused value: `Invalid value V for configuration N: why`
        (V is the offending list item when there is one, else the trimmed value)."""
        shown = exc.shown if exc.shown is not None else raw.strip()
        return InvalidConfig(f"Invalid value {shown} for configuration {self.name}: {exc}")

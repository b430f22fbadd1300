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


class InvalidConfig(ValueError):
    pass


LONG_MAX = 2**63 - 1


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidConfig(f"expected true or false, got {raw!r}")
    return lowered == "true"


def _parse_int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidConfig(f"expected an integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise InvalidConfig(f"{value} is outside [{lo}, {hi}]")
        return value

    return parse


def _parse_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InvalidConfig(f"expected a number, got {raw!r}") from None


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
    choices: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()  # broker properties that supply the default, in order
    read_only: bool = False
    sensitive: bool = False
    extra_check: Callable[[object], None] | None = field(default=None, compare=False)

    def parse(self, raw: str) -> object:
        """Validate a string value the way Kafka's ConfigDef would; raise InvalidConfig."""
        value: object
        if self.type is ConfigType.BOOLEAN:
            value = _parse_bool(raw)
        elif self.type in _RANGES:
            lo, hi = _RANGES[self.type]
            value = _parse_int(self.min if self.min is not None else lo, hi)(raw)
        elif self.type is ConfigType.DOUBLE:
            value = _parse_float(raw)
        elif self.type is ConfigType.LIST:
            value = [item.strip() for item in raw.split(",") if item.strip()]
            bad = [v for v in value if self.choices and v not in self.choices]
            if bad:
                raise InvalidConfig(f"{bad} not in {list(self.choices)}")
        else:
            value = raw
            if self.choices and raw not in self.choices:
                raise InvalidConfig(f"{raw!r} not in {list(self.choices)}")
        if self.extra_check is not None:
            self.extra_check(value)
        return value

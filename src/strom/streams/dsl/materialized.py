"""`Materialized`, `Grouped`, `Produced`, `Consumed`: how DSL operations name and type things.

Python keywords stand in for most of Kafka's config objects (`key_serde=`, `value_serde=`);
these small classes remain where an operation takes several related options at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.streams.serdes import Serde


@dataclass(frozen=True)
class Materialized:
    """A store behind a table or aggregation: its name (which names its changelog and
    repartition topics), serdes, engine, logging and retention."""

    name: str | None = None
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    persistent: bool = True
    logging: bool = True
    changelog_config: Mapping[str, str] = field(default_factory=dict)
    retention_ms: int | None = None
    versioned_history_ms: int | None = None  # a versioned store (KIP-889) keeping this much

    @classmethod
    def as_(cls, name: str, key_serde: Serde[Any] | None = None,
            value_serde: Serde[Any] | None = None, **options: Any) -> Materialized:
        return cls(name, key_serde, value_serde, **options)

    @classmethod
    def of(cls, value: Materialized | str | None) -> Materialized:
        if isinstance(value, Materialized):
            return value
        return cls(value)


@dataclass(frozen=True)
class Grouped:
    """Names the repartition topic of a grouping (`<name>-repartition`) and its serdes."""

    name: str | None = None
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None

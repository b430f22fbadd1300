"""`Stores`: builders of key-value, window and session stores, and their changelog configs.

    Stores.key_value("counts", Serdes.String, Serdes.Long)             # RocksDB, logged
    Stores.key_value("cache", persistent=False, logging=False)         # memory only
    Stores.window("clicks", retention_ms=..., window_size_ms=60_000)
    Stores.session("visits", retention_ms=...)

Changelog topics are compacted; window and session changelogs are `compact,delete` with
`retention.ms` = store retention + one day, Kafka Streams' defaults
(`windowstore.changelog.additional.retention.ms`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.streams.serdes import Serde
from strom.streams.state.api import StateStore
from strom.streams.state.kv import KeyValueStore
from strom.streams.state.session import SessionStore
from strom.streams.state.window import WindowStore

ADDITIONAL_RETENTION_MS = 24 * 3600 * 1000


@dataclass
class StoreSpec:
    """A `StoreBuilder`: name, logging, changelog configs, and how to make the store."""

    name: str
    make: Callable[[StoreSpec], StateStore]
    key_serde: Serde[Any] | None = None
    value_serde: Serde[Any] | None = None
    persistent: bool = True
    logging_enabled: bool = True
    base_changelog_config: Mapping[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def changelog_config(self) -> Mapping[str, str]:
        return self.base_changelog_config

    def build(self) -> StateStore:
        return self.make(self)

    def with_logging_disabled(self) -> StoreSpec:
        self.logging_enabled = False
        return self


def _kv(spec: StoreSpec) -> StateStore:
    return KeyValueStore(spec.name, spec.key_serde, spec.value_serde,
                         persistent=spec.persistent, logging=spec.logging_enabled)


def _window(spec: StoreSpec) -> StateStore:
    return WindowStore(spec.name, spec.key_serde, spec.value_serde, persistent=spec.persistent,
                       logging=spec.logging_enabled, **spec.options)


def _session(spec: StoreSpec) -> StateStore:
    return SessionStore(spec.name, spec.key_serde, spec.value_serde, persistent=spec.persistent,
                        logging=spec.logging_enabled, **spec.options)


def _versioned(spec: StoreSpec) -> StateStore:
    from strom.streams.state.versioned import VersionedKeyValueStore

    return VersionedKeyValueStore(spec.name, spec.key_serde, spec.value_serde,
                                  persistent=spec.persistent, logging=spec.logging_enabled,
                                  **spec.options)


def _windowed_config(retention_ms: int, extra: Mapping[str, str] | None) -> dict[str, str]:
    return {"cleanup.policy": "compact,delete",
            "retention.ms": str(retention_ms + ADDITIONAL_RETENTION_MS), **(extra or {})}


class Stores:
    @staticmethod
    def key_value(name: str, key_serde: Serde[Any] | None = None,
                  value_serde: Serde[Any] | None = None, *, persistent: bool = True,
                  logging: bool = True, changelog_config: Mapping[str, str] | None = None
                  ) -> StoreSpec:
        return StoreSpec(name, _kv, key_serde, value_serde, persistent, logging,
                         {"cleanup.policy": "compact", **(changelog_config or {})})

    @staticmethod
    def versioned(name: str, key_serde: Serde[Any] | None = None,
                  value_serde: Serde[Any] | None = None, *, history_retention_ms: int,
                  persistent: bool = True, logging: bool = True,
                  changelog_config: Mapping[str, str] | None = None) -> StoreSpec:
        """A versioned key-value store (KIP-889); its changelog keeps the history too
        (`min.compaction.lag.ms` = history retention + 1 day, as Kafka sets it)."""
        config = {"cleanup.policy": "compact",
                  "min.compaction.lag.ms": str(history_retention_ms + ADDITIONAL_RETENTION_MS),
                  **(changelog_config or {})}
        return StoreSpec(name, _versioned, key_serde, value_serde, persistent, logging, config,
                         {"history_retention_ms": history_retention_ms})

    @staticmethod
    def window(name: str, key_serde: Serde[Any] | None = None,
               value_serde: Serde[Any] | None = None, *, retention_ms: int, window_size_ms: int,
               retain_duplicates: bool = False, persistent: bool = True, logging: bool = True,
               changelog_config: Mapping[str, str] | None = None) -> StoreSpec:
        options = {"retention_ms": retention_ms, "window_size_ms": window_size_ms,
                   "retain_duplicates": retain_duplicates}
        return StoreSpec(name, _window, key_serde, value_serde, persistent, logging,
                         _windowed_config(retention_ms, changelog_config), options)

    @staticmethod
    def session(name: str, key_serde: Serde[Any] | None = None,
                value_serde: Serde[Any] | None = None, *, retention_ms: int,
                persistent: bool = True, logging: bool = True,
                changelog_config: Mapping[str, str] | None = None) -> StoreSpec:
        return StoreSpec(name, _session, key_serde, value_serde, persistent, logging,
                         _windowed_config(retention_ms, changelog_config),
                         {"retention_ms": retention_ms})

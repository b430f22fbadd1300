"""PostgreSQL connectors: `PostgresSinkConnector` (records into tables, upsert by key)
and `PostgresCdcSourceConnector` (table changes by logical decoding, Debezium-shaped).

This module holds the plugins and their configs; the tasks are in `postgres_sink` and
`postgres_cdc` (the pgoutput decoder in `pgoutput`). Named in a config by this module's
dotted path, the simple class name, or `PostgresSink` / `PostgresCdcSource`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance, at_least, one_of
from strom.connect.api.connector import SinkConnector
from strom.connect.api.errors import ConfigError
from strom.connect.connectors.postgres_common import define_connection
from strom.connect.connectors.postgres_sink import PostgresSinkTask
from strom.connect.version import VERSION

SINK_CONFIG = (
    define_connection(ConfigDef())
    .define("table.name.format", ConfigType.STRING, "${topic}", Importance.MEDIUM,
            "Table of a record; ${topic} is replaced by its topic. A dot in the format "
            "separates the schema.")
    .define("insert.mode", ConfigType.STRING, "insert", Importance.HIGH,
            "insert, upsert (INSERT ... ON CONFLICT DO UPDATE) or update.",
            validator=one_of("insert", "upsert", "update"))
    .define("pk.mode", ConfigType.STRING, "none", Importance.HIGH,
            "Where the primary key comes from: none, kafka, record_key, record_value.",
            validator=one_of("none", "kafka", "record_key", "record_value"))
    .define("pk.fields", ConfigType.LIST, "", Importance.MEDIUM,
            "Key column names: the three kafka coordinates, the column of a primitive key, "
            "or the key/value fields that form the key (all if empty).")
    .define("fields.whitelist", ConfigType.LIST, "", Importance.MEDIUM,
            "Value fields written (all if empty); key columns are always written.")
    .define("auto.create", ConfigType.BOOLEAN, False, Importance.MEDIUM,
            "Create a missing table from the record's schema.")
    .define("auto.evolve", ConfigType.BOOLEAN, False, Importance.MEDIUM,
            "Add missing columns (nullable) to a table.")
    .define("delete.enabled", ConfigType.BOOLEAN, False, Importance.MEDIUM,
            "A tombstone deletes its key's row (needs pk.mode=record_key).")
    .define("batch.size", ConfigType.INT, 3000, Importance.MEDIUM,
            "Most rows in one executemany.", validator=at_least(1))
)


def check_sink(parsed: Mapping[str, Any]) -> None:
    """The rules between keys that ConfigDef cannot say (Confluent's JDBC sink's)."""
    if parsed["delete.enabled"] and parsed["pk.mode"] != "record_key":
        raise ConfigError("delete.enabled", True, "Deletes are only supported for pk.mode record_key")
    if parsed["insert.mode"] in ("upsert", "update") and parsed["pk.mode"] == "none":
        raise ConfigError("pk.mode", "none", f"insert.mode {parsed['insert.mode']} needs a primary key")
    if parsed["pk.mode"] == "kafka" and parsed["pk.fields"] and len(parsed["pk.fields"]) != 3:
        raise ConfigError("pk.fields", ",".join(parsed["pk.fields"]),
                          "pk.mode kafka takes three names (topic, partition, offset) or none")
    if not (parsed["connection.url"] or parsed["connection.host"]):
        raise ConfigError("connection.url", "", "Set connection.url or connection.host")


class PostgresSinkConnector(SinkConnector):
    """Writes records into PostgreSQL tables (insert, upsert, update, delete)."""

    def version(self) -> str:
        return VERSION

    def config(self) -> ConfigDef:
        return SINK_CONFIG

    def start(self, props: Mapping[str, str]) -> None:
        check_sink(SINK_CONFIG.parse(props))
        self.props = dict(props)

    def task_class(self) -> type[PostgresSinkTask]:
        return PostgresSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.props) for _ in range(max_tasks)]

    def stop(self) -> None:
        """Nothing to release: tasks own their connections."""

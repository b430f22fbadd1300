"""PostgreSQL connectors: `PostgresSinkConnector` (records into tables, upsert by key)
and `PostgresCdcSourceConnector` (table changes by logical decoding, Debezium-shaped).

This module holds the plugins and their configs; the tasks are in `postgres_sink` and
`postgres_cdc` (the pgoutput decoder in `pgoutput`). Named in a config by this module's
dotted path, the simple class name, or `PostgresSink` / `PostgresCdcSource`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strom.connect.api.config import ConfigDef, ConfigType, ConfigValue, Importance, at_least, one_of
from strom.connect.api.connector import SinkConnector, SourceConnector
from strom.connect.api.errors import ConfigError
from strom.connect.connectors.postgres_cdc import PostgresCdcSourceTask
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


def check_connection(parsed: Mapping[str, Any]) -> None:
    if not (parsed["connection.url"] or parsed["connection.host"]):
        raise ConfigError("connection.url", "", "Set connection.url or connection.host")


def check_sink(parsed: Mapping[str, Any]) -> None:
    """The rules between keys that ConfigDef cannot say (Confluent's JDBC sink's)."""
    if parsed["delete.enabled"] and parsed["pk.mode"] != "record_key":
        raise ConfigError("delete.enabled", True, "Deletes are only supported for pk.mode record_key")
    if parsed["insert.mode"] in ("upsert", "update") and parsed["pk.mode"] == "none":
        raise ConfigError("pk.mode", "none", f"insert.mode {parsed['insert.mode']} needs a primary key")
    if parsed["pk.mode"] == "kafka" and parsed["pk.fields"] and len(parsed["pk.fields"]) != 3:
        raise ConfigError("pk.fields", ",".join(parsed["pk.fields"]),
                          "pk.mode kafka takes three names (topic, partition, offset) or none")
    check_connection(parsed)


def with_rules(config: ConfigDef, values: list[ConfigValue], props: Mapping[str, str],
               check: Callable[[Mapping[str, Any]], None]) -> list[ConfigValue]:
    """Validate answers that also carry the rules between keys, on the key they name, so
    `PUT .../config/validate` and connector creation refuse what `start` would."""
    if any(v.errors for v in values):
        return values
    try:
        check(config.parse(props))
    except ConfigError as exc:
        for value in values:
            if value.name == exc.name:
                value.errors.append(str(exc))
    return values


class PostgresSinkConnector(SinkConnector):
    """Writes records into PostgreSQL tables (insert, upsert, update, delete)."""

    def version(self) -> str:
        return VERSION

    def config(self) -> ConfigDef:
        return SINK_CONFIG

    def validate(self, connector_configs: Mapping[str, str]) -> list[ConfigValue]:
        return with_rules(SINK_CONFIG, super().validate(connector_configs), connector_configs, check_sink)

    def start(self, props: Mapping[str, str]) -> None:
        check_sink(SINK_CONFIG.parse(props))
        self.props = dict(props)

    def task_class(self) -> type[PostgresSinkTask]:
        return PostgresSinkTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        return [dict(self.props) for _ in range(max_tasks)]

    def stop(self) -> None:
        """Nothing to release: tasks own their connections."""


CDC_CONFIG = (
    define_connection(ConfigDef())
    .define("topic.prefix", ConfigType.STRING, importance=Importance.HIGH,
            documentation="Topics are <topic.prefix>.<schema>.<table>; also the source "
                          "partition's name, so keep it when the connector is recreated.")
    .define("table.include.list", ConfigType.LIST, "", Importance.HIGH,
            "Tables to capture, as schema.table (public if no schema); empty: every table "
            "of schema.include.list.")
    .define("schema.include.list", ConfigType.LIST, "public", Importance.MEDIUM,
            "Schemas whose tables are captured when table.include.list is empty.")
    .define("slot.name", ConfigType.STRING, "strom_cdc", Importance.MEDIUM,
            "The logical replication slot (pgoutput) the changes are read from.")
    .define("publication.name", ConfigType.STRING, "strom_cdc", Importance.MEDIUM,
            "The publication naming the captured tables.")
    .define("publication.autocreate", ConfigType.BOOLEAN, True, Importance.LOW,
            "Create the publication for the captured tables if it is missing.")
    .define("snapshot.mode", ConfigType.STRING, "initial", Importance.MEDIUM,
            "initial: read the tables first, then stream; never: stream only.",
            validator=one_of("initial", "never"))
    .define("tombstones.on.delete", ConfigType.BOOLEAN, True, Importance.MEDIUM,
            "Send a tombstone (key, null value) after each delete event, for compaction.")
    .define("max.batch.size", ConfigType.INT, 2048, Importance.LOW,
            "Most rows or changes read per poll.", validator=at_least(1))
    .define("poll.interval.ms", ConfigType.INT, 500, Importance.LOW,
            "Wait before reading the slot again when it had nothing new.", validator=at_least(0))
    .define("slot.drop.on.stop", ConfigType.BOOLEAN, False, Importance.LOW,
            "Drop the slot when the task stops (tests; loses the resume point).")
)


class PostgresCdcSourceConnector(SourceConnector):
    """Change events of PostgreSQL tables: a snapshot, then logical decoding (pgoutput)."""

    def version(self) -> str:
        return VERSION

    def config(self) -> ConfigDef:
        return CDC_CONFIG

    def validate(self, connector_configs: Mapping[str, str]) -> list[ConfigValue]:
        return with_rules(CDC_CONFIG, super().validate(connector_configs), connector_configs,
                          check_connection)

    def start(self, props: Mapping[str, str]) -> None:
        check_connection(CDC_CONFIG.parse(props))
        self.props = dict(props)

    def task_class(self) -> type[PostgresCdcSourceTask]:
        return PostgresCdcSourceTask

    def task_configs(self, max_tasks: int) -> list[dict[str, str]]:
        """One task: a replication slot is one ordered stream."""
        return [dict(self.props)]

    def stop(self) -> None:
        """Nothing to release: the task owns its connections."""

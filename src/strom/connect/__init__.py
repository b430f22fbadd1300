"""Strom Connect: a Kafka Connect runtime in Python, with Kafka Connect's REST API.

What a connector author imports comes from here (or `strom.connect.api`): the connector
and task base classes, records, `ConfigDef`, the data model. The runtime
(`strom.connect.runtime`), REST API (`strom.connect.rest`), converters, transforms and
built-in connectors are separate modules a plugin never needs; docs/connect.md is the
guide and docs/architecture.md the module map.
"""

from strom.connect.api.config import ConfigDef, ConfigType, Importance
from strom.connect.api.connector import Connector, SinkConnector, SourceConnector
from strom.connect.api.errors import ConnectError, DataError, RetriableError
from strom.connect.api.records import ConnectRecord, SinkRecord, SourceRecord
from strom.connect.api.task import SinkTask, SourceTask, TopicPartition
from strom.connect.data.headers import Headers
from strom.connect.data.schema import Schema, SchemaBuilder, Type
from strom.connect.data.struct import Struct

__all__ = [
    "ConfigDef", "ConfigType", "ConnectError", "ConnectRecord", "Connector", "DataError", "Headers",
    "Importance", "RetriableError", "Schema", "SchemaBuilder", "SinkConnector", "SinkRecord",
    "SinkTask", "SourceConnector", "SourceRecord", "SourceTask", "Struct", "TopicPartition", "Type",
]

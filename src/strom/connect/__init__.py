"""Strom Connect: a Kafka Connect runtime in Python, with Kafka Connect's REST API.

What a connector author needs is importable from here (or `strom.connect.api`): the
connector and task base classes, records, `ConfigDef`, the data model. The runtime
(`strom.connect.runtime`), REST API (`strom.connect.rest`), converters, transforms and
built-in connectors are modules a plugin never needs; docs/connect.md is the guide and
docs/architecture.md the module map.

Names load on first access (PEP 562), so `strom` commands that only register the
`connect` command group do not pay for the data model at start.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigDef": "strom.connect.api.config", "ConfigType": "strom.connect.api.config",
    "Importance": "strom.connect.api.config",
    "Connector": "strom.connect.api.connector", "SinkConnector": "strom.connect.api.connector",
    "SourceConnector": "strom.connect.api.connector",
    "ConnectError": "strom.connect.api.errors", "DataError": "strom.connect.api.errors",
    "RetriableError": "strom.connect.api.errors",
    "ConnectRecord": "strom.connect.api.records", "SinkRecord": "strom.connect.api.records",
    "SourceRecord": "strom.connect.api.records",
    "SinkTask": "strom.connect.api.task", "SourceTask": "strom.connect.api.task",
    "TopicPartition": "strom.connect.api.task",
    "Headers": "strom.connect.data.headers",
    "Schema": "strom.connect.data.schema", "SchemaBuilder": "strom.connect.data.schema",
    "Type": "strom.connect.data.schema",
    "Struct": "strom.connect.data.struct",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'strom.connect' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

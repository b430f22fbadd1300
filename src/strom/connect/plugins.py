"""Plugins by name: connectors, transforms, predicates and converters.

A config names a plugin by class. Kafka's names (`org.apache.kafka.connect.json.JsonConverter`,
`org.apache.kafka.connect.transforms.InsertField$Value`, `FileStreamSource`) resolve to
Strom's equivalents, so existing connector configs work unchanged; Python plugins go by
their dotted path (`strom.connect.connectors.file.FileStreamSourceConnector`), their
simple class name, or (connectors) that name without the `Connector` suffix, as Kafka's
aliases do.

Only classes that are registered can be loaded: the built-ins, and the modules found in
the worker's `plugin.path` directories (the operator's choice, as in Kafka). A config
value never imports an arbitrary module (the CVE-2023-25194 class of bug).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from strom.connect.api.connector import Connector, SinkConnector, SourceConnector
from strom.connect.api.errors import ConfigError
from strom.connect.converters.base import Converter
from strom.connect.transforms.base import Predicate, Transformation

log = logging.getLogger(__name__)

KAFKA_TRANSFORMS = "org.apache.kafka.connect.transforms."
KAFKA_PREDICATES = "org.apache.kafka.connect.transforms.predicates."

_BUILTIN_MODULES = (
    "strom.connect.converters.json_converter", "strom.connect.converters.simple",
    "strom.connect.transforms.fields", "strom.connect.transforms.cast",
    "strom.connect.transforms.timestamps", "strom.connect.transforms.flatten",
    "strom.connect.transforms.routing", "strom.connect.transforms.headers",
    "strom.connect.connectors.file", "strom.connect.connectors.generator",
    "strom.connect.connectors.http_sink", "strom.connect.connectors.mqtt_source",
    "strom.connect.connectors.mqtt_sink", "strom.connect.connectors.postgres",
)

#: Kafka's class names for the converters Strom implements.
_KAFKA_CONVERTERS = {
    "org.apache.kafka.connect.json.JsonConverter": "JsonConverter",
    "org.apache.kafka.connect.storage.StringConverter": "StringConverter",
    "org.apache.kafka.connect.converters.ByteArrayConverter": "ByteArrayConverter",
    "org.apache.kafka.connect.storage.SimpleHeaderConverter": "SimpleHeaderConverter",
}
_KAFKA_CONNECTORS = {
    "org.apache.kafka.connect.file.FileStreamSourceConnector": "FileStreamSourceConnector",
    "org.apache.kafka.connect.file.FileStreamSinkConnector": "FileStreamSinkConnector",
}
_KINDS: tuple[tuple[str, type], ...] = (
    ("source", SourceConnector), ("sink", SinkConnector), ("transformation", Transformation),
    ("predicate", Predicate), ("converter", Converter))


@dataclass(frozen=True)
class PluginDesc:
    """One plugin as `/connector-plugins` lists it."""

    name: str  # the canonical class name shown to users
    cls: type
    kind: str  # source, sink, transformation, predicate, converter, header_converter

    def version(self) -> str:
        try:
            return str(self.cls().version())
        except Exception:  # noqa: BLE001 - a plugin that cannot be instantiated has no version
            return "undefined"

    def as_json(self) -> dict[str, str]:
        return {"class": self.name, "type": self.kind, "version": self.version()}


def _kind(cls: type) -> str | None:
    if inspect.isabstract(cls) or _is_split_parent(cls):
        return None
    for name, base in _KINDS:
        if issubclass(cls, base):
            return name
    return None


def _is_split_parent(cls: type) -> bool:
    """InsertField itself is not a plugin; InsertField$Key and $Value are."""
    from strom.connect.transforms.base import KeyOrValue

    return issubclass(cls, KeyOrValue) and "is_key" not in cls.__dict__


def _kafka_name(cls: type) -> str | None:
    """Kafka's class name for a built-in SMT/predicate (`InsertFieldValue` -> `InsertField$Value`)."""
    module = cls.__module__
    if module.startswith("strom.connect.transforms."):
        name = cls.__name__
        for suffix in ("Key", "Value"):
            parent = name.removesuffix(suffix)
            if parent != name and any(b.__name__ == parent for b in cls.__mro__[1:]):
                return f"{KAFKA_TRANSFORMS}{parent}${suffix}"
        prefix = KAFKA_PREDICATES if issubclass(cls, Predicate) else KAFKA_TRANSFORMS
        return prefix + name
    for kafka, simple in {**_KAFKA_CONVERTERS, **_KAFKA_CONNECTORS}.items():
        if simple == cls.__name__ and module.startswith("strom.connect."):
            return kafka
    return None


class Plugins:
    """The registry: every loadable plugin under each of its names."""

    def __init__(self, plugin_path: Iterable[str] = ()) -> None:
        self._by_name: dict[str, PluginDesc] = {}
        self._canonical: list[PluginDesc] = []
        for module_name in _BUILTIN_MODULES:
            self.add_module(importlib.import_module(module_name))
        for directory in plugin_path:
            if directory.strip():
                self.scan(Path(directory.strip()))

    def scan(self, directory: Path) -> None:
        """Import every module and package directly under `directory` and register what
        they define (Kafka's plugin.path, with Python modules instead of jars)."""
        if not directory.is_dir():
            log.warning("plugin.path entry %s is not a directory; skipped", directory)
            return
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
        for entry in sorted(directory.iterdir()):
            name = entry.stem if entry.suffix == ".py" else entry.name
            if (entry.suffix == ".py" or (entry / "__init__.py").exists()) and name.isidentifier():
                try:
                    self.add_module(importlib.import_module(name))
                except Exception:
                    log.exception("plugin module %s could not be loaded", entry)

    def add_module(self, module: ModuleType) -> None:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                self.add(cls)

    def add(self, cls: type) -> None:
        kind = _kind(cls)
        if kind is None:
            return
        python_name = f"{cls.__module__}.{cls.__qualname__}"
        canonical = _kafka_name(cls) or python_name
        desc = PluginDesc(canonical, cls, kind)
        self._canonical.append(desc)
        for alias in self._aliases(cls, canonical, python_name):
            self._by_name.setdefault(alias, desc)

    @staticmethod
    def _aliases(cls: type, canonical: str, python_name: str) -> list[str]:
        simple = cls.__name__
        names = [canonical, python_name, simple, canonical.rpartition(".")[2]]
        if simple.endswith("Connector"):
            names.append(simple.removesuffix("Connector"))
        return names

    def find(self, name: str, base: type, config_name: str) -> type:
        """The class registered as `name` that is a `base`; ConfigError as Kafka words it."""
        desc = self._by_name.get(name.strip())
        if desc is None:
            raise ConfigError(config_name, name, f"Class {name} could not be found.")
        if not issubclass(desc.cls, base):
            raise ConfigError(config_name, name, f"Class {name} is not a {base.__name__}")
        return desc.cls

    def new(self, name: str, base: type, config_name: str) -> Any:
        return self.find(name, base, config_name)()

    def describe(self, name: str) -> PluginDesc | None:
        return self._by_name.get(name.strip())

    def connector_class(self, name: str) -> type[Connector]:
        try:
            return self.find(name, Connector, "connector.class")
        except ConfigError:
            available = ", ".join(e["class"] for e in self.listing(connectors_only=True))
            raise ConfigError(f"Failed to find any class that implements Connector and which name "
                              f"matches {name}, available connectors are: {available}") from None

    def listing(self, connectors_only: bool = True) -> list[dict[str, str]]:
        """`/connector-plugins`: sorted by class name, connectors first as Kafka lists them."""
        kinds = ("source", "sink") if connectors_only else ("source", "sink", "transformation",
                                                             "predicate", "converter")
        seen: dict[str, PluginDesc] = {}
        for desc in self._canonical:
            if desc.kind in kinds:
                seen.setdefault(desc.name, desc)
        entries = [d.as_json() for d in sorted(seen.values(), key=lambda d: d.name)]
        if not connectors_only:
            headers = [dict(e, type="header_converter") for e in entries if e["type"] == "converter"]
            entries.extend(headers)
        return entries

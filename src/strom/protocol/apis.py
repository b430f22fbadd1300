"""The kio schema behind each Kafka (API key, version); the keys are `api_keys.ApiKey`.

What the broker *serves* is decided by the handlers it registers (strom.broker), never
by what kio could parse: advertising a version we do not fully implement makes clients
such as franz-go switch protocols underneath us.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from kio.index import load_payload_module
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader
from kio.static.constants import EntityType

from strom.protocol.api_keys import ApiKey


@dataclass(frozen=True)
class RequestSpec:
    name: str
    api_key: int
    version: int
    flexible: bool
    request_type: type
    reader: Callable[[bytes | memoryview, int], tuple[Any, int]]
    response_module: ModuleType


def api_name(api_key: int) -> str:
    return api_key_map.get(api_key, f"api{api_key}")


def known_versions(api_key: int) -> range:
    name = api_key_map.get(api_key)
    if name is None:
        return range(0)
    versions = sorted(schema_name_map[name])
    return range(versions[0], versions[-1] + 1)


@functools.cache
def request_spec(api_key: int, version: int) -> RequestSpec | None:
    if version not in known_versions(api_key):
        return None
    module = load_payload_module(api_key, version, EntityType.request)
    request_type = _payload_class(module, "Request")
    response_module = load_payload_module(api_key, version, EntityType.response)
    return RequestSpec(
        name=api_name(api_key),
        api_key=api_key,
        version=version,
        flexible=bool(getattr(request_type, "__flexible__", False)),
        request_type=request_type,
        reader=entity_reader(request_type),
        response_module=response_module,
    )


@functools.cache
def response_type(api_key: int, version: int) -> type:
    module = load_payload_module(api_key, version, EntityType.response)
    return _payload_class(module, "Response")


def response_module(api_key: int, version: int) -> ModuleType:
    return load_payload_module(api_key, version, EntityType.response)


@functools.cache
def response_header_flexible(api_key: int, version: int) -> bool:
    """ApiVersions always answers with header v0, whatever its version (KIP-511)."""
    if api_key == ApiKey.API_VERSIONS:
        return False
    return bool(getattr(response_type(api_key, version), "__flexible__", False))


def _payload_class(module: ModuleType, suffix: str) -> type:
    for name in dir(module):
        obj = getattr(module, name)
        if (
            isinstance(obj, type)
            and name.endswith(suffix)
            and getattr(obj, "__type__", None) in (EntityType.request, EntityType.response)
        ):
            return obj
    raise LookupError(f"no {suffix} class in {module.__name__}")

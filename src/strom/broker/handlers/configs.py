"""DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44).

Topic configs report every known name with its effective value, its source and, on
request, the synonym chain down to the default: tools such as Kafka's `kafka-configs`
and Connect do describe-then-alter round trips and need all of it. Unknown-but-valid
names are accepted and kept (strict rejection broke Debezium on other brokers).

Dynamic broker configs are not supported yet: altering a broker resource is refused with
INVALID_REQUEST and a message saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.cluster.store import MetadataError
from strom.config.defs import ConfigDef, ConfigSource, ConfigType, InvalidConfig
from strom.config.topic import effective_topic_configs, validate_topic_overrides
from strom.protocol.api_keys import ApiKey

log = logging.getLogger(__name__)
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _entry(name: str, value: str | None, source: ConfigSource, definition: ConfigDef | None,
           synonyms: list[dict[str, Any]], documentation: bool) -> dict[str, Any]:
    sensitive = bool(definition and definition.sensitive)
    return {
        "name": name,
        "value": None if sensitive else value,
        "read_only": bool(definition and definition.read_only),
        "config_source": int(source),
        "is_default": source == ConfigSource.DEFAULT_CONFIG,
        "is_sensitive": sensitive,
        "synonyms": synonyms,
        "config_type": int(definition.type if definition else ConfigType.STRING),
        "documentation": (definition.doc or None) if definition and documentation else None,
    }


def _describe_topic(ctx: RequestContext, name: str, synonyms: bool, docs: bool
                    ) -> tuple[ErrorCode, str | None, list[dict[str, Any]]]:
    topic = ctx.metadata.image().topics.get(name)
    if topic is None:
        return ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist", []
    entries = []
    for resolved in effective_topic_configs(topic.configs, ctx.config.props).values():
        chain = [{"name": n, "value": v, "source": int(s)} for n, v, s in resolved.synonyms]
        entries.append(_entry(resolved.name, resolved.value, resolved.source, resolved.definition,
                              chain if synonyms else [], docs))
    return NONE, None, entries


def _describe_broker(ctx: RequestContext, name: str, synonyms: bool, docs: bool
                     ) -> tuple[ErrorCode, str | None, list[dict[str, Any]]]:
    if name not in ("", str(ctx.broker_id)):
        return ErrorCode.invalid_request, f"Unexpected broker id, expected {ctx.broker_id}", []
    entries = []
    for key, value, source, definition in ctx.config.describe():
        chain = [{"name": key, "value": value, "source": int(source)}] if synonyms else []
        entries.append(_entry(key, value, source, definition, chain, docs))
    return NONE, None, entries


@dispatch.handles(ApiKey.DESCRIBE_CONFIGS, 1, 4)
async def describe_configs(ctx: RequestContext, request: Any) -> Any:
    include_synonyms = bool(getattr(request, "include_synonyms", False))
    docs = bool(getattr(request, "include_documentation", False))
    results = []
    for resource in request.resources:
        kind, name = int(resource.resource_type), resource.resource_name
        if kind == TOPIC:
            code, message, entries = _describe_topic(ctx, name, include_synonyms, docs)
        elif kind == BROKER:
            code, message, entries = _describe_broker(ctx, name, include_synonyms, docs)
        elif kind == BROKER_LOGGER:
            code, message, entries = NONE, None, []
        else:
            code, message, entries = ErrorCode.invalid_request, f"Unsupported resource type {kind}", []
        keys = resource.configuration_keys
        if keys is not None:
            entries = [e for e in entries if e["name"] in keys]
        results.append({"error_code": code, "error_message": message, "resource_type": kind,
                        "resource_name": name, "configs": entries})
    return ctx.respond(results=results)


def _apply_topic(ctx: RequestContext, name: str, change: Callable[[dict[str, str]], dict[str, str]],
                 validate_only: bool) -> tuple[ErrorCode, str | None]:
    topic = ctx.metadata.image().topics.get(name)
    if topic is None:
        return ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist"
    try:
        configs = validate_topic_overrides(change(dict(topic.configs)))
    except InvalidConfig as exc:
        return ErrorCode.invalid_config, str(exc)
    if not validate_only:
        try:
            ctx.metadata.set_topic_configs(name, configs)
        except MetadataError as exc:
            return exc.error, str(exc)
        changes = [f"{k}={v}" for k, v in sorted(configs.items()) if topic.configs.get(k) != v]
        changes += [f"-{k}" for k in sorted(set(topic.configs) - set(configs))]
        if changes:
            log.info("topic %s configs changed: %s", name, ", ".join(changes))
    return NONE, None


def _alter(ctx: RequestContext, resource: Any, change: Callable[[dict[str, str]], dict[str, str]],
           validate_only: bool) -> dict[str, Any]:
    kind, name = int(resource.resource_type), resource.resource_name
    if kind == TOPIC:
        code, message = _apply_topic(ctx, name, change, validate_only)
    elif kind in (BROKER, BROKER_LOGGER):
        code, message = ErrorCode.invalid_request, "Dynamic broker configs are not supported yet"
    else:
        code, message = ErrorCode.invalid_request, f"Unsupported resource type {kind}"
    return {"error_code": code, "error_message": message, "resource_type": kind,
            "resource_name": name}


@dispatch.handles(ApiKey.ALTER_CONFIGS, 0, 2)
async def alter_configs(ctx: RequestContext, request: Any) -> Any:
    """Legacy AlterConfigs replaces the whole set of overrides with the given one."""
    responses = []
    for resource in request.resources:
        def replace_all(_: dict[str, str], r: Any = resource) -> dict[str, str]:
            return {c.name: c.value for c in r.configs if c.value is not None}

        responses.append(_alter(ctx, resource, replace_all, bool(request.validate_only)))
    return ctx.respond(responses=responses)


def _incremental(ops: tuple[Any, ...]) -> Callable[[dict[str, str]], dict[str, str]]:
    def change(current: dict[str, str]) -> dict[str, str]:
        from strom.config.topic import TOPIC_CONFIGS

        for op in ops:
            kind = int(op.config_operation)
            if kind == SET:
                if op.value is None:
                    raise InvalidConfig(f"Null value not supported for {op.name}")
                current[op.name] = op.value
            elif kind == DELETE:
                current.pop(op.name, None)
            elif kind in (APPEND, SUBTRACT):
                definition = TOPIC_CONFIGS.get(op.name)
                if definition is None or definition.type is not ConfigType.LIST:
                    raise InvalidConfig(f"Config {op.name} is not a list; cannot append/subtract")
                items = [i for i in (current.get(op.name) or definition.default or "").split(",")
                         if i]
                values = [v for v in (op.value or "").split(",") if v]
                if kind == APPEND:
                    items += [v for v in values if v not in items]
                else:
                    items = [i for i in items if i not in values]
                current[op.name] = ",".join(items)
            else:
                raise InvalidConfig(f"Unknown config operation {kind}")
        return current

    return change


@dispatch.handles(ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 1)
async def incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    names = [(int(r.resource_type), r.resource_name) for r in request.resources]
    responses = []
    for resource in request.resources:
        if names.count((int(resource.resource_type), resource.resource_name)) > 1:
            responses.append({"error_code": ErrorCode.invalid_request,
                              "error_message": "Duplicate resource in request",
                              "resource_type": resource.resource_type,
                              "resource_name": resource.resource_name})
            continue
        responses.append(
            _alter(ctx, resource, _incremental(resource.configs), bool(request.validate_only))
        )
    return ctx.respond(responses=responses)

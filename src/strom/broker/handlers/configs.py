"""DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44).

Topic configs report every known name with its effective value, its source and, on
request, the synonym chain down to the default: tools such as Kafka's `kafka-configs`
and Connect do describe-then-alter round trips and need all of it. A name Kafka 4.4
does not know is refused with INVALID_CONFIG ("Unknown topic config name: x"), as its
controller refuses it.

BROKER resources are the dynamic broker configs (`strom.config.dynamic`): "<id>" is
this broker's own, "" the cluster-wide default. A change is validated here, written to
the metadata store, and applied by every broker when its image arrives (the server
feeds `BrokerConfig.set_dynamic`), so the answer to this request already reflects it.

GROUP resources are group configs (`strom.config.group`, Kafka's GroupConfig): every
described name with its group override or the broker's value; changes validated against
the broker's bounds and written to the metadata store, where the coordinators read them.

BROKER_LOGGER resources are the broker's log levels (`strom.broker.log_levels`):
described, and changed by IncrementalAlterConfigs only, as in Kafka.

Request-level checks come first, with Kafka's answers: a resource named twice, a config
named twice in one resource, a null value where one is needed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker import log_levels
from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.broker.security import tls_reload
from strom.cluster.store import MetadataError, validate_topic_name
from strom.config.broker import broker_def
from strom.config.defs import ConfigDef, ConfigSource, ConfigType, InvalidConfig
from strom.config.dynamic import DynamicConfigRefused, describe_broker, validate_update
from strom.config.group import describe_group_configs, validate_group_configs
from strom.config.topic import (
    TOPIC_CONFIGS,
    Synonym,
    effective_topic_configs,
    validate_topic_overrides,
)
from strom.protocol.api_keys import ApiKey

log = logging.getLogger(__name__)
TOPIC, BROKER, BROKER_LOGGER, GROUP = 2, 4, 8, 32
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
OP_NAMES = {APPEND: "APPEND", SUBTRACT: "SUBTRACT"}
UNKNOWN_TYPE = 0  # DescribeConfigs' config_type for a name of no known type
Change = Callable[[dict[str, str]], dict[str, str]]
Outcome = tuple[ErrorCode, str | None]


class Refused(Exception):
    """One resource's change refused with this error code and message."""

    def __init__(self, code: ErrorCode, message: str | None) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# --- DescribeConfigs ----------------------------------------------------------------------


def _entry(name: str, value: str | None, source: ConfigSource, definition: ConfigDef | None,
           synonyms: list[dict[str, Any]], documentation: bool, *, read_only: bool = False,
           sensitive: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "value": None if sensitive else value,
        "read_only": read_only,
        "config_source": int(source),
        "is_default": source == ConfigSource.DEFAULT_CONFIG,
        "is_sensitive": sensitive,
        "synonyms": synonyms,
        "config_type": int(definition.type) if definition else UNKNOWN_TYPE,
        "documentation": (definition.doc or None) if definition and documentation else None,
    }


def _chain(synonyms: tuple[Synonym, ...], wanted: bool) -> list[dict[str, Any]]:
    return [{"name": n, "value": v, "source": int(s)} for n, v, s in synonyms] if wanted else []


def _describe_topic(ctx: RequestContext, name: str, synonyms: bool, docs: bool
                    ) -> tuple[ErrorCode, str | None, list[dict[str, Any]]]:
    try:
        validate_topic_name(name)
    except MetadataError as exc:
        return exc.error, str(exc), []
    topic = ctx.metadata.image().topics.get(name)
    if topic is None:
        return ErrorCode.unknown_topic_or_partition, "", []
    entries = [
        _entry(resolved.name, resolved.value, resolved.described_source, resolved.definition,
               _chain(resolved.synonyms, synonyms), docs)
        for resolved in effective_topic_configs(topic.configs, ctx.config.props).values()]
    return NONE, None, entries


def _broker_target(ctx: RequestContext, name: str, describing: bool) -> int | None:
    """The broker id a BROKER resource names (None: the cluster-wide default); refuses
    another broker's id as Kafka 4.4 does (the client sends those to that broker)."""
    if name == "":
        return None
    try:
        broker_id = int(name)
    except ValueError:
        word = "Broker" if describing else "Node"
        raise Refused(ErrorCode.invalid_request,
                      f"{word} id must be an integer, but it is: {name}") from None
    if broker_id != ctx.broker_id:
        expected = f"{ctx.broker_id} or empty string" if describing else str(ctx.broker_id)
        raise Refused(ErrorCode.invalid_request,
                      f"Unexpected broker id, expected {expected}, but received {name}")
    return broker_id


def _describe_broker(ctx: RequestContext, name: str, synonyms: bool, docs: bool
                     ) -> tuple[ErrorCode, str | None, list[dict[str, Any]]]:
    try:
        per_broker = _broker_target(ctx, name, describing=True) is not None
    except Refused as exc:
        return exc.code, exc.message, []
    entries = [
        _entry(e.name, e.value, e.source, e.definition, _chain(e.synonyms, synonyms), docs,
               read_only=e.read_only, sensitive=e.sensitive)
        for e in describe_broker(ctx.config, per_broker)]
    return NONE, None, entries


def _describe_loggers(ctx: RequestContext, name: str
                      ) -> tuple[ErrorCode, str | None, list[dict[str, Any]]]:
    """Every logger with its level (source DYNAMIC_BROKER_LOGGER_CONFIG), Kafka's way."""
    if name == "":
        return ErrorCode.invalid_request, "Broker id must not be empty", []
    if not name.lstrip("-").isdigit():
        return ErrorCode.invalid_request, f"Broker id must be an integer, but it is: {name}", []
    if int(name) != ctx.broker_id:
        return (ErrorCode.invalid_request,
                f"Unexpected broker id, expected {ctx.broker_id} but received {name}", [])
    entries = [_entry(logger, level, ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG, None, [], False)
               for logger, level in log_levels.current_levels().items()]
    return NONE, None, entries


def _describe_group(ctx: RequestContext, name: str, synonyms: bool, docs: bool
                    ) -> tuple[ErrorCode, str | None, list[dict[str, Any]]]:
    if name == "":
        return ErrorCode.invalid_request, "Group name must not be empty", []
    overrides = ctx.metadata.image().group_configs.get(name, {})
    entries = [_entry(e.name, e.value, e.source, e.definition, _chain(e.synonyms, synonyms), docs)
               for e in describe_group_configs(overrides, ctx.config.props)]
    return NONE, "", entries  # Kafka 4.4 answers a group with an empty message


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
            code, message, entries = _describe_loggers(ctx, name)
        elif kind == GROUP:
            code, message, entries = _describe_group(ctx, name, include_synonyms, docs)
        else:
            code, message, entries = ErrorCode.invalid_request, f"Unsupported resource type {kind}", []
        keys = resource.configuration_keys
        if keys is not None:
            entries = [e for e in entries if e["name"] in keys]
        results.append({"error_code": code, "error_message": message, "resource_type": kind,
                        "resource_name": name, "configs": entries})
    return ctx.respond(results=results)


# --- AlterConfigs and IncrementalAlterConfigs ------------------------------------------------


def _alter_topic(ctx: RequestContext, name: str, change: Change, validate_only: bool) -> None:
    """Kafka's controller order: the resulting configs are validated before the topic's
    existence is checked, so a bad config on a missing topic is INVALID_CONFIG."""
    topic = ctx.metadata.image().topics.get(name)
    current = dict(topic.configs) if topic is not None else {}
    try:
        configs = validate_topic_overrides(change(dict(current)), kept=current)
    except InvalidConfig as exc:
        raise Refused(ErrorCode.invalid_config, str(exc)) from exc
    if topic is None:
        raise Refused(ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist.")
    if validate_only:
        return
    try:
        ctx.metadata.set_topic_configs(name, configs)
    except MetadataError as exc:
        raise Refused(exc.error, str(exc)) from exc
    changes = [f"{k}={v}" for k, v in sorted(configs.items()) if current.get(k) != v]
    changes += [f"-{k}" for k in sorted(set(current) - set(configs))]
    if changes:
        log.info("topic %s configs changed: %s", name, ", ".join(changes))


def _alter_broker(ctx: RequestContext, name: str, change: Change, validate_only: bool) -> None:
    broker_id = _broker_target(ctx, name, describing=False)
    current = dict(ctx.metadata.image().dynamic_broker_configs(broker_id))
    try:
        resulting = change(dict(current))
        validate_update(ctx.config, resulting, per_broker=broker_id is not None)
        tls_reload.check_reconfiguration(ctx.config, resulting, per_broker=broker_id is not None)
    except DynamicConfigRefused as exc:
        raise Refused(ErrorCode.invalid_request, str(exc)) from exc
    except InvalidConfig as exc:
        raise Refused(ErrorCode.invalid_config, str(exc)) from exc
    if validate_only or resulting == current:
        return
    ctx.metadata.set_broker_configs(broker_id, resulting)
    level = "cluster-wide default" if broker_id is None else f"broker {broker_id}"
    log.info("dynamic %s configs are now: %s", level,
             ", ".join(f"{k}={v}" for k, v in sorted(resulting.items())) or "(none)")


def _alter_group(ctx: RequestContext, name: str, change: Change, validate_only: bool) -> None:
    """The group's resulting overrides, checked whole against the broker's bounds (Kafka's
    controller order); the coordinators read the stored set on their next use."""
    if name == "":
        raise Refused(ErrorCode.invalid_request, "Default group resources are not allowed.")
    current = dict(ctx.metadata.image().group_configs.get(name, {}))
    try:
        resulting = {k: v.strip() for k, v in change(dict(current)).items()}
        validate_group_configs(resulting, ctx.config.props)
    except InvalidConfig as exc:
        raise Refused(ErrorCode.invalid_config, str(exc)) from exc
    if validate_only or resulting == current:
        return
    ctx.metadata.set_group_configs(name, resulting)
    log.info("group %s configs are now: %s", name,
             ", ".join(f"{k}={v}" for k, v in sorted(resulting.items())) or "(none)")


def _alter_loggers(ctx: RequestContext, resource: Any, validate_only: bool) -> None:
    """IncrementalAlterConfigs on BROKER_LOGGER: this broker's log levels, now."""
    name = resource.resource_name
    if not name.lstrip("-").isdigit():
        raise Refused(ErrorCode.invalid_request, f"Node id must be an integer, but it is: {name}")
    if int(name) != ctx.broker_id:
        raise Refused(ErrorCode.invalid_request,
                      f"Unexpected node id. Expected {ctx.broker_id}, but received {name}")
    ops = [log_levels.LoggerOp(op.name, int(op.config_operation), op.value)
           for op in resource.configs]
    try:
        log_levels.apply(ops, validate_only)
    except log_levels.LoggerChangeRefused as exc:
        raise Refused(exc.code, str(exc)) from exc


def _alter(ctx: RequestContext, resource: Any, change: Change | None,
           validate_only: bool) -> Outcome:
    """`change` is None for IncrementalAlterConfigs on BROKER_LOGGER (operations, not a
    set of values); legacy AlterConfigs knows no broker loggers, as in Kafka."""
    kind, name = int(resource.resource_type), resource.resource_name
    try:
        if kind == BROKER_LOGGER and change is None:
            _alter_loggers(ctx, resource, validate_only)
        elif change is None or kind not in (TOPIC, BROKER, GROUP):
            raise Refused(ErrorCode.invalid_request, f"Unknown resource type {kind}")
        elif kind == TOPIC:
            _alter_topic(ctx, name, change, validate_only)
        elif kind == GROUP:
            _alter_group(ctx, name, change, validate_only)
        else:
            _alter_broker(ctx, name, change, validate_only)
    except Refused as exc:
        return exc.code, exc.message
    return NONE, None


def _answer(resource: Any, outcome: Outcome) -> dict[str, Any]:
    return {"error_code": outcome[0], "error_message": outcome[1],
            "resource_type": resource.resource_type, "resource_name": resource.resource_name}


def _precheck(resource: Any, null_ok: Callable[[Any], bool]) -> Outcome | None:
    """Kafka's broker-side preprocessing of one resource: duplicate names, nulls."""
    names = Counter(c.name for c in resource.configs)
    if any(count > 1 for count in names.values()):
        return ErrorCode.invalid_request, "Error due to duplicate config keys"
    nulls = [c.name for c in resource.configs if c.value is None and not null_ok(c)]
    if nulls:
        return ErrorCode.invalid_request, f"Null value not supported for : {', '.join(nulls)}"
    return None


def _respond_each(ctx: RequestContext, request: Any,
                  change_for: Callable[[Any], Change | None],
                  null_ok: Callable[[Any], bool]) -> list[dict[str, Any]]:
    seen = Counter((int(r.resource_type), r.resource_name) for r in request.resources)
    responses = []
    for resource in request.resources:
        outcome: Outcome | None = None
        if seen[(int(resource.resource_type), resource.resource_name)] > 1:
            outcome = ErrorCode.invalid_request, "Each resource must appear at most once."
        outcome = outcome or _precheck(resource, null_ok)
        if outcome is None:
            outcome = _alter(ctx, resource, change_for(resource), bool(request.validate_only))
        responses.append(_answer(resource, outcome))
    return responses


@dispatch.handles(ApiKey.ALTER_CONFIGS, 0, 2)
async def alter_configs(ctx: RequestContext, request: Any) -> Any:
    """Legacy AlterConfigs replaces the whole set of overrides with the given one."""
    def replace_all(resource: Any) -> Change:
        return lambda _: {c.name: c.value for c in resource.configs}

    return ctx.respond(responses=_respond_each(ctx, request, replace_all, lambda _: False))


def _list_definition(kind: int, name: str) -> ConfigDef | None:
    definition = TOPIC_CONFIGS.get(name) if kind == TOPIC else broker_def(name)
    return definition if definition is not None and definition.type is ConfigType.LIST else None


def _incremental(kind: int, ops: tuple[Any, ...]) -> Change:
    def change(current: dict[str, str]) -> dict[str, str]:
        for op in ops:
            operation = int(op.config_operation)
            if operation == SET:
                current[op.name] = op.value
            elif operation == DELETE:
                current.pop(op.name, None)
            elif operation in (APPEND, SUBTRACT):
                current[op.name] = _list_change(kind, op, operation, current.get(op.name))
            elif kind == BROKER:  # refused by the broker before it reaches Kafka's controller
                raise Refused(ErrorCode.invalid_request, f"Unknown operations type {operation}")
            else:  # Kafka 4.4's controller fails on it without a message
                raise Refused(ErrorCode.unknown_server_error, None)
        return current

    return change


def _list_change(kind: int, op: Any, operation: int, value: str | None) -> str:
    """APPEND/SUBTRACT on a list config, starting from its current value or default."""
    definition = _list_definition(kind, op.name)
    if definition is None:
        if kind in (TOPIC, GROUP):  # Kafka 4.4 says so for a group's list config too
            raise InvalidConfig(f"Can't {OP_NAMES[operation]} to key {op.name} because its "
                                "type is not LIST.")
        raise InvalidConfig(f"Config value {OP_NAMES[operation].lower()} is not allowed for "
                            f"config key: {op.name}")
    items = [i.strip() for i in (value if value is not None else definition.default or "")
             .split(",") if i.strip()]
    values = [v.strip() for v in (op.value or "").split(",") if v.strip()]
    if operation == APPEND:
        items += [v for v in values if v not in items]
    else:
        items = [i for i in items if i not in values]
    return ",".join(items)


@dispatch.handles(ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 1)
async def incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    def ops(resource: Any) -> Change | None:
        kind = int(resource.resource_type)
        return None if kind == BROKER_LOGGER else _incremental(kind, resource.configs)

    responses = _respond_each(ctx, request, ops,
                              lambda c: int(c.config_operation) == DELETE)
    return ctx.respond(responses=responses)

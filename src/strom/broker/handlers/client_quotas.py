"""DescribeClientQuotas (48) and AlterClientQuotas (49): Kafka's client quota admin.

Entities are users, client ids and (user, client id) pairs, a null name being the
default entity of its type; they are stored by Kafka's entity path
(`strom.cluster.quotas`) through `MetadataStore.set_client_quotas` and enforced by
`strom.broker.quotas`.

Describe filters as Kafka's ClientQuotasImage does: EXACT and DEFAULT components must
match the entity's name for that type, SPECIFIED (any) only needs the type; strict
filters also need the entity to have no other type. Alter checks each entry as Kafka's
ClientQuotaControlManager does (the entity, its combination of types, each key for it,
integral byte rates) and answers per entity with Kafka's INVALID_REQUEST messages;
`validate_only` checks without writing. IP entities (connection-rate quotas) are
described as none and refused on alteration: Strom has no connection-rate quotas.
"""

from __future__ import annotations

import math
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.cluster.quotas import (
    CLIENT_ID,
    DOUBLE_KEYS,
    IP,
    LONG_KEYS,
    USER,
    Entity,
    entity_of,
    entity_path,
    format_value,
    parse_value,
)
from strom.protocol.api_keys import ApiKey

ENTITY_TYPES = (USER, CLIENT_ID, IP)
EXACT, DEFAULT, ANY = 0, 1, 2
Refusal = tuple[ErrorCode, str]


class _Filter:
    """A checked DescribeClientQuotas filter: exact names (None: the default) and types."""

    def __init__(self, components: tuple[Any, ...]) -> None:
        self.exact: dict[str, str | None] = {}
        self.types: set[str] = set()
        self.error: Refusal | None = None
        for component in components:
            self.error = self._add(component)
            if self.error is not None:
                return
        kinds = set(self.exact) | self.types
        if IP in kinds and kinds & {USER, CLIENT_ID}:
            self.error = (ErrorCode.invalid_request,
                          "Invalid entity filter component combination. IP filter component "
                          "should not be used with user or clientId filter component.")

    def _add(self, component: Any) -> Refusal | None:
        """Kafka's checks of one component, in its order; None when it is valid."""
        kind, match_type, match = component.entity_type, int(component.match_type), component.match
        if not kind:
            return ErrorCode.invalid_request, "Invalid empty entity type."
        if kind in self.exact or kind in self.types:
            return (ErrorCode.invalid_request,
                    f"Entity type {kind} cannot appear more than once in the filter.")
        if kind not in ENTITY_TYPES:
            return ErrorCode.unsupported_version, f"Unsupported entity type {kind}"
        if match_type == EXACT:
            if match is None:
                return (ErrorCode.invalid_request,
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.")
            self.exact[kind] = match
        elif match_type in (DEFAULT, ANY):
            if match is not None:
                name = "MATCH_TYPE_DEFAULT" if match_type == DEFAULT else "MATCH_TYPE_SPECIFIED"
                return (ErrorCode.invalid_request,
                        f"Request specified {name}, but also specified a match string.")
            if match_type == DEFAULT:
                self.exact[kind] = None
            else:
                self.types.add(kind)
        else:
            return ErrorCode.invalid_request, f"Unknown match type {match_type}"
        return None

    def matches(self, entity: Entity, strict: bool) -> bool:
        names = dict(entity)
        if strict and len(names) != len(self.exact) + len(self.types):
            return False
        for kind, name in self.exact.items():
            if kind not in names or names[kind] != name:
                return False
        return all(kind in names for kind in self.types)


def _entity_data(entity: Entity) -> list[dict[str, Any]]:
    """User first, then client id (the order Kafka's tools print)."""
    return [{"entity_type": kind, "entity_name": name}
            for kind, name in sorted(entity, key=lambda e: e[0] != USER)]


@dispatch.handles(ApiKey.DESCRIBE_CLIENT_QUOTAS, 0, 1)
async def describe_client_quotas(ctx: RequestContext, request: Any) -> Any:
    matcher = _Filter(request.components)
    if matcher.error is not None:
        return ctx.respond(throttle_time=0, error_code=matcher.error[0],
                           error_message=matcher.error[1], entries=None)
    strict = bool(request.strict)
    entries = []
    for path, quotas in sorted(ctx.metadata.image().client_quotas.items()):
        entity = entity_of(path)
        if quotas and matcher.matches(entity, strict):
            entries.append({"entity": _entity_data(entity),
                            "values": [{"key": k, "value": parse_value(v)}
                                       for k, v in sorted(quotas.items())]})
    return ctx.respond(throttle_time=0, error_code=ErrorCode.none, error_message="",
                       entries=entries)


def _java_entity(names: dict[str, str | None]) -> str:
    """ClientQuotaEntity's toString (a Java HashMap: client-id sorts before user)."""
    order = {CLIENT_ID: 0, USER: 1, IP: 2}
    inner = ", ".join(f"{k}={'null' if v is None else v}"
                      for k, v in sorted(names.items(), key=lambda kv: order.get(kv[0], 3)))
    return f"ClientQuotaEntity(entries={{{inner}}})"


def _entity_error(names: dict[str, str | None]) -> Refusal | None:
    """Kafka's validateEntity and configKeysForEntityType, in its order."""
    if not names:
        return ErrorCode.invalid_request, "Invalid empty client quota entity"
    for kind, name in names.items():
        if kind not in ENTITY_TYPES:
            return (ErrorCode.invalid_request,
                    f"Unhandled client quota entity type: {kind}")
        if name is not None and not name:
            return ErrorCode.invalid_request, f"Empty {kind} not supported"
    if IP in names:
        if len(names) > 1:
            return ErrorCode.invalid_request, "Invalid empty client quota entity"
        return ErrorCode.invalid_request, "IP (connection rate) quotas are not supported"
    return None


def _value_error(key: str, value: float) -> Refusal | None:
    """Kafka 4.4's validateQuotaKeyValue: a known key; byte rates integral longs."""
    if key not in LONG_KEYS and key not in DOUBLE_KEYS:
        return ErrorCode.invalid_request, f"Invalid configuration key {key}"
    if key in LONG_KEYS:
        if value > 2**63 - 1:
            return (ErrorCode.invalid_request,
                    f"Proposed value for {key} is too large for a LONG.")
        if abs(math.fmod(value, 1.0)) > 1e-6:
            return ErrorCode.invalid_request, f"{key} cannot be a fractional value."
    return None


def _altered(entry: Any, names: dict[str, str | None], current: dict[str, str]
             ) -> tuple[dict[str, str] | None, Refusal | None]:
    """The entity's new quota set, or the refusal of this entry."""
    error = _entity_error(names)
    if error is not None:
        return None, error
    ops: dict[str, float | None] = {}
    for op in entry.ops:
        if op.key in ops:
            return None, (ErrorCode.invalid_request,
                          f"Ignoring duplicate entity {_java_entity(names)}")
        ops[op.key] = None if op.remove else float(op.value)
    updated = dict(current)
    for key, value in ops.items():
        if value is None:
            updated.pop(key, None)
            continue
        error = _value_error(key, value)
        if error is not None:
            return None, error
        updated[key] = format_value(key, value)
    return updated, None


@dispatch.handles(ApiKey.ALTER_CLIENT_QUOTAS, 0, 1)
async def alter_client_quotas(ctx: RequestContext, request: Any) -> Any:
    image_quotas = ctx.metadata.image().client_quotas
    results: dict[Entity, dict[str, Any]] = {}  # one answer per entity, as Kafka's map
    for entry in request.entries:
        names = {e.entity_type: e.entity_name for e in entry.entity}
        key = tuple(sorted(names.items(), key=lambda kv: kv[0]))
        path = entity_path(key) if _entity_error(names) is None else None
        updated: dict[str, str] | None = None
        error: Refusal | None = (ErrorCode.invalid_request,
                                 f"Ignoring duplicate entity {_java_entity(names)}")
        if key not in results:
            current = image_quotas.get(path, {}) if path is not None else {}
            updated, error = _altered(entry, names, current)
        if error is None and updated is not None and path is not None \
                and not request.validate_only and updated != image_quotas.get(path, {}):
            ctx.metadata.set_client_quotas(path, updated)
        results[key] = {"error_code": error[0] if error else ErrorCode.none,
                        "error_message": error[1] if error else None,
                        "entity": [{"entity_type": k, "entity_name": n} for k, n in key]}
    return ctx.respond(throttle_time=0, entries=list(results.values()))

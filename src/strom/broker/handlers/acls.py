"""DescribeAcls (29), CreateAcls (30) and DeleteAcls (31): ACL administration.

The ACLs live in the metadata store (`strom.cluster.acls`, Kafka's ZooKeeper layout in
cluster mode). As in Kafka: without an authorizer every answer is SECURITY_DISABLED;
creating and deleting need Alter on the cluster, describing needs Describe on it
(CLUSTER_AUTHORIZATION_FAILED otherwise); a binding or filter with UNKNOWN/ANY where a
concrete value is needed is INVALID_REQUEST.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.broker.security.authorizer import for_request, host_of
from strom.cluster.acls import (
    CLUSTER_NAME,
    CODE,
    OPERATIONS,
    PATTERN_TYPES,
    PERMISSIONS,
    RESOURCE_TYPES,
    Ace,
    BindingFilter,
    Resource,
)
from strom.protocol.api_keys import ApiKey

_DISABLED = "No Authorizer is configured on the broker"
_CLUSTER_DENIED = "Cluster authorization failed."


def _refusal(ctx: RequestContext, operation: str) -> tuple[ErrorCode, str] | None:
    """SECURITY_DISABLED or CLUSTER_AUTHORIZATION_FAILED, or None to go ahead."""
    authorizer = for_request(ctx)
    if authorizer is None:
        return ErrorCode.security_disabled, _DISABLED
    if not authorizer.authorize(ctx.principal, host_of(ctx.peer), operation, "Cluster",
                                CLUSTER_NAME):
        return ErrorCode.cluster_authorization_failed, _CLUSTER_DENIED
    return None


@dispatch.handles(ApiKey.DESCRIBE_ACLS, 1, 3)
async def describe_acls(ctx: RequestContext, request: Any) -> Any:
    refused = _refusal(ctx, "Describe")
    if refused is None and _unknown_in_filter(request.resource_type_filter,
                                              request.pattern_type_filter,
                                              request.operation, request.permission_type):
        refused = ErrorCode.invalid_request, "Filter contains UNKNOWN elements"
    if refused is not None:
        return ctx.respond(throttle_time=0, error_code=refused[0], error_message=refused[1],
                           resources=[])
    wanted = BindingFilter(int(request.resource_type_filter), request.resource_name_filter,
                           int(request.pattern_type_filter), request.principal_filter,
                           request.host_filter, int(request.operation),
                           int(request.permission_type))
    resources = []
    for resource, entries in sorted(ctx.metadata.image().acls.items()):
        found = sorted(a for a in entries if wanted.matches(resource, a))
        if found and wanted.matches_resource(resource):
            resources.append({
                "resource_type": CODE[resource.type], "resource_name": resource.name,
                "pattern_type": CODE[resource.pattern],
                "acls": [{"principal": a.principal, "host": a.host,
                          "operation": CODE[a.operation],
                          "permission_type": CODE[a.permission]} for a in found]})
    return ctx.respond(throttle_time=0, error_code=ErrorCode.none, error_message=None,
                       resources=resources)


def _unknown_in_filter(*codes: int) -> bool:
    return any(int(code) == 0 for code in codes)


@dispatch.handles(ApiKey.CREATE_ACLS, 1, 3)
async def create_acls(ctx: RequestContext, request: Any) -> Any:
    refused = _refusal(ctx, "Alter")
    if refused is not None:
        return ctx.respond(throttle_time=0, results=[
            {"error_code": refused[0], "error_message": refused[1]} for _ in request.creations])
    additions: dict[Resource, set[Ace]] = defaultdict(set)
    results = []
    for creation in request.creations:
        binding = _binding(creation)
        if isinstance(binding, str):
            results.append({"error_code": ErrorCode.invalid_request, "error_message": binding})
            continue
        additions[binding[0]].add(binding[1])
        results.append({"error_code": ErrorCode.none, "error_message": None})
    current = ctx.metadata.image().acls
    for resource, added in additions.items():
        merged = current.get(resource, frozenset()) | added
        if merged != current.get(resource):
            ctx.metadata.set_acls(resource, merged)
    return ctx.respond(throttle_time=0, results=results)


def _binding(creation: Any) -> tuple[Resource, Ace] | str:
    """The binding a creation asks for, or why it is invalid (Kafka's messages)."""
    resource_type = RESOURCE_TYPES.get(int(creation.resource_type))
    pattern = PATTERN_TYPES.get(int(creation.resource_pattern_type))
    operation = OPERATIONS.get(int(creation.operation))
    permission = PERMISSIONS.get(int(creation.permission_type))
    if pattern is None:
        return f"Invalid patternType {int(creation.resource_pattern_type)}"
    if resource_type is None:
        return f"Invalid resourceType {int(creation.resource_type)}"
    if operation is None:
        return f"Invalid operation {int(creation.operation)}"
    if permission is None:
        return f"Invalid permissionType {int(creation.permission_type)}"
    if not creation.resource_name:
        return "Resource name should not be empty"
    if resource_type == "Cluster" and creation.resource_name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if ":" not in creation.principal:
        return f"Could not parse principal from `{creation.principal}` (no colon is present " \
               "separating the principal type from the principal name)"
    return (Resource(resource_type, pattern, creation.resource_name),
            Ace(creation.principal, creation.host, operation, permission))


@dispatch.handles(ApiKey.DELETE_ACLS, 1, 3)
async def delete_acls(ctx: RequestContext, request: Any) -> Any:
    refused = _refusal(ctx, "Alter")
    if refused is None and any(_unknown_in_filter(f.resource_type_filter,
                                                  f.pattern_type_filter, f.operation,
                                                  f.permission_type)
                               for f in request.filters):
        refused = ErrorCode.invalid_request, "Filter contains UNKNOWN elements"
    if refused is not None:
        return ctx.respond(throttle_time=0, filter_results=[
            {"error_code": refused[0], "error_message": refused[1], "matching_acls": []}
            for _ in request.filters])
    acls = dict(ctx.metadata.image().acls)
    changed: set[Resource] = set()
    results = []
    for f in request.filters:
        wanted = BindingFilter(int(f.resource_type_filter), f.resource_name_filter,
                               int(f.pattern_type_filter), f.principal_filter, f.host_filter,
                               int(f.operation), int(f.permission_type))
        matching: list[dict[str, Any]] = []
        for resource, entries in sorted(acls.items()):
            gone = sorted(a for a in entries if wanted.matches(resource, a))
            if gone:
                acls[resource] = entries.difference(gone)
                changed.add(resource)
                matching.extend(_matching(resource, a) for a in gone)
        results.append({"error_code": ErrorCode.none, "error_message": None,
                        "matching_acls": matching})
    for resource in sorted(changed):
        ctx.metadata.set_acls(resource, acls[resource])
    return ctx.respond(throttle_time=0, filter_results=results)


def _matching(resource: Resource, ace: Ace) -> dict[str, Any]:
    return {"error_code": ErrorCode.none, "error_message": None,
            "resource_type": CODE[resource.type], "resource_name": resource.name,
            "pattern_type": CODE[resource.pattern], "principal": ace.principal,
            "host": ace.host, "operation": CODE[ace.operation],
            "permission_type": CODE[ace.permission]}

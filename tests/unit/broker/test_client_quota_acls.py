"""Who may see and change client quotas (Kafka 4.4's table): DescribeClientQuotas needs
DescribeConfigs on the cluster, AlterClientQuotas AlterConfigs on the cluster; a refused
alteration answers every entity CLUSTER_AUTHORIZATION_FAILED and reaches no handler."""

from __future__ import annotations

import dataclasses
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.security.api_authorization import handle
from strom.cluster.acls import Ace, AclTable, Resource
from strom.cluster.image import MetadataImage
from strom.protocol.api_keys import ApiKey
from support.handler_context import broker_config, call, context, request

ON = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}


class _Metadata:
    def __init__(self, acls: AclTable) -> None:
        self._image = MetadataImage("c", 1, {}, {}, acls=acls)

    def image(self) -> MetadataImage:
        return self._image


def _ctx(api_key: int, *operations: str) -> RequestContext:
    acls = {Resource("Cluster", "LITERAL", "kafka-cluster"):
            frozenset(Ace("User:alice", "*", op, "Allow") for op in operations)}
    ctx = context(api_key, 1, config=broker_config(**ON), metadata=_Metadata(acls))
    return dataclasses.replace(ctx, principal="User:alice")


def _alter_body() -> Any:
    return request(ApiKey.ALTER_CLIENT_QUOTAS, 1, validate_only=False, entries=[
        {"entity": [{"entity_type": "user", "entity_name": "bob"}],
         "ops": [{"key": "producer_byte_rate", "value": 1.0, "remove": False}]},
        {"entity": [{"entity_type": "client-id", "entity_name": None}],
         "ops": [{"key": "producer_byte_rate", "value": 1.0, "remove": False}]}])


def test_alter_needs_alter_configs_on_the_cluster() -> None:
    seen: list[Any] = []

    async def handler(ctx: RequestContext, body: Any) -> Any:
        seen.append(body)
        return ctx.respond(throttle_time=0, entries=[])

    answer = call(lambda c, b: handle(c, handler, b),
                  _ctx(ApiKey.ALTER_CLIENT_QUOTAS, "DescribeConfigs"), _alter_body())
    assert seen == []
    assert [(int(e.error_code), [(d.entity_type, d.entity_name) for d in e.entity])
            for e in answer.entries] == [
        (int(ErrorCode.cluster_authorization_failed), [("user", "bob")]),
        (int(ErrorCode.cluster_authorization_failed), [("client-id", None)])]
    call(lambda c, b: handle(c, handler, b),
         _ctx(ApiKey.ALTER_CLIENT_QUOTAS, "AlterConfigs"), _alter_body())
    assert len(seen) == 1


def test_describe_needs_describe_configs_on_the_cluster() -> None:
    body = request(ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, components=[], strict=False)

    async def handler(ctx: RequestContext, _body: Any) -> Any:
        return ctx.respond(throttle_time=0, error_code=ErrorCode.none, error_message="",
                           entries=[])

    refused = call(lambda c, b: handle(c, handler, b),
                   _ctx(ApiKey.DESCRIBE_CLIENT_QUOTAS, "Describe"), body)
    assert refused.error_code == ErrorCode.cluster_authorization_failed
    allowed = call(lambda c, b: handle(c, handler, b),
                   _ctx(ApiKey.DESCRIBE_CLIENT_QUOTAS, "AlterConfigs"), body)  # implies it
    assert allowed.error_code == ErrorCode.none

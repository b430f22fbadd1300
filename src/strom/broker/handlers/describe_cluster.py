"""DescribeCluster (60): brokers, controller and cluster id for the AdminClient."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey
from strom.protocol.metadata_response import AUTHORIZED_OPERATIONS_UNKNOWN

BROKERS_ENDPOINT = 1


@dispatch.handles(ApiKey.DESCRIBE_CLUSTER, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    image = ctx.metadata.image()
    endpoint_type = int(getattr(request, "endpoint_type", BROKERS_ENDPOINT))
    if endpoint_type != BROKERS_ENDPOINT:
        return ctx.respond(error_code=ErrorCode.unsupported_endpoint_type,
                           error_message="The request was sent to a broker, not a controller",
                           endpoint_type=endpoint_type, cluster_id=image.cluster_id,
                           controller_id=-1)
    return ctx.respond(
        error_code=NONE,
        endpoint_type=endpoint_type,
        cluster_id=image.cluster_id,
        controller_id=image.controller_id,
        brokers=[{"broker_id": b.broker_id, "host": ctx.endpoint(b)[0],
                  "port": ctx.endpoint(b)[1], "rack": b.rack}
                 for b in sorted(image.brokers.values(), key=lambda b: b.broker_id)],
        cluster_authorized_operations=AUTHORIZED_OPERATIONS_UNKNOWN,
    )

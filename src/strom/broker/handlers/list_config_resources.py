"""ListConfigResources (74): which config resources exist (KIP-1142).

Kafka 4.x's `kafka-configs.sh --describe` without an entity name and
`Admin.listConfigResources` ask it. Version 0 (once ListClientMetricsResources) lists
client-metrics resources only; version 1 lists the resource types asked for, or by
default topics, brokers and broker loggers. As Kafka 4.4 answers: topics include the
internal ones, brokers and broker loggers are the live broker ids, groups are listed
only when they carry group configs (`strom.config.group`) and client-metrics resources
only when defined (Strom has none); a type Kafka cannot list is UNSUPPORTED_VERSION.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.cluster.image import MetadataImage
from strom.protocol.api_keys import ApiKey

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
LISTABLE = frozenset({TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP})
DEFAULT_TYPES = (TOPIC, BROKER, BROKER_LOGGER)


def _names(image: MetadataImage, kind: int) -> list[str]:
    if kind == TOPIC:
        return [topic.name for topic in image.topics_by_name]
    if kind in (BROKER, BROKER_LOGGER):
        return [str(broker_id) for broker_id in sorted(image.brokers)]
    if kind == GROUP:
        return sorted(image.group_configs)
    return []  # no client-metrics resources exist in Strom


@dispatch.handles(ApiKey.LIST_CONFIG_RESOURCES, 0, 1)
async def list_config_resources(ctx: RequestContext, request: Any) -> Any:
    if ctx.api_version == 0:
        return ctx.respond(throttle_time=0, error_code=NONE, config_resources=[])
    kinds = [int(k) for k in request.resource_types] or list(DEFAULT_TYPES)
    if any(kind not in LISTABLE for kind in kinds):
        return ctx.respond(throttle_time=0, error_code=ErrorCode.unsupported_version,
                           config_resources=[])
    image = ctx.metadata.image()
    resources = [{"resource_name": name, "resource_type": kind}
                 for kind in dict.fromkeys(kinds) for name in _names(image, kind)]
    return ctx.respond(throttle_time=0, error_code=NONE, config_resources=resources)

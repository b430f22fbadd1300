"""DescribeClientQuotas (48): the client quota configs that match a filter.

Strom enforces no client quotas and keeps none, so every valid filter matches nothing:
`kafka-configs.sh --describe --entity-type clients` (and `ips`, and the quota part of
`users`) prints an empty answer, as it does against a Kafka broker with no quotas set,
instead of failing on a missing API. The filter is checked with Kafka 4.4's answers.
AlterClientQuotas is not served: a quota that is not enforced must not be accepted.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey

ENTITY_TYPES = ("user", "client-id", "ip")
EXACT, DEFAULT, ANY = 0, 1, 2


def _filter_error(components: tuple[Any, ...]) -> tuple[ErrorCode, str] | None:
    """Kafka's checks of a quota filter, in its order; None when the filter is valid."""
    seen: set[str] = set()
    for component in components:
        kind, match_type, match = component.entity_type, int(component.match_type), component.match
        if kind not in ENTITY_TYPES:
            return ErrorCode.unsupported_version, f"Unsupported entity type {kind}"
        if kind in seen:
            return (ErrorCode.invalid_request,
                    f"Entity type {kind} cannot appear more than once in the filter.")
        seen.add(kind)
        if match_type == EXACT and match is None:
            return (ErrorCode.invalid_request,
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.")
        if match_type in (DEFAULT, ANY) and match is not None:
            name = "MATCH_TYPE_DEFAULT" if match_type == DEFAULT else "MATCH_TYPE_SPECIFIED"
            return (ErrorCode.invalid_request,
                    f"Request specified {name}, but also specified a match string.")
        if match_type not in (EXACT, DEFAULT, ANY):
            return ErrorCode.invalid_request, f"Unknown match type {match_type}"
    if "ip" in seen and seen & {"user", "client-id"}:
        return (ErrorCode.invalid_request,
                "Invalid entity filter component combination. IP filter component should not "
                "be used with user or clientId filter component.")
    return None


@dispatch.handles(ApiKey.DESCRIBE_CLIENT_QUOTAS, 0, 1)
async def describe_client_quotas(ctx: RequestContext, request: Any) -> Any:
    refused = _filter_error(request.components)
    if refused is not None:
        return ctx.respond(throttle_time=0, error_code=refused[0], error_message=refused[1],
                           entries=None)
    return ctx.respond(throttle_time=0, error_code=ErrorCode.none, error_message="",
                       entries=[])

"""InitProducerId (22): producer ids for idempotent producers.

Transactional producers need the transaction coordinator, which does not exist yet;
they are refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED and a message, not with a
half-working answer.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey


@dispatch.handles(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if request.transactional_id is not None:
        return ctx.respond(error_code=ErrorCode.transactional_id_authorization_failed,
                           producer_id=-1, producer_epoch=-1)
    producer_id = ctx.producer_ids.next_id()
    return ctx.respond(error_code=NONE, producer_id=producer_id, producer_epoch=0)

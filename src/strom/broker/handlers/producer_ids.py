"""InitProducerId (22): producer ids for idempotent and transactional producers.

Without a transactional id the broker hands out a fresh producer id at epoch 0. With
one, the transaction coordinator answers (a new id or an epoch bump, fencing the
previous instance; KIP-360 recovery when the request names its last id and epoch). As
in Kafka, PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH to versions below 4.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.handlers.common import NONE
from strom.broker.handlers.transactions import face, fenced_for
from strom.broker.network import dispatch
from strom.protocol.api_keys import ApiKey


def _ms(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return int(value / datetime.timedelta(milliseconds=1))
    return int(value)


@dispatch.handles(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if request.transactional_id is None:
        producer_id = ctx.producer_ids.next_id()
        return ctx.respond(error_code=NONE, producer_id=producer_id, producer_epoch=0)
    txns = face(ctx)
    if not request.transactional_id or txns is None:
        error = ErrorCode.invalid_request if txns else ErrorCode.coordinator_not_available
        return ctx.respond(error_code=error, producer_id=-1, producer_epoch=-1)
    producer_id = int(getattr(request, "producer_id", -1))
    epoch = int(getattr(request, "producer_epoch", -1))
    expected = (producer_id, epoch) if producer_id >= 0 and epoch >= 0 else None
    result = await txns.coordinator.init_producer_id(
        request.transactional_id, _ms(request.transaction_timeout), expected)
    return ctx.respond(error_code=fenced_for(result.error, ctx.api_version, 4),
                       producer_id=result.producer_id, producer_epoch=result.producer_epoch)

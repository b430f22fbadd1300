"""Where Produce and Fetch meet the quota managers: record, decide, mute.

Kept apart from the handlers so each of them adds two calls; with no quota configured for
a key these return at the first attribute read.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from strom.broker.quotas import quota_user

if TYPE_CHECKING:
    from strom.broker.context import RequestContext
    from strom.broker.quotas.manager import ClientQuotaManager


def produce_throttle(ctx: RequestContext) -> int:
    """Record a Produce request's size; the throttle time to answer with (the
    connection is muted for it)."""
    quotas = ctx.services.quotas
    if quotas is None or not quotas.produce.enabled:
        return 0
    return _record(ctx, quotas.produce, ctx.size, quotas.now_ms())


def fetch_byte_cap(ctx: RequestContext) -> int | None:
    """The most a consumer's Fetch may return under its quota (Kafka caps the fetch
    size so that one response cannot exceed a whole quota window); None: no cap."""
    quotas = ctx.services.quotas
    if quotas is None or not quotas.fetch.enabled:
        return None
    cap = quotas.fetch.max_value_in_window(quota_user(ctx.principal), ctx.client_id or "",
                                           quotas.now_ms())
    return None if cap is None else int(min(cap, 2**31 - 1))


def fetch_throttle(ctx: RequestContext, response_size: int) -> int:
    """Record a consumer Fetch response's size; when throttled the value is taken back,
    since the answer is then empty (as Kafka answers a throttled fetch)."""
    quotas = ctx.services.quotas
    if quotas is None or not quotas.fetch.enabled:
        return 0
    now_ms = quotas.now_ms()
    throttle = _record(ctx, quotas.fetch, response_size, now_ms)
    if throttle > 0:
        quotas.fetch.unrecord(quota_user(ctx.principal), ctx.client_id or "", response_size,
                              now_ms)
    return throttle


def _record(ctx: RequestContext, manager: ClientQuotaManager, value: int, now_ms: int) -> int:
    user, client_id = quota_user(ctx.principal), ctx.client_id or ""
    throttle = manager.record(user, client_id, value, now_ms)
    if throttle > 0:
        manager.throttled(user, client_id, throttle, now_ms)
        if ctx.mute is not None:
            ctx.mute(throttle)
    return throttle


async def hold_for_old_clients(ctx: RequestContext, throttle_ms: int, client_throttles_from: int
                               ) -> None:
    """Clients older than KIP-219 (Produce below v6, Fetch below v8) do not back off on
    their own: Kafka holds their answer for the throttle time instead."""
    if throttle_ms > 0 and ctx.api_version < client_throttles_from:
        await asyncio.sleep(throttle_ms / 1000)

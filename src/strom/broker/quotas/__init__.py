"""Client quotas (Kafka's byte-rate quotas for produce and fetch, KIP-13/KIP-55/KIP-219).

`ClientQuotas` holds one `manager.ClientQuotaManager` per enforced key and follows the
metadata image's `client_quotas`. Produce records the request's size, a consumer's Fetch
its response's size; a client over its quota is answered at once with `throttle_time_ms`
and its connection is muted for that long (KIP-219: the client backs off as well).
`request_percentage` and `controller_mutation_rate` are stored and described, not
enforced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from strom.broker.quotas.manager import ClientQuotaManager
from strom.cluster.quotas import CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE

if TYPE_CHECKING:
    from strom.cluster.image import MetadataImage
    from strom.config.broker import BrokerConfig


def quota_user(principal: str) -> str:
    """The user a quota is keyed by: the principal's name (`User:alice` → alice)."""
    return principal.partition(":")[2] or principal


class ClientQuotas:
    """This broker's quota managers (`produce`, `fetch`), fed by every image."""

    def __init__(self, config: BrokerConfig | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.now_ms: Callable[[], int] = clock or (lambda: int(time.time() * 1000))
        samples = int(_setting(config, "quota.window.num", "11"))
        window_ms = int(_setting(config, "quota.window.size.seconds", "1")) * 1000
        self.produce = ClientQuotaManager(PRODUCER_BYTE_RATE, samples, window_ms)
        self.fetch = ClientQuotaManager(CONSUMER_BYTE_RATE, samples, window_ms)
        self._seen: object = None

    def on_image(self, image: MetadataImage) -> None:
        quotas = image.client_quotas
        if quotas is self._seen:
            return
        self._seen = quotas
        self.produce.update(quotas)
        self.fetch.update(quotas)


def _setting(config: BrokerConfig | None, name: str, default: str) -> str:
    if config is None:
        return default
    return config.raw(name) or default

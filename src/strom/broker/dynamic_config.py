"""Dynamic broker configs on a running broker: from the metadata store into
`BrokerConfig`, and from there to the parts that keep a setting.

The store carries the cluster-wide defaults and this broker's own dynamic configs in
every image (`MetadataImage.broker_configs`). `follow` applies them before the logs load
(so a dynamic log.retention.ms is in force from the first retention pass) and on every
later image, ahead of every other subscriber. `BrokerConfig.set_dynamic` then tells its
subscribers which names changed; the ones wired here are the partitions' log configs and
produce policies (every topic config that falls back to a broker synonym) and the
connection limits. Anything else that keeps a broker setting subscribes the same way
(`BrokerConfig.subscribe`): the log cleaner is to read log.cleaner.* from there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from strom.config.broker import BrokerConfig, BrokerConfigChange
from strom.config.topic import BROKER_SYNONYMS

if TYPE_CHECKING:
    from strom.cluster.image import MetadataImage

LOG_SETTINGS = frozenset(BROKER_SYNONYMS) | {"strom.decompression.max.bytes"}
CONNECTION_LIMITS = frozenset({"max.connections", "max.connections.per.ip",
                               "max.connections.per.ip.overrides"})


class ImageSource(Protocol):
    def image(self) -> MetadataImage: ...

    def subscribe(self, listener: Callable[[MetadataImage], None]) -> None: ...


class LogSettings(Protocol):
    def reconfigure_logs(self) -> None: ...


class Limits(Protocol):
    def reconfigure(self, config: BrokerConfig) -> None: ...


def follow(config: BrokerConfig, store: ImageSource, broker_id: int, logs: LogSettings,
           limits: Limits) -> None:
    """Apply the store's dynamic broker configs now and on every image; reconfigure the
    partitions and the connection limits when a setting of theirs changes."""
    def apply(image: MetadataImage) -> None:
        config.set_dynamic(image.dynamic_broker_configs(None),
                           image.dynamic_broker_configs(broker_id))

    def on_change(change: BrokerConfigChange) -> None:
        if change.touches(*LOG_SETTINGS):
            logs.reconfigure_logs()
        if change.touches(*CONNECTION_LIMITS):
            limits.reconfigure(config)

    config.subscribe(on_change)
    apply(store.image())
    store.subscribe(apply)

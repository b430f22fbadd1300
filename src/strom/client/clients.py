"""`KafkaClients`: configured confluent-kafka clients for one cluster, which fail fast.

One object per application (or CLI command) and cluster. It builds AdminClient,
Producer and Consumer from the same `ClientSettings` (see `config`), shares one
`BrokerHealth` as their error callback, and offers the waits of `waits` bound to them:
a missing broker ends any of them within seconds, as `BrokerUnreachableError`.

confluent-kafka is imported when the first client is made, not with this module, so
importing `strom.client` costs nothing in processes that never open a client.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from strom.client import waits
from strom.client.config import (
    ADMIN_DEFAULTS,
    DEFAULT_BOOTSTRAP_SERVERS,
    DEFAULT_CLIENT_ID,
    DEFAULT_TIMEOUT_S,
    ClientSettings,
    build_config,
)
from strom.client.errors import RETRIABLE, KafkaClientError, as_client_error, hint_for, is_retriable
from strom.client.health import BrokerHealth

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient

T = TypeVar("T")
C = TypeVar("C")


class KafkaClients:
    """Factory for configured clients plus fail-fast waits on their results."""

    def __init__(self, bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS,
                 properties: Mapping[str, Any] | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_S, client_id: str = DEFAULT_CLIENT_ID) -> None:
        self.settings = ClientSettings(bootstrap_servers, dict(properties or {}), timeout,
                                       client_id)
        self.health = BrokerHealth(bootstrap_servers)
        self._admin: AdminClient | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def timeout(self) -> float:
        """Seconds a request may take: the `request_timeout` to pass to admin calls."""
        return self.settings.timeout

    # --- clients ----------------------------------------------------------------------

    def config(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The librdkafka config of a client of this group (see `config.build_config`)."""
        return build_config(self.settings, defaults, error_cb=self.health.on_error)

    def admin(self) -> AdminClient:
        """The AdminClient, made on first use and kept (admin calls are cheap to share)."""
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = _made(AdminClient, self.config(ADMIN_DEFAULTS), self.bootstrap_servers)
        return self._admin

    def producer(self, defaults: Mapping[str, Any] | None = None) -> Producer:
        """A new Producer; `defaults` under the caller's properties."""
        from confluent_kafka import Producer

        return _made(Producer, self.config(defaults), self.bootstrap_servers)

    def consumer(self, defaults: Mapping[str, Any] | None = None) -> Consumer:
        """A new Consumer; `defaults` (at least `group.id`) under the caller's properties."""
        from confluent_kafka import Consumer

        return _made(Consumer, self.config(defaults), self.bootstrap_servers)

    # --- waits ------------------------------------------------------------------------

    def check(self) -> None:
        """Raise if the clients reported that no broker can be reached (see `health`)."""
        self.health.check()

    def wait(self, futures: Iterable[concurrent.futures.Future[Any]],
             timeout: float | None = None) -> None:
        """Wait for admin futures; raise early if the brokers are down."""
        waits.wait_futures(futures, self.health, self._timeout(timeout), self._admin_poll())

    def result(self, future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
        """One admin future's result; its failure as KafkaClientError."""
        return waits.result(future, self.health, self._timeout(timeout), self._admin_poll())

    def flush(self, producer: waits.Flushable, timeout: float | None = None) -> None:
        """Deliver what `producer` holds; raise early if the brokers are down."""
        waits.flush(producer, self.health, timeout)

    def list_topics(self, topic: str | None = None,
                    client: waits.MetadataSource | None = None) -> Any:
        """ClusterMetadata from `client` (the admin client by default)."""
        source = client if client is not None else self.admin()
        return waits.list_topics(source, self.health, self.timeout, topic)

    def topic_metadata(self, topics: Iterable[str],
                       client: waits.MetadataSource | None = None) -> dict[str, Any]:
        """TopicMetadata of each named topic; a missing one raises KafkaClientError.

        `client` is the admin client by default; pass a producer to let the broker
        auto-create the topic where it is configured to (as producing would).
        """
        found: dict[str, Any] = {}
        for topic in topics:
            info = self.list_topics(topic, client).topics.get(topic)
            if info is None or info.error is not None:
                raise self._topic_error(topic, info.error if info is not None else None)
            found[topic] = info
        return found

    def _topic_error(self, topic: str, error: Any) -> KafkaClientError:
        name = error.name() if error is not None else "UNKNOWN_TOPIC_OR_PART"
        message = (f"topic {topic!r} does not exist" if name.startswith("UNKNOWN")
                   else f"topic {topic!r}: {error.str() if error else name}")
        retriable = is_retriable(error) if error is not None else name in RETRIABLE
        return KafkaClientError(message, name=name, retriable=retriable, resource=topic,
                                hint=hint_for(name, self.bootstrap_servers))

    def _timeout(self, timeout: float | None) -> float:
        return timeout if timeout is not None else self.timeout

    def _admin_poll(self) -> Callable[[float], object] | None:
        return self._admin.poll if self._admin is not None else None


def _made(factory: Callable[[dict[str, Any]], C], conf: dict[str, Any],
          bootstrap_servers: str) -> C:
    """A client from its config; a refused config (an unknown property) as KafkaClientError."""
    try:
        return factory(conf)
    except Exception as exc:  # KafkaException(_INVALID_ARG), or TypeError/ValueError
        error = as_client_error(exc, bootstrap_servers=bootstrap_servers)
        if error is None:
            raise
        raise error from exc

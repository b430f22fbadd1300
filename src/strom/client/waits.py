"""Waiting on librdkafka in short slices, checking the brokers' health in between.

A plain `future.result(timeout)` or `producer.flush(timeout)` blocks for the whole
timeout when no broker is up. These loops wait 50-500 ms at a time, poll the client
(which runs its error callback), and ask `BrokerHealth.check()` whether a report makes
waiting pointless; only then do they count against the deadline. Every function raises
`KafkaClientError` (or its subclasses), never a confluent-kafka exception.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from strom.client.errors import ClientTimeoutError, as_client_error, kafka_error_of
from strom.client.health import BrokerHealth

T = TypeVar("T")
SLICE_S = 0.05
METADATA_SLICE_S = 0.5


class Flushable(Protocol):
    """A Producer, as far as draining it goes."""

    def flush(self, timeout: float = ...) -> int: ...


class MetadataSource(Protocol):
    """An AdminClient, Producer or Consumer, as far as asking for metadata goes."""

    def list_topics(self, topic: str | None = ..., timeout: float = ...) -> Any: ...

    def poll(self, timeout: float = ...) -> Any: ...


def wait_futures(futures: Iterable[concurrent.futures.Future[Any]], health: BrokerHealth,
                 timeout: float, poll: Callable[[float], object] | None = None) -> None:
    """Wait until every future is done; `poll` (an AdminClient's) runs its callbacks.

    Raises BrokerUnreachableError as soon as the clients report that no broker can be
    reached, ClientTimeoutError after `timeout` seconds.
    """
    pending = set(futures)
    deadline = time.monotonic() + timeout
    while pending:
        _, pending = concurrent.futures.wait(pending, timeout=SLICE_S)
        if poll is not None:
            poll(0)
        if pending:
            health.check()
            if time.monotonic() > deadline:
                raise ClientTimeoutError(health.bootstrap_servers, timeout)


def result(future: concurrent.futures.Future[T], health: BrokerHealth, timeout: float,
           poll: Callable[[float], object] | None = None) -> T:
    """The future's result after `wait_futures`; its failure as a KafkaClientError."""
    wait_futures([future], health, timeout, poll)
    try:
        return future.result()
    except Exception as exc:  # an admin future fails with KafkaException
        raise _client_error(exc, health) from exc


def flush(producer: Flushable, health: BrokerHealth, timeout: float | None = None) -> None:
    """Deliver everything the producer holds (each record ends by its own
    `message.timeout.ms` unless `timeout` ends the wait first)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while producer.flush(0.1) > 0:
        health.check()
        if deadline is not None and time.monotonic() > deadline:
            raise ClientTimeoutError(health.bootstrap_servers, timeout or 0.0)


def list_topics(client: MetadataSource, health: BrokerHealth, timeout: float,
                topic: str | None = None) -> Any:
    """ClusterMetadata (of one topic, or all), asked in slices with the client polled in
    between, so that a broker-down report ends the wait."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.list_topics(topic, METADATA_SLICE_S)
        except KafkaException as exc:
            error = kafka_error_of(exc)
            client.poll(0)
            health.check()
            if error is None or error.name() != "_TIMED_OUT":
                raise _client_error(exc, health) from exc
            if time.monotonic() > deadline:
                raise ClientTimeoutError(health.bootstrap_servers, timeout) from exc


def _client_error(exc: Exception, health: BrokerHealth) -> Exception:
    """A client's exception as KafkaClientError; anything else unchanged."""
    return as_client_error(exc, bootstrap_servers=health.bootstrap_servers) or exc

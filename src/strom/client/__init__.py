"""Strom's Kafka client plumbing, shared by the CLI, Streams, Connect and the console.

It wraps confluent-kafka (librdkafka) rather than speaking the protocol itself, and adds
what every tool on it needs and librdkafka does not give:

- `config`: one way to build AdminClient/Producer/Consumer configs (`ClientSettings`).
- `clients`: `KafkaClients`, the configured clients of one cluster and waits on them.
- `health`, `waits`: a missing broker ends a wait within seconds, not at its timeout.
- `errors`: one exception type, `KafkaClientError`, with Kafka's error name, a
  retriable flag and a hint.
- `admin`: admin results per resource, offsets, create-if-missing.
- `logs`: librdkafka's log lines as Python logging records.

This package is a library: no terminal output, no exit codes, no command-line types.
It never imports the broker's packages (an import-linter contract says so), and
imports confluent-kafka only when a client is made.

    from strom.client import KafkaClients
    clients = KafkaClients("localhost:9092")
    producer = clients.producer({"acks": "all"})
    producer.produce("orders", b"hello")
    clients.flush(producer)
"""

from strom.client.clients import KafkaClients
from strom.client.config import ClientSettings, build_config
from strom.client.errors import (
    BrokerUnreachableError,
    ClientTimeoutError,
    KafkaClientError,
    as_client_error,
)

__all__ = [
    "BrokerUnreachableError",
    "ClientSettings",
    "ClientTimeoutError",
    "KafkaClientError",
    "KafkaClients",
    "as_client_error",
    "build_config",
]

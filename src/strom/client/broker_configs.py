"""Dynamic broker configs from the client side: describe and change them for one broker
or for the cluster-wide default (Kafka's KIP-226, the BROKER config resource).

A broker's own configs ("<id>") go through confluent-kafka's AdminClient, which sends
them to that broker. The cluster-wide default is the BROKER resource with an empty name,
which librdkafka refuses to build; those two requests (DescribeConfigs v4,
IncrementalAlterConfigs v1) are sent here over a connection of our own to a bootstrap
broker (any broker answers for the default), with the same TLS and SASL properties.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.client.admin import config_source, results
from strom.client.clients import KafkaClients
from strom.client.errors import KafkaClientError, hint_for

DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 44
BROKER_RESOURCE = 4
SET, DELETE = 0, 1
SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC", 2: "DYNAMIC_BROKER", 3: "DYNAMIC_DEFAULT_BROKER",
           4: "STATIC_BROKER", 5: "DEFAULT", 6: "DYNAMIC_BROKER_LOGGER"}


@dataclass(frozen=True)
class BrokerConfigEntry:
    """One broker config as DescribeConfigs reports it; `source` is Kafka's name without
    `_CONFIG` (DEFAULT, STATIC_BROKER, DYNAMIC_DEFAULT_BROKER, DYNAMIC_BROKER);
    `synonyms` are (name, value, source) from the highest level down."""

    name: str
    value: str | None
    source: str
    read_only: bool
    sensitive: bool
    synonyms: tuple[tuple[str, str | None, str], ...] = ()

    @property
    def dynamic(self) -> bool:
        """Whether it can be changed without a restart."""
        return not self.read_only


def describe_broker_configs(clients: KafkaClients, broker_id: int | None
                            ) -> list[BrokerConfigEntry]:
    """Every config of broker `broker_id` with its value and source, or (None) the
    cluster-wide dynamic defaults."""
    if broker_id is None:
        return _describe_default(clients)
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource("BROKER", str(broker_id))
    futures = clients.admin().describe_configs([resource], request_timeout=clients.timeout)
    entries = next(iter(_results(clients, futures, broker_id).values()))
    return sorted((_entry_of(e) for e in entries.values()), key=lambda e: e.name)


def alter_broker_configs(clients: KafkaClients, broker_id: int | None,
                         set_configs: Mapping[str, str], delete: Iterable[str] = (), *,
                         validate_only: bool = False) -> None:
    """Set and remove dynamic configs of broker `broker_id` or (None) the cluster-wide
    defaults, in one request; only the named configs change. A refusal (a config that
    needs a restart, a bad value) raises KafkaClientError with the broker's message."""
    ops: list[tuple[str, int, str | None]] = [(n, SET, v) for n, v in set_configs.items()]
    ops += [(name, DELETE, None) for name in delete]
    if broker_id is None:
        _alter_default(clients, ops, validate_only)
        return
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    kinds = {SET: AlterConfigOpType.SET, DELETE: AlterConfigOpType.DELETE}
    resource = ConfigResource("BROKER", str(broker_id), incremental_configs=[
        ConfigEntry(name, value, incremental_operation=kinds[op]) for name, op, value in ops])
    futures = clients.admin().incremental_alter_configs(
        [resource], request_timeout=clients.timeout, validate_only=validate_only)
    _results(clients, futures, broker_id)


def _results(clients: KafkaClients, futures: Mapping[Any, Any], broker_id: int) -> dict[Any, Any]:
    """The admin results; a failure names `broker N` rather than the bare resource id."""
    try:
        return results(clients, futures)
    except KafkaClientError as exc:
        if exc.resource == str(broker_id):
            exc.message = exc.message.replace(f"{broker_id}: ", f"broker {broker_id}: ", 1)
            exc.args = (exc.message,)
            exc.resource = f"broker {broker_id}"
        raise


def _entry_of(entry: Any) -> BrokerConfigEntry:
    synonyms = tuple((s.name, s.value, config_source(s)) for s in entry.synonyms.values())
    return BrokerConfigEntry(entry.name, entry.value, config_source(entry),
                             bool(entry.is_read_only), bool(entry.is_sensitive), synonyms)


# --- the cluster-wide default, over the wire -----------------------------------------------


def _describe_default(clients: KafkaClients) -> list[BrokerConfigEntry]:
    body = _request(clients, DESCRIBE_CONFIGS, 4, {
        "include_synonyms": True, "include_documentation": False,
        "resources": [{"resource_type": BROKER_RESOURCE, "resource_name": "",
                       "configuration_keys": None}]})
    result = body.results[0]
    _raise_for(int(result.error_code), result.error_message, clients)
    return sorted((_raw_entry(e) for e in result.configs), key=lambda e: e.name)


def _raw_entry(entry: Any) -> BrokerConfigEntry:
    synonyms = tuple((s.name, s.value, SOURCES.get(int(s.source), "UNKNOWN"))
                     for s in entry.synonyms)
    return BrokerConfigEntry(entry.name, entry.value,
                             SOURCES.get(int(entry.config_source), "UNKNOWN"),
                             bool(entry.read_only), bool(entry.is_sensitive), synonyms)


def _alter_default(clients: KafkaClients, ops: list[tuple[str, int, str | None]],
                   validate_only: bool) -> None:
    body = _request(clients, INCREMENTAL_ALTER_CONFIGS, 1, {
        "validate_only": validate_only,
        "resources": [{"resource_type": BROKER_RESOURCE, "resource_name": "",
                       "configs": [{"name": n, "config_operation": op, "value": v}
                                   for n, op, v in ops]}]})
    answer = body.responses[0]
    _raise_for(int(answer.error_code), answer.error_message, clients)


def _raise_for(code: int, message: str | None, clients: KafkaClients) -> None:
    if code == 0:
        return
    from kio.schema.errors import ErrorCode

    name = ErrorCode(code).name.upper()
    raise KafkaClientError(f"cluster-wide broker configs: {message or name}", name=name,
                           resource="cluster-wide broker configs",
                           hint=hint_for(name, clients.bootstrap_servers))


def _request(clients: KafkaClients, api_key: int, version: int,
             fields: Mapping[str, Any]) -> Any:
    """One request to the first bootstrap broker that answers, over the same TLS and
    SASL as the command's librdkafka clients (`ProtocolAdmin.from_properties`)."""
    from strom.client.protocol_admin import ProtocolAdmin

    with ProtocolAdmin.from_properties(clients.bootstrap_servers, clients.settings.properties,
                                       timeout=clients.timeout,
                                       client_id=clients.settings.client_id) as admin:
        return admin.request(api_key, version, fields)

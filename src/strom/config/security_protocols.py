"""Listener names → security protocols, and the inter-broker listener.

Kafka names each listener (`NAME://host:port`) and finds its security protocol through
`listener.security.protocol.map`; a name the map does not hold is a configuration
error. Strom serves all four protocols: PLAINTEXT, SSL (`strom.broker.security.tls`),
SASL_PLAINTEXT and SASL_SSL (`strom.broker.security.authenticator`).

Brokers register every advertised listener and reach each other on the inter-broker one
(`inter.broker.listener.name`, or the first listener of `security.inter.broker.protocol`;
`strom.broker.security.peer_client` speaks its TLS and SASL); the two settings are
checked as Kafka checks them.
"""

from __future__ import annotations

from strom.config.broker import BrokerConfig, Listener, parse_listeners
from strom.config.defs import InvalidConfig

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
DEFAULT_MAP = ",".join(f"{p}:{p}" for p in PROTOCOLS)
SUPPORTED = frozenset(PROTOCOLS)


def parse_protocol_map(raw: str) -> dict[str, str]:
    """`NAME:PROTOCOL,...` with names normalised to upper case, as Kafka's ListenerName."""
    mapping: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, colon, protocol = item.rpartition(":")
        name, protocol = name.strip().upper(), protocol.strip().upper()
        if not colon or not name:
            raise InvalidConfig(
                f"listener.security.protocol.map entry {item!r} is not NAME:PROTOCOL")
        if protocol not in PROTOCOLS:
            raise InvalidConfig(
                f"listener.security.protocol.map: unknown security protocol {protocol!r} for "
                f"listener {name} (one of {', '.join(PROTOCOLS)})")
        if name in mapping:
            raise InvalidConfig(f"listener.security.protocol.map names {name} twice")
        mapping[name] = protocol
    return mapping


def protocol_map(config: BrokerConfig) -> dict[str, str]:
    return parse_protocol_map(config.raw("listener.security.protocol.map") or DEFAULT_MAP)


def security_protocol(listener: Listener, mapping: dict[str, str]) -> str:
    """The protocol of one listener; an unmapped name is Kafka's configuration error."""
    protocol = mapping.get(listener.name.upper())
    if protocol is None:
        raise InvalidConfig(
            f"no security protocol defined for listener {listener.name} "
            f"(add {listener.name}:PLAINTEXT to listener.security.protocol.map)")
    return protocol


def inter_broker_listener(config: BrokerConfig) -> str:
    """The name of the listener brokers use among themselves (Kafka's rules: the name,
    or the first listener of `security.inter.broker.protocol`, never both)."""
    name = config.props.get("inter.broker.listener.name")
    protocol = config.props.get("security.inter.broker.protocol")
    if name and protocol:
        raise InvalidConfig("Only one of inter.broker.listener.name and "
                            "security.inter.broker.protocol should be set.")
    advertised = [ln.name.upper() for ln in config.advertised_listeners]
    if name:
        if name.upper() not in advertised:
            raise InvalidConfig(f"inter.broker.listener.name must be a listener name defined "
                                f"in advertised.listeners. The valid options based on currently "
                                f"configured listeners are {','.join(advertised)}")
        return name.upper()
    wanted = (protocol or "PLAINTEXT").upper()
    mapping = protocol_map(config)
    for listener in config.advertised_listeners:
        if mapping.get(listener.name.upper()) == wanted:
            return listener.name.upper()
    return advertised[0]  # a single-protocol broker: its first listener


def check_listeners(config: BrokerConfig) -> None:
    """Raise InvalidConfig (one line) unless every listener resolves to a protocol and
    the inter-broker listener is one of them."""
    mapping = protocol_map(config)
    listeners = config.listeners
    advertised = config.raw("advertised.listeners")
    for listener in listeners + (parse_listeners(advertised) if advertised else []):
        security_protocol(listener, mapping)
    inter_broker_listener(config)

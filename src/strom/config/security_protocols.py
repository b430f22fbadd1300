"""Listener names → security protocols, and refusing the protocols Strom does not speak.

Kafka names each listener (`NAME://host:port`) and finds its security protocol through
`listener.security.protocol.map`; a name the map does not hold is a configuration
error. Strom speaks PLAINTEXT only. Serving plaintext on a listener the operator
declared as SSL or SASL would hand clients an unencrypted, unauthenticated port while
the configuration says otherwise, so such a listener stops the start instead, before
anything is bound, until TLS and SASL exist.
"""

from __future__ import annotations

from strom.config.broker import BrokerConfig, Listener, parse_listeners
from strom.config.defs import InvalidConfig

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
DEFAULT_MAP = ",".join(f"{p}:{p}" for p in PROTOCOLS)
SUPPORTED = frozenset({"PLAINTEXT"})


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


def security_protocol(listener: Listener, mapping: dict[str, str]) -> str:
    """The protocol of one listener; an unmapped name is Kafka's configuration error."""
    protocol = mapping.get(listener.name.upper())
    if protocol is None:
        raise InvalidConfig(
            f"no security protocol defined for listener {listener.name} "
            f"(add {listener.name}:PLAINTEXT to listener.security.protocol.map)")
    return protocol


def check_listeners(config: BrokerConfig) -> None:
    """Raise InvalidConfig (one line) unless every listener resolves to PLAINTEXT."""
    mapping = parse_protocol_map(config.raw("listener.security.protocol.map") or DEFAULT_MAP)
    listeners = config.listeners
    advertised = config.raw("advertised.listeners")
    for listener in listeners + (parse_listeners(advertised) if advertised else []):
        protocol = security_protocol(listener, mapping)
        if protocol not in SUPPORTED:
            raise InvalidConfig(
                f"listener {listener.name}://{listener.host}:{listener.port} uses security "
                f"protocol {protocol}, which Strom does not implement yet; only PLAINTEXT "
                "listeners can be served")

"""Certificate reload without a restart, as Kafka reloads a listener's SSL factory.

An admin rotates a listener's certificate by altering its listener-prefixed keystore or
truststore configs on the BROKER resource of one broker
(`listener.name.<l>.ssl.keystore.location`, `.ssl.keystore.password`, `.ssl.key.password`,
`.ssl.keystore.key`, `.ssl.keystore.certificate.chain`, `.ssl.truststore.*`), through
AlterConfigs or IncrementalAlterConfigs. As in Kafka:

- the change is validated first (`check_reconfiguration`): those configs only with the
  listener prefix and only per broker, the new stores must load, and a new keystore's
  certificate must keep the old one's subject DN and subject alternative names unless
  `ssl.allow.dn.changes` / `ssl.allow.san.changes` are true; refusals are
  INVALID_REQUEST with Kafka's wording;
- once in force (`BrokerConfig.subscribe`) the listener's context is rebuilt and new
  connections get it, while established ones keep the session they negotiated.

The swap happens in the TLS handshake itself: the listener's original context carries an
`sni_callback` (OpenSSL calls it for every ClientHello, with or without SNI) that moves
the connection onto the current context, so the asyncio server never restarts.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.broker.security import tls
from strom.config.broker import RELOADABLE_SSL, BrokerConfig, BrokerConfigChange
from strom.config.defs import InvalidConfig
from strom.config.dynamic import DynamicConfigRefused, java_set

log = logging.getLogger(__name__)

RELOADABLE = tuple(sorted(RELOADABLE_SSL))
_PREFIXED = re.compile(r"^listener\.name\.([^.]+)\.(ssl\..+)$")


def _refused(reason: str) -> DynamicConfigRefused:
    """Kafka's wrapping of a reconfiguration that fails validation."""
    return DynamicConfigRefused(
        "Invalid value org.apache.kafka.common.config.ConfigException: Validation of dynamic "
        f"config update of SSLFactory failed: org.apache.kafka.common.config.ConfigException: "
        f"{reason} for configuration Invalid dynamic configuration")


def check_reconfiguration(config: BrokerConfig, resulting: Mapping[str, str],
                          per_broker: bool) -> None:
    """Refuse a dynamic broker config set Kafka would refuse for its SSL settings (see
    the module docstring); `resulting` is the resource's whole set after the change."""
    bare = [n for n in resulting if n in RELOADABLE]
    if bare:
        raise DynamicConfigRefused("These security configs can be dynamically updated only "
                                   f"per-listener using the listener prefix: {java_set(bare)}")
    prefixed = [n for n in resulting if (m := _PREFIXED.match(n)) and m.group(2) in RELOADABLE]
    if prefixed and not per_broker:
        raise DynamicConfigRefused("Cannot update these configs at default cluster level, "
                                   f"broker id must be specified: {java_set(prefixed)}")
    if not per_broker:
        return
    for name, protocol in _tls_listeners(config):
        if _listener_changes(config, resulting, name):
            _validate_listener(config, resulting, name, protocol)


def _tls_listeners(config: BrokerConfig) -> list[tuple[str, str]]:
    from strom.config.security_protocols import protocol_map

    mapping = protocol_map(config)
    return [(ln.name, mapping.get(ln.name.upper(), "PLAINTEXT")) for ln in config.listeners
            if mapping.get(ln.name.upper()) in ("SSL", "SASL_SSL")]


def _prefixed(listener: str, name: str) -> str:
    return f"listener.name.{listener.lower()}.{name}"


def _listener_changes(config: BrokerConfig, resulting: Mapping[str, str],
                      listener: str) -> set[str]:
    """The reloadable names of `listener` whose per-broker dynamic value would change."""
    return {n for n in RELOADABLE
            if resulting.get(_prefixed(listener, n))
            != config.dynamic_broker.get(_prefixed(listener, n))}


def _prospective(config: BrokerConfig, resulting: Mapping[str, str],
                 listener: str) -> tls.GetConfig:
    """The listener's `ssl.*` settings as they would read after the change."""
    merged = {**config.static, **config.dynamic_default, **resulting}

    def get(name: str) -> str | None:
        value = merged.get(_prefixed(listener, name))
        return value if value is not None else config.raw(name)

    return get


def _current(config: BrokerConfig, listener: str) -> tls.GetConfig:
    return lambda name: tls.listener_value(config, listener, name)


def _validate_listener(config: BrokerConfig, resulting: Mapping[str, str], listener: str,
                       protocol: str) -> None:
    new = _prospective(config, resulting, listener)
    try:
        tls.server_context_from(new, tls.client_auth(config, listener, protocol))
        new_leaf = keystore_certificate(new)
    except (InvalidConfig, ssl.SSLError) as exc:
        raise _refused(str(exc)) from exc
    try:
        old_leaf = keystore_certificate(_current(config, listener))
    except (InvalidConfig, ssl.SSLError):
        return  # the running keystore cannot be read back: nothing to compare with
    _ensure_compatible(config, old_leaf, new_leaf)


def keystore_certificate(get: tls.GetConfig) -> Any:
    """The keystore's own (first) certificate, as a `cryptography` x509 object."""
    from cryptography import x509

    kind = (get("ssl.keystore.type") or "JKS").strip().upper()
    inline = get("ssl.keystore.certificate.chain")
    if get("ssl.keystore.key") and inline:
        return x509.load_pem_x509_certificates(inline.encode())[0]
    location = get("ssl.keystore.location")
    if not location:
        raise InvalidConfig("no keystore")
    data = tls.read_store(location, "ssl.keystore.location")
    if kind == "PKCS12":
        from cryptography.hazmat.primitives.serialization import pkcs12

        password = get("ssl.key.password") or get("ssl.keystore.password")
        try:
            _, cert, _ = pkcs12.load_key_and_certificates(
                data, password.encode() if password else None)
        except ValueError as exc:
            raise InvalidConfig(f"the PKCS12 keystore cannot be read: {exc}") from exc
        if cert is None:
            raise InvalidConfig("the PKCS12 keystore holds no certificate")
        return cert
    try:
        return x509.load_pem_x509_certificates(data)[0]
    except ValueError as exc:
        raise InvalidConfig(f"the keystore holds no certificate: {exc}") from exc


def _sans(cert: Any) -> list[str]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return sorted(str(name.value) for name in ext.value)


def _ensure_compatible(config: BrokerConfig, old: Any, new: Any) -> None:
    """Kafka's rule: a rotated certificate names the same subject and the same
    alternative names, unless the broker allows them to change."""
    allow_dn = (config.raw("ssl.allow.dn.changes") or "false").lower() == "true"
    allow_san = (config.raw("ssl.allow.san.changes") or "false").lower() == "true"
    if not allow_dn and old.subject != new.subject:
        raise _refused("Keystore DistinguishedName does not match:  existing={DN="
                       f"{old.subject.rfc4514_string()}}}, new={{DN="
                       f"{new.subject.rfc4514_string()}}}")
    if not allow_san and _sans(old) != _sans(new):
        raise _refused(f"Keystore SubjectAltNames do not match:  existing={{SAN={_sans(old)}}}, "
                       f"new={{SAN={_sans(new)}}}")


@dataclass
class _Switch:
    """The context new handshakes of one listener move onto (None: the original)."""

    listener: str
    protocol: str
    current: ssl.SSLContext | None = field(default=None)

    def __call__(self, ssl_object: Any, _server_name: str | None,
                 _context: ssl.SSLContext) -> None:
        if self.current is not None:
            ssl_object.context = self.current


def follow_reloads(config: BrokerConfig,
                   listeners: Iterable[tuple[str, str, ssl.SSLContext]]) -> None:
    """Rebuild each TLS listener's context when its reloadable configs change, for the
    connections that come after (see the module docstring)."""
    for name, protocol, context in listeners:
        switch = _Switch(name, protocol)
        context.sni_callback = switch
        names = tuple(_prefixed(name, n) for n in RELOADABLE)

        def on_change(change: BrokerConfigChange, switch: _Switch = switch,
                      names: tuple[str, ...] = names) -> None:
            if change.touches(*names):
                _reload(config, switch)

        config.subscribe(on_change)


def _reload(config: BrokerConfig, switch: _Switch) -> None:
    try:
        fresh = tls.server_context(config, switch.listener, switch.protocol)
    except (InvalidConfig, ssl.SSLError) as exc:  # validated, but the files moved since
        log.error("listener %s keeps its certificate: the new keystore or truststore does "
                  "not load: %s", switch.listener, exc)
        return
    switch.current = fresh
    try:
        subject = keystore_certificate(_current(config, switch.listener)).subject
        shown = subject.rfc4514_string()
    except (InvalidConfig, ssl.SSLError):
        shown = "?"
    log.info("listener %s reloaded its keystore and truststore (certificate %s); new "
             "connections use them", switch.listener, shown)

"""What one listener needs to authenticate its clients, resolved once at start.

A listener's security protocol comes from `listener.security.protocol.map`; TLS
listeners get their `ssl.SSLContext` (`tls`), SASL listeners their mechanisms
(`sasl.enabled.mechanisms`, listener-prefixed first), the PLAIN users of
`listener.name.<listener>.plain.sasl.jaas.config` and the SCRAM credential lookup.
Configuration errors raise InvalidConfig before anything is bound.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from strom.broker.security import jaas, principal, tls
from strom.broker.security.credentials import MECHANISMS, ScramCredential, user_credentials
from strom.broker.security.scram import CredentialLookup
from strom.config.broker import BrokerConfig
from strom.config.defs import InvalidConfig
from strom.config.security_protocols import protocol_map, security_protocol

log = logging.getLogger(__name__)
SUPPORTED_MECHANISMS = ("PLAIN", *MECHANISMS, "OAUTHBEARER")


@dataclass(frozen=True)
class ListenerSecurity:
    name: str
    protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    principal_rules: list[principal.Rule] = field(default_factory=list)
    mechanisms: tuple[str, ...] = ()
    plain_users: dict[str, str] = field(default_factory=dict, repr=False)
    scram_lookup: CredentialLookup | None = field(default=None, repr=False)
    reauth_ms: int = 0
    advertised: tuple[str, int] | None = None  # when not the registered (first) listener

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def build(config: BrokerConfig, name: str, protocol: str,
          scram_lookup: CredentialLookup, quiet: bool = False) -> ListenerSecurity:
    """Resolve one listener's security; InvalidConfig when it cannot be served."""
    context = None
    rules: list[principal.Rule] = []
    if protocol in ("SSL", "SASL_SSL"):
        context = tls.server_context(config, name, protocol)
        try:
            rules = principal.parse_rules(
                tls.listener_value(config, name, "ssl.principal.mapping.rules"))
        except ValueError as exc:
            raise InvalidConfig(f"ssl.principal.mapping.rules: {exc}") from exc
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        return ListenerSecurity(name, protocol, context, rules)
    mechanisms = _mechanisms(config, name)
    users = _plain_users(config, name) if "PLAIN" in mechanisms else {}
    if "OAUTHBEARER" in mechanisms:
        _check_oauthbearer(config, name, quiet)
    reauth = config.props.get(f"listener.name.{name.lower()}.connections.max.reauth.ms")
    reauth_ms = int(reauth if reauth is not None else config.raw("connections.max.reauth.ms")
                    or 0)
    return ListenerSecurity(name, protocol, context, rules, mechanisms, users,
                            scram_lookup, reauth_ms)


def _mechanisms(config: BrokerConfig, name: str) -> tuple[str, ...]:
    raw = tls.listener_value(config, name, "sasl.enabled.mechanisms") or "GSSAPI"
    mechanisms = tuple(m.strip().upper() for m in raw.split(",") if m.strip())
    unsupported = [m for m in mechanisms if m not in SUPPORTED_MECHANISMS]
    if unsupported or not mechanisms:
        raise InvalidConfig(
            f"listener {name}: SASL mechanism(s) {', '.join(unsupported) or '(none)'} not "
            f"supported; set sasl.enabled.mechanisms to some of {', '.join(SUPPORTED_MECHANISMS)}")
    return mechanisms


def _check_oauthbearer(config: BrokerConfig, name: str, quiet: bool) -> None:
    """Only Kafka's default, unsecured token validation exists: say so loudly, and
    refuse a configured validator (e.g. JWKS) rather than silently not applying it."""
    key = f"listener.name.{name.lower()}.oauthbearer.sasl.server.callback.handler.class"
    if config.props.get(key):
        raise InvalidConfig(f"{key}: only unsecured OAUTHBEARER tokens are implemented "
                            "(leave it unset, for development only)")
    if not quiet:
        log.warning("listener %s accepts OAUTHBEARER with unsecured tokens: any client can "
                    "claim any principal; for development only", name)


def _plain_users(config: BrokerConfig, name: str) -> dict[str, str]:
    key = f"listener.name.{name.lower()}.plain.sasl.jaas.config"
    text = config.props.get(key)
    if not text:
        raise InvalidConfig(f"listener {name} enables PLAIN but {key} is not set")
    users = jaas.plain_users(text)
    if not users:
        raise InvalidConfig(f"{key} defines no users (user_<name>=\"<password>\" options "
                            f"of {jaas.PLAIN_MODULE})")
    return users


def scram_lookup_from(user_configs: Callable[[], dict[str, dict[str, str]]]
                      ) -> CredentialLookup:
    """A credential lookup over the metadata store's user entities."""
    def lookup(user: str, mechanism: str) -> ScramCredential | None:
        return user_credentials(user_configs().get(user, {})).get(mechanism)

    return lookup


def build_all(config: BrokerConfig, scram_lookup: CredentialLookup, quiet: bool = False
              ) -> dict[str, ListenerSecurity]:
    """Every listener's security by upper-case name; InvalidConfig naming the listener."""
    mapping = protocol_map(config)
    built: dict[str, ListenerSecurity] = {}
    advertised = {ln.name.upper(): (ln.host, ln.port) for ln in config.advertised_listeners}
    first = config.advertised_listeners[0].name.upper()
    for listener in config.listeners:
        protocol = security_protocol(listener, mapping)
        name = listener.name.upper()
        try:
            security = build(config, listener.name, protocol, scram_lookup, quiet)
            built[name] = security if name == first or name not in advertised else \
                replace(security, advertised=advertised[name])
        except InvalidConfig as exc:
            raise InvalidConfig(f"listener {listener.name} ({protocol}): {exc}") from exc
        except ssl.SSLError as exc:
            raise InvalidConfig(f"listener {listener.name} ({protocol}): {exc}") from exc
    return built


def check(config: BrokerConfig) -> None:
    """What `strom server` runs before binding: every listener can be served, and the
    inter-broker listener can be reached."""
    from strom.broker.security.peer_client import build_inter_broker

    build_all(config, lambda user, mechanism: None, quiet=True)  # warnings: at start
    if config.get_str("zookeeper.connect"):
        build_inter_broker(config)

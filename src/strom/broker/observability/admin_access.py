"""Who may read the HTTP admin port (/metrics).

The port binds loopback by default. Put on a network, it can be protected the way a
Prometheus scrape config expects: HTTP basic authentication
(`strom.metrics.basic.auth.user` / `.password`, the `basic_auth` of a scrape job) and TLS
(`strom.metrics.ssl.certificate.location` / `.key.location`, PEM files; the job's
`scheme: https`). /healthz and /readyz stay open: a liveness probe carries no
credentials and those answers reveal nothing.

The password is compared in constant time (hmac.compare_digest on the whole header), so
the time to refuse does not tell how much of a guess was right.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import logging
import ssl
from dataclasses import dataclass

from strom.config.broker import BrokerConfig
from strom.config.defs import InvalidConfig

log = logging.getLogger(__name__)

PROTECTED_PATHS = frozenset({"/metrics"})


@dataclass(frozen=True)
class AdminAccess:
    """The admin port's protection: the expected Authorization header and a TLS context."""

    expected_authorization: bytes | None = None  # b"Basic <base64(user:password)>"
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_config(cls, config: BrokerConfig) -> AdminAccess:
        user = config.get_str("strom.metrics.basic.auth.user") or ""
        password = config.get_str("strom.metrics.basic.auth.password") or ""
        if bool(user) != bool(password):
            raise InvalidConfig("strom.metrics.basic.auth.user and strom.metrics.basic.auth.password "
                             "are set together or not at all")
        expected = None
        if user:
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            expected = f"Basic {token}".encode("ascii")
        return cls(expected, _tls_context(config))

    @property
    def open(self) -> bool:
        return self.expected_authorization is None

    def allows(self, path: str, authorization: bytes | None) -> bool:
        """Whether a request for `path` with this Authorization header value is served."""
        if self.expected_authorization is None or path not in PROTECTED_PATHS:
            return True
        return hmac.compare_digest(authorization or b"", self.expected_authorization)

    def warn_if_exposed(self, host: str) -> None:
        """A port reachable from other machines with no credentials is worth a line in
        the log: it tells anyone who asks the broker's topics, groups and clients."""
        if self.open and not _is_loopback(host):
            log.warning("the metrics port listens on %s without authentication; set "
                        "strom.metrics.basic.auth.user/password (and strom.metrics.ssl.*) "
                        "or strom.metrics.host=127.0.0.1", host or "every interface")


def _tls_context(config: BrokerConfig) -> ssl.SSLContext | None:
    certificate = config.get_str("strom.metrics.ssl.certificate.location")
    key = config.get_str("strom.metrics.ssl.key.location")
    if not certificate and not key:
        return None
    if not certificate or not key:
        raise InvalidConfig("strom.metrics.ssl.certificate.location and "
                         "strom.metrics.ssl.key.location are set together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate, key,
                                password=config.get_str("strom.metrics.ssl.key.password") or None)
    except (OSError, ssl.SSLError) as exc:  # named here: the bare error names no file
        raise InvalidConfig(f"strom.metrics.ssl.*: cannot load the certificate {certificate} "
                            f"with the key {key}: {exc.strerror or exc}") from exc
    return context


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface) or a name

"""TLS and SASL for the requests Strom sends itself, configured with librdkafka's names.

Most commands reach brokers through librdkafka, which reads `security.protocol`,
`ssl.*` and `sasl.*` itself. A few requests librdkafka cannot send (transactions' admin
calls, the cluster-wide broker config default) go over sockets of ours; so that the same
`-X` properties or profile work for them, this module reads the same names and builds
the same connection: TLS with Python's `ssl` module (the CA, the client certificate and
key as files or inline PEM, hostname verification per
`ssl.endpoint.identification.algorithm`, default `https` as in librdkafka 2), then SASL
PLAIN or SCRAM-SHA-256/512 with SaslHandshake v1 and SaslAuthenticate v2.

What cannot be honoured (GSSAPI, OAUTHBEARER, PKCS12 keystores, a CA directory probe)
is refused with `_INVALID_ARG` rather than silently connecting another way.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strom.client.errors import KafkaClientError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
SECRET_NAMES = frozenset({"sasl.password", "ssl.key.password", "ssl.key.pem",
                          "ssl.keystore.password", "sasl.oauthbearer.client.secret",
                          "ssl.truststore.password"})
"""Properties whose values are never printed (profiles, errors)."""
UNSUPPORTED = ("ssl.keystore.location", "ssl.engine.location", "sasl.kerberos.keytab",
               "sasl.oauthbearer.config")
USED = frozenset({"security.protocol", "ssl.ca.location", "ssl.ca.pem",
                  "ssl.certificate.location", "ssl.certificate.pem", "ssl.key.location",
                  "ssl.key.pem", "ssl.key.password", "ssl.endpoint.identification.algorithm",
                  "enable.ssl.certificate.verification", "ssl.cipher.suites",
                  "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password"})
"""The librdkafka properties `ClientSecurity.from_properties` reads."""
Exchange = Callable[[int, int, Mapping[str, Any]], Any]


def _invalid(message: str) -> KafkaClientError:
    return KafkaClientError(message, name="_INVALID_ARG",
                            hint="see librdkafka's CONFIGURATION.md for the property names")


def _true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "on")


@dataclass(frozen=True)
class ClientSecurity:
    """How one client reaches brokers: the protocol, a TLS context when it uses TLS, and
    the SASL login when it uses SASL (the password stays out of reprs)."""

    protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    mechanism: str | None = None
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> ClientSecurity:
        """The security librdkafka would use for the same properties."""
        protocol = str(props.get("security.protocol", "PLAINTEXT")).strip().upper()
        if protocol not in PROTOCOLS:
            raise _invalid(f"security.protocol {protocol} is not one of {', '.join(PROTOCOLS)}")
        for name in UNSUPPORTED:
            if props.get(name):
                raise _invalid(f"{name} is not supported here; give the certificate and key "
                               "as PEM (ssl.certificate.location, ssl.key.location)")
        context = _tls_context(props) if protocol.endswith("SSL") else None
        if not protocol.startswith("SASL"):
            return cls(protocol, context)
        mechanism = str(props.get("sasl.mechanism") or props.get("sasl.mechanisms")
                        or "GSSAPI").strip().upper()
        if mechanism not in MECHANISMS:
            raise _invalid(f"sasl.mechanism {mechanism} is not supported here "
                           f"({', '.join(MECHANISMS)})")
        username, password = props.get("sasl.username"), props.get("sasl.password")
        if not username or password is None:
            raise _invalid(f"SASL {mechanism} needs sasl.username and sasl.password")
        return cls(protocol, context, mechanism, str(username), str(password))

    def open(self, host: str, port: int, timeout: float) -> socket.socket:
        """A socket to `host:port`, TLS done (the server's certificate checked); SASL
        follows with `login` over the caller's framing."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if self.ssl_context is None:
            return sock
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise

    def login(self, call: Exchange, address: str) -> None:
        """The SASL exchange, if this client uses SASL: `call(api_key, version, fields)`
        sends one request and returns the answer's body."""
        if self.mechanism is not None:
            self._login(call, address)

    def _login(self, call: Exchange, address: str) -> None:
        from strom.protocol.sasl_client import SaslClientError, ScramClient, plain_token

        mechanism = self.mechanism
        assert mechanism is not None
        shake = call(SASL_HANDSHAKE, 1, {"mechanism": mechanism})
        if int(shake.error_code):
            raise KafkaClientError(
                f"{address} does not offer SASL {mechanism} (it offers "
                f"{', '.join(shake.mechanisms) or 'none'})", name="_AUTHENTICATION")

        def step(token: bytes) -> bytes:
            answer = call(SASL_AUTHENTICATE, 2, {"auth_bytes": token})
            if int(answer.error_code):
                raise KafkaClientError(
                    f"SASL {mechanism} authentication failed: {answer.error_message}",
                    name="_AUTHENTICATION")
            return bytes(answer.auth_bytes)

        if mechanism == "PLAIN":
            step(plain_token(self.username, self.password))
            return
        scram = ScramClient(mechanism, self.username, self.password)
        try:
            scram.verify(step(scram.final(step(scram.first()))))
        except SaslClientError as exc:
            raise KafkaClientError(f"{address}: {exc}", name="_AUTHENTICATION") from None


def _tls_context(props: Mapping[str, Any]) -> ssl.SSLContext:
    """librdkafka's TLS client settings as an `ssl.SSLContext`."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        _load_trust(context, props)
        _load_identity(context, props)
        if props.get("ssl.cipher.suites"):
            context.set_ciphers(str(props["ssl.cipher.suites"]))
    except ssl.SSLError as exc:
        raise _invalid(f"the ssl.* properties do not load: {exc.reason or exc}") from None
    except OSError as exc:
        raise KafkaClientError(f"the ssl.* files do not load: {exc.strerror or exc}"
                               f"{': ' + exc.filename if exc.filename else ''}",
                               name="_SSL") from None
    algorithm = str(props.get("ssl.endpoint.identification.algorithm", "https")).lower()
    context.check_hostname = algorithm == "https"
    if not _true(props.get("enable.ssl.certificate.verification", "true")):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _load_trust(context: ssl.SSLContext, props: Mapping[str, Any]) -> None:
    location = str(props.get("ssl.ca.location") or "")
    if location == "probe":
        context.load_default_certs()
    elif os.path.isdir(location):
        context.load_verify_locations(capath=location)
    elif location:
        context.load_verify_locations(cafile=location)
    if props.get("ssl.ca.pem"):
        context.load_verify_locations(cadata=str(props["ssl.ca.pem"]))


def _load_identity(context: ssl.SSLContext, props: Mapping[str, Any]) -> None:
    """The client certificate and key, as files or inline PEM (written to a private
    temporary file only while `load_cert_chain` reads it)."""
    cert = props.get("ssl.certificate.location")
    key = props.get("ssl.key.location")
    password = props.get("ssl.key.password")
    pem_cert, pem_key = props.get("ssl.certificate.pem"), props.get("ssl.key.pem")
    if pem_cert or pem_key:
        with tempfile.TemporaryDirectory() as tmp:
            cert = _pem_file(tmp, "cert.pem", pem_cert) if pem_cert else cert
            key = _pem_file(tmp, "key.pem", pem_key) if pem_key else key
            if cert:
                context.load_cert_chain(str(cert), str(key) if key else None, password)
        return
    if cert:
        context.load_cert_chain(str(cert), str(key) if key else None, password)
    elif key:
        raise _invalid("ssl.key.location needs ssl.certificate.location")


def _pem_file(directory: str, name: str, text: Any) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(text))
    return path


def masked(props: Mapping[str, Any]) -> dict[str, Any]:
    """`props` with every secret replaced by `[hidden]`, for printing."""
    return {k: ("[hidden]" if k in SECRET_NAMES or k.endswith(".password") else v)
            for k, v in props.items()}


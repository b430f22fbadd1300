"""`ssl.SSLContext` for a TLS listener, from Kafka's `ssl.*` configs.

Every setting may be given per listener as `listener.name.<listener>.ssl.*`, which wins
over the plain name (Kafka's listener prefix). Keystores: `PEM` (a file with the private
key and certificate chain, or the inline `ssl.keystore.key` and
`ssl.keystore.certificate.chain`) and `PKCS12` (read with `cryptography`); truststores
likewise (`ssl.truststore.certificates` inline). `ssl.key.password` decrypts the key.
Python's `ssl` loads keys and chains from paths only, so key material given inline or
from a PKCS12 store is handed over through an anonymous in-memory file (`memfd`), never
written to disk.

`ssl.client.auth` is none / requested / required; as in Kafka, on a SASL_SSL listener
only the listener-prefixed value counts (SASL authenticates the client there).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from strom.config.broker import BrokerConfig
from strom.config.defs import InvalidConfig

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
GetConfig = Callable[[str], "str | None"]
CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL,
               "required": ssl.CERT_REQUIRED}


def listener_value(config: BrokerConfig, listener: str, name: str) -> str | None:
    """`listener.name.<listener>.<name>` when set, else `<name>` (Kafka's prefix rule)."""
    prefixed = config.props.get(f"listener.name.{listener.lower()}.{name}")
    return prefixed if prefixed is not None else config.raw(name)


def client_auth(config: BrokerConfig, listener: str, protocol: str) -> str:
    """none / requested / required for this listener."""
    if protocol == "SASL_SSL":
        raw = config.props.get(f"listener.name.{listener.lower()}.ssl.client.auth")
    else:
        raw = listener_value(config, listener, "ssl.client.auth")
    value = (raw or "none").strip().lower()
    if value not in CLIENT_AUTH:
        raise InvalidConfig(f"Invalid value {raw} for configuration ssl.client.auth: "
                            "String must be one of: required, requested, none")
    return value


def server_context(config: BrokerConfig, listener: str, protocol: str) -> ssl.SSLContext:
    """The server side of one TLS listener; InvalidConfig (one line) when unusable."""

    def get(name: str) -> str | None:
        return listener_value(config, listener, name)

    return server_context_from(get, client_auth(config, listener, protocol))


def server_context_from(get: GetConfig, auth: str) -> ssl.SSLContext:
    """A server context from settings read through `get` (also a reload's prospective
    settings, `tls_reload`) and the listener's client authentication."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _set_protocols(ctx, get)
    _set_ciphers(ctx, get("ssl.cipher.suites"))
    _load_keystore(ctx, get)
    ctx.verify_mode = CLIENT_AUTH[auth]
    if ctx.verify_mode != ssl.CERT_NONE:
        _load_truststore(ctx, get)
    ctx.sslobject_class = AlertingSSLObject
    return ctx


class AlertingSSLObject(ssl.SSLObject):
    """Lets a failed server handshake send its TLS alert before the connection closes.

    asyncio's and uvloop's TLS transports abort the socket the moment `do_handshake`
    raises, dropping the alert OpenSSL has just written (e.g. "unknown CA" for an
    untrusted client certificate): the client then sees a bare close, which the Java
    client retries until its timeout instead of failing at once with an SSL error, as it
    does against Kafka. So a failed handshake is kept in `handshake_error` and reported as
    done; the connection sees the error first thing (`connection_made`) and closes, and
    the transport's orderly close writes out what the failed handshake left behind."""

    handshake_error: ssl.SSLError | None = None

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self.handshake_error = exc

    def getpeercert(self, binary_form: bool = False) -> Any:
        if self.handshake_error is not None:
            return None
        return super().getpeercert(binary_form)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        if self.handshake_error is not None:
            raise ssl.SSLZeroReturnError("TLS handshake failed")  # nothing more to read
        return super().read(len, buffer) if buffer is not None else super().read(len)

    def unwrap(self) -> None:
        if self.handshake_error is None:
            super().unwrap()


def client_context(get: GetConfig) -> ssl.SSLContext:
    """The client side (a broker calling another): verifies the peer against the
    truststore and presents the keystore when one is configured."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _set_protocols(ctx, get)
    _set_ciphers(ctx, get("ssl.cipher.suites"))
    algorithm = get("ssl.endpoint.identification.algorithm")
    ctx.check_hostname = (algorithm if algorithm is not None else "https").lower() == "https"
    _load_truststore(ctx, get)
    if get("ssl.keystore.location") or get("ssl.keystore.key"):
        _load_keystore(ctx, get)
    return ctx


def _set_protocols(ctx: ssl.SSLContext, get: GetConfig) -> None:
    protocol = (get("ssl.protocol") or "TLSv1.3").strip()
    if protocol not in ("TLS", "TLSv1.2", "TLSv1.3"):
        raise InvalidConfig(f"ssl.protocol {protocol} is not supported (TLS, TLSv1.2, TLSv1.3)")
    raw = get("ssl.enabled.protocols") or "TLSv1.2,TLSv1.3"
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in _VERSIONS]
    if unknown or not names:
        raise InvalidConfig(f"ssl.enabled.protocols: unsupported protocol(s) "
                            f"{', '.join(unknown) or '(none)'}; TLSv1.2 and TLSv1.3 only")
    versions = sorted(_VERSIONS[n] for n in names)
    if protocol == "TLSv1.2":
        versions = [v for v in versions if v <= ssl.TLSVersion.TLSv1_2] or versions
    ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]


def openssl_cipher_name(name: str) -> str | None:
    """An IANA TLS 1.2 suite name (Kafka's spelling) as OpenSSL's; None for TLS 1.3
    suites, which OpenSSL enables by themselves (Python cannot choose among them)."""
    if name.startswith("TLS_") and "_WITH_" not in name:
        return None
    if not name.startswith("TLS_"):
        return name  # already OpenSSL's spelling
    kex, _, cipher = name[4:].partition("_WITH_")
    cipher = (cipher.replace("AES_128_", "AES128-").replace("AES_256_", "AES256-")
              .replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305").replace("_", "-"))
    kex = {"RSA": ""}.get(kex, kex.replace("_", "-"))
    return f"{kex}-{cipher}" if kex else cipher


def _set_ciphers(ctx: ssl.SSLContext, raw: str | None) -> None:
    if not raw or not raw.strip():
        return
    names = [openssl_cipher_name(n.strip()) for n in raw.split(",") if n.strip()]
    tls12 = [n for n in names if n]
    if not tls12:
        return
    try:
        ctx.set_ciphers(":".join(tls12))
    except ssl.SSLError as exc:
        raise InvalidConfig(f"ssl.cipher.suites: none of {raw} is available") from exc


def _password(get: GetConfig, name: str) -> bytes | None:
    value = get(name)
    return value.encode() if value else None


def _load_keystore(ctx: ssl.SSLContext, get: GetConfig) -> None:
    kind = (get("ssl.keystore.type") or "JKS").strip().upper()
    location = get("ssl.keystore.location")
    inline_key = get("ssl.keystore.key")
    key_password = _password(get, "ssl.key.password")
    if inline_key:
        chain = get("ssl.keystore.certificate.chain")
        if not chain:
            raise InvalidConfig("ssl.keystore.key needs ssl.keystore.certificate.chain")
        _load_pem_pair(ctx, (inline_key.strip() + "\n" + chain.strip() + "\n").encode(),
                       key_password)
        return
    if not location:
        raise InvalidConfig("a TLS listener needs a keystore: ssl.keystore.location or "
                            "ssl.keystore.key with ssl.keystore.certificate.chain")
    data = _read(location, "ssl.keystore.location")
    if kind == "PEM":
        _load_pem_pair(ctx, data, key_password)
    elif kind == "PKCS12":
        password = _password(get, "ssl.keystore.password")
        _load_pem_pair(ctx, pkcs12_to_pem(data, key_password or password), None)
    else:
        raise InvalidConfig(f"ssl.keystore.type {kind} is not supported (PEM or PKCS12)")


def _load_truststore(ctx: ssl.SSLContext, get: GetConfig) -> None:
    inline = get("ssl.truststore.certificates")
    location = get("ssl.truststore.location")
    kind = (get("ssl.truststore.type") or "JKS").strip().upper()
    if inline:
        ctx.load_verify_locations(cadata=inline)
    elif location and kind == "PEM":
        ctx.load_verify_locations(cadata=_read(location, "ssl.truststore.location").decode())
    elif location and kind == "PKCS12":
        data = _read(location, "ssl.truststore.location")
        ctx.load_verify_locations(cadata=pkcs12_certificates(
            data, _password(get, "ssl.truststore.password")))
    elif location:
        raise InvalidConfig(f"ssl.truststore.type {kind} is not supported (PEM or PKCS12)")
    else:
        ctx.load_default_certs()  # the system's CAs, as Java's default truststore


def read_store(location: str, name: str) -> bytes:
    """A key- or truststore file's bytes; InvalidConfig naming the setting when unreadable."""
    return _read(location, name)


def _read(location: str, name: str) -> bytes:
    try:
        return Path(location).read_bytes()
    except OSError as exc:
        raise InvalidConfig(f"{name} {location}: {exc.strerror or exc}") from exc


def _load_pem_pair(ctx: ssl.SSLContext, pem: bytes, password: bytes | None) -> None:
    with _memory_file(pem) as path:
        try:
            ctx.load_cert_chain(path, password=password or None)
        except ssl.SSLError as exc:
            raise InvalidConfig(f"the keystore cannot be loaded (wrong ssl.key.password, "
                                f"or no key and certificate chain): {exc.reason}") from exc


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A path whose contents are `data`, held in memory where the OS allows it."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("strom-keystore", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile() as f:  # pragma: no cover - no memfd
        f.write(data)
        f.flush()
        yield f.name


def pkcs12_to_pem(data: bytes, password: bytes | None) -> bytes:
    """Key and certificate chain of a PKCS12 store as PEM (key unencrypted, in memory)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise InvalidConfig(f"the PKCS12 keystore cannot be read: {exc}") from exc
    if key is None or cert is None:
        raise InvalidConfig("the PKCS12 keystore holds no private key and certificate")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    for c in [cert, *(extra or [])]:
        pem += c.public_bytes(serialization.Encoding.PEM)
    return pem


def pkcs12_certificates(data: bytes, password: bytes | None) -> str:
    """Every certificate of a PKCS12 truststore, as PEM text."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        store = pkcs12.load_pkcs12(data, password)
    except ValueError as exc:
        raise InvalidConfig(f"the PKCS12 truststore cannot be read: {exc}") from exc
    certs = [c.certificate for c in store.additional_certs]
    if store.cert is not None:
        certs.append(store.cert.certificate)
    if not certs:
        raise InvalidConfig("the PKCS12 truststore holds no certificate")
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)

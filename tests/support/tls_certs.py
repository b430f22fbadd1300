"""Test certificates made with `cryptography`: a CA, a broker certificate for
localhost/127.0.0.1, client certificates (one expired, one from an unknown CA), written
as Kafka's PEM and PKCS12 stores."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

KEY_PASSWORD = "key-secret"
STORE_PASSWORD = "store-secret"


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strom Test")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@dataclass
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def key_pem(self, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password
            else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8, encryption)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _issue(subject: x509.Name, issuer: Issued | None, *, ca: bool = False,
           days: tuple[int, int] = (-1, 365), sans: list[x509.GeneralName] | None = None
           ) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    signer = issuer.key if issuer else key
    return Issued(key, builder.sign(signer, hashes.SHA256()))


@dataclass
class Pki:
    dir: Path
    ca: Issued
    broker: Issued
    alice: Issued
    bob: Issued
    expired: Issued
    rogue_ca: Issued
    rogue: Issued

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def broker_pem_keystore(self) -> Path:
        """Kafka's PEM keystore file: the encrypted key, then the certificate chain."""
        path = self.dir / "broker-keystore.pem"
        path.write_bytes(self.broker.key_pem(KEY_PASSWORD) + self.broker.cert_pem()
                         + self.ca.cert_pem())
        return path

    def broker_p12_keystore(self) -> Path:
        path = self.dir / "broker.p12"
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            b"broker", self.broker.key, self.broker.cert, [self.ca.cert],
            serialization.BestAvailableEncryption(STORE_PASSWORD.encode())))
        return path

    def client_context(self, who: Issued | None, name: str = "client",
                       maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        """Python's TLS client trusting the test CA, presenting `who`'s certificate."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if maximum is not None:
            ctx.maximum_version = maximum
        if who is not None:
            cert, key = self.client_files(who, name)
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def client_files(self, who: Issued, name: str) -> tuple[Path, Path]:
        """(certificate, unencrypted key) files for librdkafka / kafka-python."""
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert.write_bytes(who.cert_pem())
        key.write_bytes(who.key_pem())
        return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _issue(_name("Strom Test CA"), None, ca=True)
    broker = _issue(_name("localhost"), ca, sans=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    alice = _issue(_name("alice", "eng"), ca)
    bob = _issue(_name("bob", "sales"), ca)
    expired = _issue(_name("old"), ca, days=(-30, -1))
    rogue_ca = _issue(_name("Rogue CA"), None, ca=True)
    rogue = _issue(_name("mallory"), rogue_ca)
    pki = Pki(directory, ca, broker, alice, bob, expired, rogue_ca, rogue)
    pki.ca_file.write_bytes(ca.cert_pem())
    return pki

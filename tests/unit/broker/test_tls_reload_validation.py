"""The validation of a certificate rotation (`strom.broker.security.tls_reload`) on plain
configs and real PEM keystores: which names may change where, and the subject DN and
SAN rule with its `ssl.allow.*.changes` escapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from strom.broker.security.tls_reload import check_reconfiguration
from strom.config.broker import BrokerConfig, is_dynamic, reloadable_ssl
from strom.config.dynamic import DynamicConfigRefused
from support.tls_certs import KEY_PASSWORD, Issued, Pki, _issue, make_pki

LOCATION = "listener.name.tls.ssl.keystore.location"


def _keystore(pki: Pki, who: Issued, name: str) -> str:
    path = pki.dir / name
    path.write_bytes(who.key_pem(KEY_PASSWORD) + who.cert_pem() + pki.ca.cert_pem())
    return str(path)


def _config(pki: Pki, **extra: str) -> BrokerConfig:
    return BrokerConfig({"listeners": "TLS://127.0.0.1:0",
                         "listener.security.protocol.map": "TLS:SSL",
                         "listener.name.tls.ssl.keystore.type": "PEM",
                         LOCATION: str(pki.broker_pem_keystore()),
                         "listener.name.tls.ssl.key.password": KEY_PASSWORD, **extra})


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def test_which_names_are_reloadable() -> None:
    assert reloadable_ssl("listener.name.tls.ssl.truststore.location")
    assert reloadable_ssl("ssl.key.password") and is_dynamic(LOCATION)
    assert not reloadable_ssl("listener.name.tls.ssl.client.auth")
    assert not is_dynamic("listener.name.tls.ssl.client.auth")


def test_a_renewed_certificate_with_the_same_names_is_accepted(pki: Pki) -> None:
    san = pki.broker.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    renewed = _issue(pki.broker.cert.subject, pki.ca, sans=list(san.value))
    check_reconfiguration(_config(pki), {LOCATION: _keystore(pki, renewed, "renewed.pem")},
                          per_broker=True)


def test_other_alternative_names_are_refused_unless_allowed(pki: Pki) -> None:
    other = _issue(pki.broker.cert.subject, pki.ca, sans=[x509.DNSName("elsewhere")])
    change = {LOCATION: _keystore(pki, other, "other.pem")}
    with pytest.raises(DynamicConfigRefused, match="SubjectAltNames do not match"):
        check_reconfiguration(_config(pki), change, per_broker=True)
    check_reconfiguration(_config(pki, **{"ssl.allow.san.changes": "true"}), change,
                          per_broker=True)


def test_another_subject_is_refused_unless_allowed(pki: Pki) -> None:
    change = {LOCATION: _keystore(pki, pki.bob, "bob.pem")}
    with pytest.raises(DynamicConfigRefused, match="DistinguishedName does not match"):
        check_reconfiguration(_config(pki), change, per_broker=True)
    allowed = _config(pki, **{"ssl.allow.dn.changes": "true", "ssl.allow.san.changes": "true"})
    check_reconfiguration(allowed, change, per_broker=True)


def test_a_wrong_key_password_is_refused_before_anything_changes(pki: Pki) -> None:
    with pytest.raises(DynamicConfigRefused, match="SSLFactory failed"):
        check_reconfiguration(_config(pki), {
            LOCATION: str(pki.broker_pem_keystore()),
            "listener.name.tls.ssl.key.password": "wrong"}, per_broker=True)


def test_names_and_levels_kafka_refuses(pki: Pki) -> None:
    with pytest.raises(DynamicConfigRefused, match="only per-listener"):
        check_reconfiguration(_config(pki), {"ssl.truststore.location": "x"}, per_broker=True)
    with pytest.raises(DynamicConfigRefused, match=r"broker id must be specified: \[" + LOCATION):
        check_reconfiguration(_config(pki), {LOCATION: "x"}, per_broker=False)
    check_reconfiguration(_config(pki), {"log.retention.ms": "1000"}, per_broker=False)

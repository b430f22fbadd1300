"""The pieces of strom.broker.security on their own: principal mapping rules, the JAAS
reader, SCRAM against RFC 7677's worked example, the TLS context from configs and the
refusals of unusable listener settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from strom.broker.security import jaas, principal, scram, tls
from strom.broker.security.credentials import ScramCredential, from_password
from strom.broker.security.listener import build_all
from strom.config.broker import BrokerConfig
from strom.config.defs import InvalidConfig
from support.tls_certs import KEY_PASSWORD, make_pki

# --- ssl.principal.mapping.rules -----------------------------------------------------


@pytest.mark.parametrize("rules,name,expected", [
    ("", "CN=alice,OU=eng,O=Strom", "CN=alice,OU=eng,O=Strom"),
    ("DEFAULT", "CN=alice,OU=eng", "CN=alice,OU=eng"),
    ("RULE:^CN=(.*?),OU=(.*?),.*$/$1@$2/L", "CN=Alice,OU=ENG,O=x", "alice@eng"),
    ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U, DEFAULT", "CN=svc,OU=ServiceUsers,O=x", "SVC"),
    ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, DEFAULT", "CN=bob,OU=People", "CN=bob,OU=People"),
    ("RULE:^CN=([^,]*).*$/users\\/$1/", "CN=carol,O=x", "users/carol"),
])
def test_mapping_rules(rules: str, name: str, expected: str) -> None:
    assert principal.map_name(principal.parse_rules(rules), name) == expected


def test_no_matching_rule_fails() -> None:
    with pytest.raises(principal.NoMatchingRule):
        principal.map_name(principal.parse_rules("RULE:^CN=x$/y/"), "CN=z")


@pytest.mark.parametrize("bad", ["RULE:^CN=(.*)$", "NOPE", "RULE:([/x/"])
def test_malformed_rules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        principal.parse_rules(bad)


def test_principal_of_a_certificate(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pki = make_pki(tmp_path)
    der = pki.alice.cert.public_bytes(serialization.Encoding.DER)
    assert principal.certificate_principal(der, principal.parse_rules("")) == \
        "User:CN=alice,OU=eng,O=Strom Test"
    assert principal.certificate_principal(None, []) == "User:ANONYMOUS"


# --- JAAS ----------------------------------------------------------------------------


def test_jaas_users_are_read_not_executed() -> None:
    text = ('org.apache.kafka.common.security.plain.PlainLoginModule required\n'
            '  username="admin" password="a\\"b" user_admin="a\\"b" user_alice=plain;\n'
            'org.apache.kafka.common.security.scram.ScramLoginModule optional user_x="y";')
    assert jaas.plain_users(text) == {"admin": 'a"b', "alice": "plain"}
    modules = jaas.parse(text)
    assert [m.flag for m in modules] == ["required", "optional"]
    assert 'a"b' not in repr(modules[0])


@pytest.mark.parametrize("bad", [
    "org.apache.kafka.common.security.plain.PlainLoginModule user_a=b;",  # no flag
    "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=b",  # no ';'
    'x required user_a="unterminated;',
    "",
])
def test_malformed_jaas_is_refused_without_its_text(bad: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        jaas.parse(bad)
    assert "user_a" not in str(caught.value)


# --- SCRAM ---------------------------------------------------------------------------


def test_scram_sha_256_matches_rfc_7677(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7677 section 3: user 'user', password 'pencil'."""
    import base64

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = from_password("SCRAM-SHA-256", "pencil", 4096, salt=salt)
    monkeypatch.setattr(scram, "_server_nonce", lambda: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    server = scram.ScramServer("SCRAM-SHA-256", lambda u, m: credential if u == "user" else None)
    first = server.evaluate(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert first == (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    final = server.evaluate(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                            b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.complete and server.username == "user"


@pytest.mark.parametrize("first", [
    b"p=tls-unique,,n=user,r=abc",  # channel binding: not offered
    b"n,,r=abc",  # no user
    b"n,,n=user",  # no nonce
    b"n,a=other,n=user,r=abc",  # another authorization id
    b"n,,n=user,r=abc,tokenauth=true",  # delegation tokens: not supported
    b"\xff\xfe",
])
def test_scram_refuses_malformed_first_messages(first: bytes) -> None:
    server = scram.ScramServer("SCRAM-SHA-512", lambda u, m: None)
    with pytest.raises(scram.AuthenticationFailed):
        server.evaluate(first)


def test_scram_decoy_salt_is_stable_per_unknown_user() -> None:
    server_a = scram.ScramServer("SCRAM-SHA-256", lambda u, m: None)
    server_b = scram.ScramServer("SCRAM-SHA-256", lambda u, m: None)
    salt_a = server_a.evaluate(b"n,,n=ghost,r=abc").split(b",")[1]
    salt_b = server_b.evaluate(b"n,,n=ghost,r=xyz").split(b",")[1]
    assert salt_a == salt_b


def test_credential_text_is_kafkas() -> None:
    credential = from_password("SCRAM-SHA-512", "pw", 4096, salt=b"salt")
    text = credential.to_config()
    assert text.startswith("salt=c2FsdA==,stored_key=") and text.endswith(",iterations=4096")
    assert ScramCredential.from_config(text) == credential
    assert "stored_key" not in repr(credential)


# --- TLS contexts and listener refusals --------------------------------------------------


@pytest.mark.parametrize("iana,openssl", [
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("TLS_AES_128_GCM_SHA256", None),
    ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
])
def test_cipher_names(iana: str, openssl: str | None) -> None:
    assert tls.openssl_cipher_name(iana) == openssl


def test_inline_pem_keystore_and_client_auth(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    config = BrokerConfig({
        "listeners": "SSL://127.0.0.1:0",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.key": pki.broker.key_pem(KEY_PASSWORD).decode(),
        "ssl.keystore.certificate.chain": pki.broker.cert_pem().decode(),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.certificates": pki.ca.cert_pem().decode(),
        "ssl.client.auth": "requested",
        "ssl.enabled.protocols": "TLSv1.3",
    })
    security = build_all(config, lambda u, m: None)["SSL"]
    assert security.ssl_context is not None
    assert security.ssl_context.verify_mode == ssl.CERT_OPTIONAL
    assert security.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize("props,needle", [
    ({"listeners": "SSL://127.0.0.1:0"}, "needs a keystore"),
    ({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM",
      "ssl.keystore.location": "/nonexistent/ks.pem"}, "ssl.keystore.location"),
    ({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "JKS",
      "ssl.keystore.location": "{ks}"}, "JKS is not supported"),
    ({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM",
      "ssl.keystore.location": "{ks}", "ssl.key.password": "wrong"}, "cannot be loaded"),
    ({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM",
      "ssl.keystore.location": "{ks}", "ssl.key.password": KEY_PASSWORD,
      "ssl.enabled.protocols": "TLSv1.1"}, "TLSv1.1"),
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:0"}, "GSSAPI"),
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms": "PLAIN"},
     "plain.sasl.jaas.config is not set"),
])
def test_unusable_listener_settings_are_refused(tmp_path: Path, props: dict[str, str],
                                                needle: str) -> None:
    keystore = make_pki(tmp_path).broker_pem_keystore()
    config = BrokerConfig({k: v.replace("{ks}", str(keystore)) for k, v in props.items()})
    with pytest.raises(InvalidConfig, match=needle) as caught:
        build_all(config, lambda u, m: None)
    assert caught.value.args[0].startswith("listener ")
    assert KEY_PASSWORD not in str(caught.value)


def test_pkcs12_truststore_and_cipher_suites(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    pki = make_pki(tmp_path)
    truststore = tmp_path / "trust.p12"
    truststore.write_bytes(pkcs12.serialize_key_and_certificates(
        None, None, None, [pki.ca.cert], BestAvailableEncryption(b"trust-pw")))
    config = BrokerConfig({
        "listeners": "SSL://127.0.0.1:0",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.broker_p12_keystore()),
        "ssl.keystore.password": "store-secret",
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.location": str(truststore),
        "ssl.truststore.password": "trust-pw",
        "ssl.client.auth": "required",
        "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_AES_256_GCM_SHA384",
    })
    context = build_all(config, lambda u, m: None)["SSL"].ssl_context
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES256-GCM-SHA384"}

"""Profiles, client config files and librdkafka's security properties for our own
connections: precedence, dotted TOML keys, errors that never show a secret."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from strom.client.errors import KafkaClientError
from strom.client.profiles import Profile, load_profiles, resolve
from strom.client.security import ClientSecurity, masked

PROFILES = '''
[profiles.prod]
brokers = "k1:9093,k2:9093"
security.protocol = "SASL_SSL"
sasl.mechanism = "SCRAM-SHA-512"
sasl.username = "alice"
sasl.password = "very-secret"
"enable.ssl.certificate.verification" = false
socket.timeout.ms = 5000

[profiles.bare]
"client.id" = "me"
'''


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    monkeypatch.setenv("STROM_PROFILES", str(path))
    for name in ("STROM_PROFILE", "STROM_CLIENT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_dotted_keys_are_librdkafka_names(profiles: Path) -> None:
    prod = load_profiles()["prod"]
    assert prod.brokers == "k1:9093,k2:9093"
    assert prod.properties == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice", "sasl.password": "very-secret",
        "enable.ssl.certificate.verification": "false", "socket.timeout.ms": "5000"}
    assert "very-secret" not in repr(prod)


def test_precedence_profile_then_config_file_then_x(profiles: Path, tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("bootstrap.servers=c1:9092\nsasl.username=bob\nclient.id=from-file\n")
    merged = resolve(None, {"client.id": "from-x"}, profile="prod", config_file=config)
    assert merged.brokers == "c1:9092"
    assert merged.properties["sasl.username"] == "bob"
    assert merged.properties["client.id"] == "from-x"
    assert merged.properties["sasl.mechanism"] == "SCRAM-SHA-512"
    assert "very-secret" not in repr(merged)
    assert resolve("b:1", {}, profile="prod", config_file=config).brokers == "b:1"
    assert resolve(None, {}, profile="prod").brokers == "k1:9093,k2:9093"
    assert resolve(None, {}, profile="bare").brokers == "localhost:9092"


def test_the_environment_selects_profile_and_file(profiles: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STROM_PROFILE", "prod")
    assert resolve(None, {}).properties["sasl.username"] == "alice"


def test_an_unknown_profile_names_the_known_ones(profiles: Path) -> None:
    with pytest.raises(KafkaClientError, match="bare, prod") as caught:
        resolve(None, {}, profile="staging")
    assert caught.value.name == "_INVALID_ARG"


def test_a_missing_profiles_file_has_no_profiles(tmp_path: Path) -> None:
    assert load_profiles(tmp_path / "none.toml") == {}


def test_bad_toml_and_missing_config_files_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[profiles.x\n")
    with pytest.raises(KafkaClientError, match="not valid TOML"):
        load_profiles(bad)
    with pytest.raises(KafkaClientError, match="does not exist"):
        resolve(None, {}, config_file=tmp_path / "missing.properties")


def test_security_from_librdkafka_properties(tmp_path: Path) -> None:
    assert ClientSecurity.from_properties({}).protocol == "PLAINTEXT"
    scram = ClientSecurity.from_properties({
        "security.protocol": "sasl_ssl", "sasl.mechanisms": "scram-sha-256",
        "sasl.username": "u", "sasl.password": "p", "ssl.endpoint.identification.algorithm": "none"})
    assert scram.mechanism == "SCRAM-SHA-256" and scram.ssl_context is not None
    assert not scram.ssl_context.check_hostname and "p'" not in repr(scram)
    unverified = ClientSecurity.from_properties({"security.protocol": "SSL",
                                                 "enable.ssl.certificate.verification": "false"})
    assert unverified.ssl_context is not None
    assert unverified.ssl_context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("props, message", [
    ({"security.protocol": "TLS"}, "not one of"),
    ({"security.protocol": "SASL_PLAINTEXT"}, "GSSAPI is not supported"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"}, "needs sasl.username"),
    ({"security.protocol": "SSL", "ssl.keystore.location": "k.p12"}, "not supported"),
    ({"security.protocol": "SSL", "ssl.key.location": "k.pem"}, "needs ssl.certificate"),
])
def test_what_cannot_be_honoured_is_refused(props: dict[str, str], message: str) -> None:
    with pytest.raises(KafkaClientError, match=message) as caught:
        ClientSecurity.from_properties({**props, "sasl.password": "hidden-pw"})
    assert "hidden-pw" not in str(caught.value)


def test_a_missing_ca_file_is_an_ssl_error(tmp_path: Path) -> None:
    with pytest.raises(KafkaClientError) as caught:
        ClientSecurity.from_properties({"security.protocol": "SSL",
                                        "ssl.ca.location": str(tmp_path / "none.pem")})
    assert caught.value.name == "_SSL"


def test_masked_hides_every_secret() -> None:
    shown = masked({"sasl.password": "a", "ssl.key.password": "b", "ssl.key.pem": "c",
                    "sasl.username": "u", "ssl.truststore.password": "d"})
    assert shown == {"sasl.password": "[hidden]", "ssl.key.password": "[hidden]",
                     "ssl.key.pem": "[hidden]", "sasl.username": "u",
                     "ssl.truststore.password": "[hidden]"}
    assert "secret" not in repr(Profile("p", None, {"sasl.password": "secret"}))

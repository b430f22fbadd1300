"""`strom.client.group_member` — the group membership Strom Connect's distributed workers
and Strom Streams' threads speak themselves — over the secured listeners their other
clients use: SASL_SSL with SCRAM and mTLS, from the same librdkafka properties; a wrong
password is an authentication error at once, and the authorizer sees the member's
principal (ANONYMOUS on PLAINTEXT may not join)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from strom.client import KafkaClientError
from strom.client.group_member import GroupError, GroupMember
from strom.client.security import ClientSecurity
from support.broker_process import BrokerProcess, free_port
from support.cli import unique
from support.secure_broker import create_scram_admin, mtls_props, scram_props, secure_overrides
from support.tls_certs import Pki, make_pki

pytestmark = [pytest.mark.timeout(180)]


@dataclass
class Secure:
    pki: Pki
    ports: dict[str, int]

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    base: Path = tmp_path_factory.mktemp("member-security")
    pki = make_pki(base / "pki")
    ports = {name: free_port() for name in ("PLAINTEXT", "SASL_SSL", "MTLS")}
    broker = BrokerProcess(base / "data", port=ports["PLAINTEXT"],
                           overrides=secure_overrides(pki, ports)).start()
    create_scram_admin(f"127.0.0.1:{ports['SASL_SSL']}", pki)
    yield Secure(pki, ports)
    code = broker.stop()
    assert code == 0, f"broker exited with {code}; log:\n{broker.log_text()}"


def _alone(protocol: str, members: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    return {member_id: b"assigned to " + member_id.encode() for member_id, _ in members}


def _member(bootstrap: str, props: dict[str, str]) -> GroupMember:
    return GroupMember(bootstrap, unique("secured-group"), protocol_type="connect",
                       session_timeout_ms=6000, rebalance_timeout_ms=5000,
                       request_timeout_s=20, security=ClientSecurity.from_properties(props))


@pytest.mark.parametrize("listener", ["SASL_SSL", "MTLS"])
def test_a_member_joins_leads_and_leaves_over_a_secured_listener(secure: Secure,
                                                                 listener: str) -> None:
    props = scram_props(secure.pki) if listener == "SASL_SSL" else mtls_props(secure.pki)
    member = _member(secure.address(listener), props)
    try:
        joined = member.join([("sessioned", b"metadata")], _alone)
        assert joined.is_leader and joined.generation >= 1
        assert joined.assignment == b"assigned to " + joined.member_id.encode()
        assert member.heartbeat() is True  # stable: nothing to rejoin for
    finally:
        member.leave()
        member.close()


def test_a_wrong_password_fails_the_login_not_the_group(secure: Secure) -> None:
    member = _member(secure.address("SASL_SSL"),
                     {**scram_props(secure.pki), "sasl.password": "not-it-at-all"})
    with pytest.raises(KafkaClientError, match="authentication failed"):
        member.join([("sessioned", b"metadata")], _alone)
    member.close()


def test_anonymous_may_not_join_when_acls_say_no(secure: Secure) -> None:
    member = _member(secure.address("PLAINTEXT"), {})
    with pytest.raises(GroupError) as refused:
        member.join([("sessioned", b"metadata")], _alone)
    assert refused.value.code in (ErrorCode.group_authorization_failed,
                                  ErrorCode.cluster_authorization_failed)
    member.close()

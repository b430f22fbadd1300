"""The shared SCRAM client (`strom.protocol.sasl_client`) against the broker's SCRAM
server: both mechanisms log in; a wrong password fails at the server; a server that does
not extend the client's nonce, offers too few iterations or signs wrongly is refused by
the client."""

from __future__ import annotations

import base64

import pytest

from strom.broker.security.credentials import from_password
from strom.broker.security.scram import AuthenticationFailed, ScramServer
from strom.protocol.sasl_client import SaslClientError, ScramClient, plain_token


def _server(mechanism: str, password: str = "pw") -> ScramServer:
    credential = from_password(mechanism, password, 4096)
    return ScramServer(mechanism, lambda user, mech: credential if user == "a,b=c" else None)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_the_client_logs_in_to_the_broker_server(mechanism: str) -> None:
    server, client = _server(mechanism), ScramClient(mechanism, "a,b=c", "pw")
    final = server.evaluate(client.final(server.evaluate(client.first())))
    client.verify(final)
    assert server.complete and server.username == "a,b=c"


def test_a_wrong_password_is_refused_by_the_server() -> None:
    server, client = _server("SCRAM-SHA-256"), ScramClient("SCRAM-SHA-256", "a,b=c", "nope")
    with pytest.raises(AuthenticationFailed):
        server.evaluate(client.final(server.evaluate(client.first())))


def test_a_server_that_does_not_know_the_key_is_refused() -> None:
    server, client = _server("SCRAM-SHA-512"), ScramClient("SCRAM-SHA-512", "a,b=c", "pw")
    server.evaluate(client.final(server.evaluate(client.first())))
    with pytest.raises(SaslClientError):
        client.verify(b"v=" + base64.b64encode(b"\0" * 64))


@pytest.mark.parametrize("challenge", [
    "r=other-nonce,s=c2FsdA==,i=4096",       # not our nonce
    "r=fixed,s=c2FsdA==,i=4096",             # our nonce, not extended
    "r=fixedXYZ,s=c2FsdA==,i=100",           # too few iterations
    "r=fixedXYZ,s=not*base64,i=4096",
])
def test_malformed_challenges_are_refused(challenge: str) -> None:
    client = ScramClient("SCRAM-SHA-256", "u", "pw", nonce="fixed")
    client.first()
    with pytest.raises(SaslClientError):
        client.final(challenge.encode())


def test_verify_before_a_challenge_fails_and_plain_has_three_parts() -> None:
    with pytest.raises(SaslClientError):
        ScramClient("SCRAM-SHA-256", "u", "pw").verify(b"v=x")
    assert plain_token("u", "p") == b"\0u\0p"

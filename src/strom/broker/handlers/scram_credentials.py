"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51).

Credentials live in the metadata store as the user entity's configs, in Kafka's stored
form (`strom.broker.security.credentials`): the client sends a salt and a salted
password, the broker keeps only the derived StoredKey and ServerKey. The checks and
messages are Kafka 4.4's: a user named twice in one request, unknown mechanisms, an
empty name, iterations outside 4096..16384, deleting or describing what does not exist.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from strom.broker.context import RequestContext
from strom.broker.network import dispatch
from strom.broker.security.credentials import (
    MAX_ITERATIONS,
    MECHANISM_TYPES,
    MIN_ITERATIONS,
    from_salted_password,
    user_credentials,
)
from strom.protocol.api_keys import ApiKey

_TYPE_OF = {name: code for code, name in MECHANISM_TYPES.items()}


@dispatch.handles(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0)
async def describe(ctx: RequestContext, request: Any) -> Any:
    users = ctx.metadata.image().user_configs
    if not request.users:  # null or empty: every user (Kafka reads both so)
        names = sorted(u for u, c in users.items() if user_credentials(c))
        results = [_described(u, users[u]) for u in names]
        return ctx.respond(throttle_time=0, error_code=ErrorCode.none, results=results)
    counts = Counter(u.name for u in request.users)
    results = []
    for name in dict.fromkeys(u.name for u in request.users):
        if counts[name] > 1:
            results.append(_result(name, ErrorCode.duplicate_resource,
                                   "Cannot describe SCRAM credentials for the same user "
                                   "twice in a single request"))
        elif not user_credentials(users.get(name, {})):
            results.append(_result(name, ErrorCode.resource_not_found,
                                   "Attempt to describe a user credential that does not "
                                   "exist"))
        else:
            results.append(_described(name, users[name]))
    return ctx.respond(throttle_time=0, error_code=ErrorCode.none, results=results)


def _result(user: str, error: ErrorCode, message: str | None) -> dict[str, Any]:
    return {"user": user, "error_code": error, "error_message": message,
            "credential_infos": []}


def _described(user: str, configs: dict[str, str]) -> dict[str, Any]:
    infos = [{"mechanism": _TYPE_OF[m], "iterations": c.iterations}
             for m, c in sorted(user_credentials(configs).items())]
    return {**_result(user, ErrorCode.none, None), "credential_infos": infos}


@dispatch.handles(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, 0)
async def alter(ctx: RequestContext, request: Any) -> Any:
    names = [d.name for d in request.deletions] + [u.name for u in request.upsertions]
    counts = Counter(names)
    errors: dict[str, tuple[ErrorCode, str]] = {}
    for name in names:
        if counts[name] > 1:
            errors[name] = (ErrorCode.duplicate_resource,
                            "A user credential cannot be altered twice in the same request")
    current = ctx.metadata.image().user_configs
    changed: dict[str, dict[str, str]] = {}
    for deletion in request.deletions:
        _delete(deletion, current, changed, errors)
    for upsertion in request.upsertions:
        _upsert(upsertion, current, changed, errors)
    for user, configs in changed.items():
        if user not in errors:
            ctx.metadata.set_user_configs(user, configs)
    results = [{"user": n, "error_code": errors.get(n, (ErrorCode.none, None))[0],
                "error_message": errors.get(n, (ErrorCode.none, None))[1]}
               for n in dict.fromkeys(names)]
    return ctx.respond(throttle_time=0, results=results)


def _check(name: str, mechanism: int, errors: dict[str, tuple[ErrorCode, str]]) -> str | None:
    """The mechanism's name, or None with the user's error recorded."""
    if name in errors:
        return None
    if not name:
        errors[name] = (ErrorCode.unacceptable_credential, "Username must not be empty")
        return None
    if mechanism not in MECHANISM_TYPES:
        errors[name] = (ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism")
        return None
    return MECHANISM_TYPES[mechanism]


def _delete(deletion: Any, current: dict[str, dict[str, str]],
            changed: dict[str, dict[str, str]],
            errors: dict[str, tuple[ErrorCode, str]]) -> None:
    mechanism = _check(deletion.name, int(deletion.mechanism), errors)
    if mechanism is None:
        return
    configs = changed.get(deletion.name, dict(current.get(deletion.name, {})))
    if mechanism not in configs:
        errors[deletion.name] = (ErrorCode.resource_not_found,
                                 "Attempt to delete a user credential that does not exist")
        return
    del configs[mechanism]
    changed[deletion.name] = configs


def _upsert(upsertion: Any, current: dict[str, dict[str, str]],
            changed: dict[str, dict[str, str]],
            errors: dict[str, tuple[ErrorCode, str]]) -> None:
    mechanism = _check(upsertion.name, int(upsertion.mechanism), errors)
    if mechanism is None:
        return
    iterations = int(upsertion.iterations)
    if iterations < MIN_ITERATIONS:
        errors[upsertion.name] = (ErrorCode.unacceptable_credential, "Too few iterations")
        return
    if iterations > MAX_ITERATIONS:
        errors[upsertion.name] = (ErrorCode.unacceptable_credential, "Too many iterations")
        return
    if not upsertion.salt or not upsertion.salted_password:
        errors[upsertion.name] = (ErrorCode.unacceptable_credential,
                                  "Credential salt and salted password must not be empty")
        return
    credential = from_salted_password(mechanism, bytes(upsertion.salt),
                                      bytes(upsertion.salted_password), iterations)
    configs = changed.get(upsertion.name, dict(current.get(upsertion.name, {})))
    configs[mechanism] = credential.to_config()
    changed[upsertion.name] = configs

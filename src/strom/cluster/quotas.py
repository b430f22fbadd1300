"""Client quota entities as Kafka names them, and where their configs live.

A quota entity is a user, a client id, or a (user, client id) pair; each name may be
`<default>` (Kafka's default entity at that level). Kafka's ZooKeeper layout keys them by
path, and so does `MetadataImage.client_quotas`:

    users/<user>                      users/<default>
    clients/<client-id>               clients/<default>
    users/<user>/clients/<client-id>  users/<default>/clients/<default> (and the mixes)

with each name sanitized as Kafka's Sanitizer writes it (URL encoding, `*` as %2A), so a
user literally called `<default>` (`%3Cdefault%3E`) is not the default entity. A user
entity's znode (`/config/users/<user>`) also holds its SCRAM credentials: the quota keys
are the ones below, everything else in it belongs to SCRAM (`split_user_configs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, unquote

DEFAULT = "<default>"
"""The default entity's name in a path (and Kafka's `--entity-default`)."""

USER, CLIENT_ID, IP = "user", "client-id", "ip"

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
LONG_KEYS = frozenset({PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE})
DOUBLE_KEYS = frozenset({REQUEST_PERCENTAGE, CONTROLLER_MUTATION_RATE})
QUOTA_KEYS = LONG_KEYS | DOUBLE_KEYS
"""The client quota configs of user and client-id entities (Kafka's QuotaConfig): byte
rates are longs, the other two doubles."""

Entity = tuple[tuple[str, str | None], ...]
"""An entity as the protocol names it: (type, name) pairs sorted by type, a None name
for the default entity of that type."""


def sanitize(name: str) -> str:
    """A name as Kafka writes it in a znode name (its Sanitizer: URL encoding, `*` as
    %2A, `~` as %7E; the same as `zk_data.sanitize_user`)."""
    return quote(name, safe="").replace("~", "%7E")


def desanitize(name: str) -> str:
    return unquote(name)


def _part(name: str | None) -> str:
    return DEFAULT if name is None else sanitize(name)


def _name(part: str) -> str | None:
    return None if part == DEFAULT else desanitize(part)


def entity_path(entity: Entity) -> str:
    """`users/<u>`, `clients/<c>` or `users/<u>/clients/<c>` for an entity of users and
    client ids (the path under /config and the key in `client_quotas`)."""
    names = dict(entity)
    if USER in names and CLIENT_ID in names:
        return f"users/{_part(names[USER])}/clients/{_part(names[CLIENT_ID])}"
    if USER in names:
        return f"users/{_part(names[USER])}"
    return f"clients/{_part(names[CLIENT_ID])}"


def entity_of(path: str) -> Entity:
    """The entity a path names (the inverse of `entity_path`)."""
    parts = path.split("/")
    if parts[0] == "clients":
        return ((CLIENT_ID, _name(parts[1])),)
    if len(parts) == 4:
        return ((CLIENT_ID, _name(parts[3])), (USER, _name(parts[1])))
    return ((USER, _name(parts[1])),)


def user_path(user: str) -> str:
    """The path of a named user's entity (where its SCRAM credentials live too)."""
    return f"users/{sanitize(user)}"


def split_user_configs(configs: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """A user znode's configs as (SCRAM and anything else, the client quotas)."""
    others = {k: v for k, v in configs.items() if k not in QUOTA_KEYS}
    quotas = {k: v for k, v in configs.items() if k in QUOTA_KEYS}
    return others, quotas


def format_value(key: str, value: float) -> str:
    """A quota as Kafka's ZooKeeper mode stored it: longs as integers, doubles as Java
    prints them (`50.0`)."""
    if key in LONG_KEYS:
        return str(int(value + 1e-6))
    return repr(float(value))


def parse_value(text: str) -> float:
    return float(text)

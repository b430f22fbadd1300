"""Client quotas through the Kafka protocol: DescribeClientQuotas and AlterClientQuotas.

confluent-kafka's AdminClient (librdkafka 2.x) has no client quota calls, so these go
through `ProtocolAdmin` as `kafka-configs.sh --entity-type users/clients` sends them from
the Java Admin. An entity is a user, a client id or both; `None` as a name is the
default entity of its type (`--entity-default`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.client.errors import KafkaClientError

if TYPE_CHECKING:
    from strom.client.protocol_admin import ProtocolAdmin

DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS = 48, 49
EXACT, DEFAULT, ANY = 0, 1, 2
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage",
              "controller_mutation_rate")


@dataclass(frozen=True)
class QuotaEntity:
    """A quota entity: (type, name) pairs, a None name for `<default>`."""

    components: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def of(cls, *, user: str | None = None, user_default: bool = False,
           client_id: str | None = None, client_id_default: bool = False) -> QuotaEntity:
        found: list[tuple[str, str | None]] = []
        if user is not None or user_default:
            found.append(("user", None if user_default else user))
        if client_id is not None or client_id_default:
            found.append(("client-id", None if client_id_default else client_id))
        return cls(tuple(found))

    def parts(self) -> list[tuple[str, str | None]]:
        return list(self.components)

    def __str__(self) -> str:
        return " ".join(f"{kind}={'<default>' if name is None else name}"
                        for kind, name in self.components)


@dataclass(frozen=True)
class QuotaEntry:
    entity: list[tuple[str, str | None]]
    values: dict[str, float]


def describe(admin: ProtocolAdmin, entity: QuotaEntity, *, strict: bool = False
             ) -> list[QuotaEntry]:
    """The quota entities matching `entity` (exact names, `<default>`); with no
    component every entity; `strict` excludes entities with other types too."""
    components = [{"entity_type": kind, "match_type": DEFAULT if name is None else EXACT,
                   "match": name} for kind, name in entity.parts()]
    body = admin.request(DESCRIBE_CLIENT_QUOTAS, 1,
                         {"components": components, "strict": strict})
    _raise(int(body.error_code), body.error_message, str(entity) or "client quotas")
    return [QuotaEntry([(e.entity_type, e.entity_name) for e in entry.entity],
                       {v.key: float(v.value) for v in entry.values})
            for entry in body.entries or ()]


def alter(admin: ProtocolAdmin, entity: QuotaEntity, changes: Mapping[str, float | None], *,
          validate_only: bool = False) -> None:
    """Set (a number) or delete (None) quota keys of one entity."""
    ops: list[dict[str, Any]] = [{"key": key, "value": 0.0 if value is None else value,
                                  "remove": value is None} for key, value in changes.items()]
    body = admin.request(ALTER_CLIENT_QUOTAS, 1, {
        "validate_only": validate_only,
        "entries": [{"entity": [{"entity_type": kind, "entity_name": name}
                                for kind, name in entity.parts()], "ops": ops}]})
    for entry in body.entries:
        _raise(int(entry.error_code), entry.error_message, str(entity))


def _raise(code: int, message: str | None, resource: str) -> None:
    if code == 0:
        return
    from strom.client.protocol_admin import client_error

    error: KafkaClientError = client_error(code, message, resource)
    raise error

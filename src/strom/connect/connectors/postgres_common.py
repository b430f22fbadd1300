"""What the PostgreSQL sink and CDC source share: the connection settings and how a
connection is opened.

`connection.url` takes a libpq URL (`postgresql://user@host:port/db?sslmode=...`) or a
JDBC one (`jdbc:postgresql://host:port/db`, as Confluent's JDBC connector configs carry
it: the `jdbc:` prefix is dropped). `connection.host`, `connection.port`,
`connection.database`, `connection.user` and `connection.password` fill in or override
its parts; the password is a PASSWORD config, so validate answers and logs show
`[hidden]`. Every session runs with `TimeZone=UTC`, so timestamps without a time zone
are read and written as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strom.connect.api.config import ConfigDef, ConfigType, Importance, Password

if TYPE_CHECKING:
    import psycopg

CONNECTION_GROUP = "Connection"


def define_connection(config: ConfigDef) -> ConfigDef:
    """Add the connection keys to `config`."""
    return (
        config
        .define("connection.url", ConfigType.STRING, "", Importance.HIGH,
                "libpq or JDBC URL of the database (postgresql://host:port/db).",
                group=CONNECTION_GROUP, order_in_group=1)
        .define("connection.host", ConfigType.STRING, "", Importance.HIGH,
                "Host name; overrides the URL's.", group=CONNECTION_GROUP, order_in_group=2)
        .define("connection.port", ConfigType.INT, 0, Importance.MEDIUM,
                "Port; 0 keeps the URL's (or 5432).", group=CONNECTION_GROUP, order_in_group=3)
        .define("connection.database", ConfigType.STRING, "", Importance.HIGH,
                "Database name; overrides the URL's.", group=CONNECTION_GROUP, order_in_group=4)
        .define("connection.user", ConfigType.STRING, "", Importance.HIGH,
                "User name.", group=CONNECTION_GROUP, order_in_group=5)
        .define("connection.password", ConfigType.PASSWORD, None, Importance.HIGH,
                "Password; shown as [hidden].", group=CONNECTION_GROUP, order_in_group=6)
    )


def connection_kwargs(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """psycopg.connect keyword arguments from parsed connection keys."""
    url = str(parsed.get("connection.url") or "").removeprefix("jdbc:")
    kwargs: dict[str, Any] = {"conninfo": url, "options": "-c TimeZone=UTC",
                              "application_name": "strom-connect"}
    for key, name in (("connection.host", "host"), ("connection.database", "dbname"),
                      ("connection.user", "user")):
        if parsed.get(key):
            kwargs[name] = parsed[key]
    if parsed.get("connection.port"):
        kwargs["port"] = parsed["connection.port"]
    password = parsed.get("connection.password")
    if isinstance(password, Password):
        kwargs["password"] = password.value
    return kwargs


def connect(parsed: Mapping[str, Any], **extra: Any) -> psycopg.Connection[Any]:
    """A new connection (autocommit off unless `extra` says otherwise)."""
    import psycopg

    kwargs = {**connection_kwargs(parsed), **extra}
    return psycopg.connect(**kwargs)

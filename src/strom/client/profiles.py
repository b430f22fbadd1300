"""Named connection profiles and client config files: where a cluster is and how to
reach it, written once instead of repeated as `-b` and `-X` on every command.

A **profile** is a table of `profiles.toml` (`$STROM_PROFILES`, else
`$XDG_CONFIG_HOME/strom/profiles.toml`, else `~/.config/strom/profiles.toml`), chosen
with `--profile NAME` or `STROM_PROFILE`, as rpk's profiles are:

    [profiles.prod]
    brokers = "kafka1:9093,kafka2:9093"
    security.protocol = "SASL_SSL"
    sasl.mechanism = "SCRAM-SHA-512"
    sasl.username = "alice"
    sasl.password = "alice-secret"
    ssl.ca.location = "/etc/strom/ca.pem"

Every key but `brokers` is a librdkafka property; TOML's dotted keys read as nested
tables and are joined back into the dotted name. A **client config file** (`--config
FILE` or `STROM_CLIENT_CONFIG`) is a Java properties file of client properties, as
Kafka's `--command-config` and kcat's `-F` take; its `bootstrap.servers` names the
brokers.

Precedence, lowest first: profile, config file, `-X`. Brokers: `-b` (or `STROM_BROKERS`)
when given, else the config file's `bootstrap.servers`, else the profile's `brokers`.
Secret values (`sasl.password`, `ssl.key.password`, ...) are never part of an error
message or a repr.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strom.client.errors import KafkaClientError
from strom.client.security import masked

PROFILE_ENV = "STROM_PROFILE"
PROFILES_FILE_ENV = "STROM_PROFILES"
CLIENT_CONFIG_ENV = "STROM_CLIENT_CONFIG"
BROKERS_KEY = "brokers"


def _config_error(message: str) -> KafkaClientError:
    return KafkaClientError(message, name="_INVALID_ARG",
                            hint="see the profile section of `strom --help` or docs/security.md")


@dataclass(frozen=True)
class Profile:
    """One named profile: its brokers (if it names them) and librdkafka properties."""

    name: str
    brokers: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # secrets stay out of logs and tracebacks
        return (f"Profile(name={self.name!r}, brokers={self.brokers!r}, "
                f"properties={masked(self.properties)!r})")


def profiles_path() -> Path:
    """Where the profiles live: `$STROM_PROFILES`, else the XDG config directory."""
    explicit = os.environ.get(PROFILES_FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "strom" / "profiles.toml"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested TOML tables back into dotted property names; values as librdkafka's
    strings (booleans lower-case)."""
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            flat[name] = str(value)
        else:
            raise _config_error(f"profile property {name} must be a string, number or "
                                "boolean")
    return flat


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Every profile of the file (none when it does not exist)."""
    path = path or profiles_path()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise _config_error(f"{path} is not valid TOML: {exc}") from None
    tables = document.get("profiles", {})
    if not isinstance(tables, Mapping):
        raise _config_error(f"{path}: `profiles` must be a table of tables")
    profiles = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise _config_error(f"{path}: profile {name!r} must be a table")
        properties = _flatten(table)
        brokers = properties.pop(BROKERS_KEY, None)
        profiles[name] = Profile(name, brokers, properties)
    return profiles


def load_profile(name: str, path: Path | None = None) -> Profile:
    """The profile called `name`; an unknown name is an error that lists the known ones."""
    path = path or profiles_path()
    profiles = load_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise _config_error(f"no profile {name!r} in {path} (profiles there: {known})")
    return profiles[name]


def load_client_config(path: Path) -> dict[str, str]:
    """A Java properties file of client properties (Kafka's `--command-config`)."""
    from strom.config.properties import load_properties

    try:
        return load_properties(path)
    except FileNotFoundError:
        raise _config_error(f"client config file {path} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise _config_error(f"client config file {path} cannot be read: {exc}") from None


@dataclass(frozen=True)
class Connection:
    """Where to connect and with which properties, after every source is merged."""

    brokers: str
    properties: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Connection(brokers={self.brokers!r}, properties={masked(self.properties)!r})"


def resolve(brokers: str | None, properties: Mapping[str, str], *, profile: str | None = None,
            config_file: Path | None = None, default_brokers: str = "localhost:9092"
            ) -> Connection:
    """Merge profile, config file and explicit properties (see the module docstring);
    `brokers` is None when the user named none. `profile` and `config_file` default to
    `STROM_PROFILE` and `STROM_CLIENT_CONFIG`."""
    profile = profile or os.environ.get(PROFILE_ENV) or None
    if config_file is None and os.environ.get(CLIENT_CONFIG_ENV):
        config_file = Path(os.environ[CLIENT_CONFIG_ENV])
    merged: dict[str, str] = {}
    chosen = brokers
    fallback: str | None = None
    if profile:
        found = load_profile(profile)
        merged.update(found.properties)
        fallback = found.brokers
    if config_file is not None:
        merged.update(load_client_config(config_file.expanduser()))
    merged.update(properties)
    from_config = merged.pop("bootstrap.servers", None)
    chosen = chosen or from_config or fallback or default_brokers
    return Connection(chosen, merged)

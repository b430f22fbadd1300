"""What every client command shares: its options, its error reporting, small parsers.

Options are spelled once here as `Annotated` aliases so `-b`, `-X` and `--format` mean
the same in every command. Commands are wrapped by `reports_errors`: whatever goes wrong
ends as one line on stderr (the Kafka error name, what happened, a hint) and a non-zero
exit code, never a traceback.

Only the standard library and Typer are imported at module level, so `strom server`
starts as fast as before; client libraries load inside the commands.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

DEFAULT_BROKERS = "localhost:9092"


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


Brokers = Annotated[
    str,
    typer.Option("--brokers", "-b", envvar="STROM_BROKERS", show_envvar=True,
                 help="Bootstrap brokers, host:port[,host:port...]."),
]
ClientProps = Annotated[
    list[str] | None,
    typer.Option("-X", metavar="KEY=VALUE",
                 help="Any librdkafka client property, e.g. -X security.protocol=SSL (repeatable)."),
]
ProfileName = Annotated[
    str | None,
    typer.Option("--profile", envvar="STROM_PROFILE", show_envvar=True,
                 help="A connection profile of ~/.config/strom/profiles.toml: brokers and "
                      "client properties (TLS, SASL) for every client command."),
]
ClientConfigFile = Annotated[
    Path | None,
    typer.Option("--config", envvar="STROM_CLIENT_CONFIG", show_envvar=True,
                 dir_okay=False,
                 help="A client properties file (Kafka's --command-config, kcat's -F): "
                      "bootstrap.servers, security.protocol, ssl.*, sasl.*."),
]
Format = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="text for people, json for scripts."),
]


class CliError(Exception):
    """A failure to report as one line: `NAME: message. Hint: hint`."""

    def __init__(self, message: str, *, name: str | None = None, hint: str | None = None,
                 code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.hint = hint
        self.code = code

    def line(self) -> str:
        text = f"{self.name}: {self.message}" if self.name else self.message
        text = text.rstrip()
        if self.hint:
            text = f"{text.rstrip('.')}. Hint: {self.hint}"
        return f"strom: error: {text}"


def fail(message: str, *, name: str | None = None, hint: str | None = None) -> NoReturn:
    raise CliError(message, name=name, hint=hint)


def print_error(error: CliError) -> None:
    line = error.line().replace("\n", " ")
    if sys.stderr.isatty():
        line = f"\x1b[31m{line}\x1b[0m"
    print(line, file=sys.stderr, flush=True)


F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """Turn any failure inside a command into one stderr line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from strom.cli.client import as_cli_error

        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(0) from None
        except Exception as exc:
            error = as_cli_error(exc, kwargs.get("brokers"))
            if error is None:
                raise
            print_error(error)
            raise typer.Exit(error.code) from None

    return wrapper  # type: ignore[return-value]


def _silence_stdout() -> None:
    """After the reader of a pipe went away (`| head`), let Python exit quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def select_connection(profile: str | None, config_file: Path | None) -> None:
    """The root options `--profile` and `--config`: every client command of this run
    resolves its connection with them (`strom.cli.client.connection_for`). They travel
    as STROM_PROFILE and STROM_CLIENT_CONFIG, their environment variables, so only the
    standard library is needed here (`strom server` starts as fast as before)."""
    if profile:
        os.environ["STROM_PROFILE"] = profile
    if config_file is not None:
        os.environ["STROM_CLIENT_CONFIG"] = str(config_file)


def parse_kv(items: list[str] | None, what: str = "-X") -> dict[str, str]:
    """`key=value` items into a dict (later items win)."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{what} expects key=value, got {item!r}", name="INVALID_ARGUMENT")
        result[key.strip()] = value
    return result


def parse_topic_partitions(items: list[str] | None) -> dict[str, list[int] | None]:
    """`topic` or `topic:0,1,2` items; None means every partition of the topic."""
    result: dict[str, list[int] | None] = {}
    for item in items or []:
        topic, sep, parts = item.partition(":")
        if not sep:
            result[topic] = None
            continue
        try:
            result[topic] = sorted({int(p) for p in parts.split(",") if p.strip()})
        except ValueError:
            fail(f"expected topic or topic:0,1,2, got {item!r}", name="INVALID_ARGUMENT")
    return result

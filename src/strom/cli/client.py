"""The CLI's face of `strom.client`: clients from `-b` and `-X`, and every client
failure as the one line `strom: error: NAME: message. Hint: hint`.

The library's hints speak of Kafka; these speak of `strom` commands and flags, so they
replace the library's hint for the same error name. librdkafka's own log lines stay
hidden (stderr is for the one error line) unless `STROM_CLI_DEBUG` is set.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from strom.cli.common import DEFAULT_BROKERS, CliError, OutputFormat, parse_kv
from strom.client import BrokerUnreachableError, ClientTimeoutError, KafkaClientError, KafkaClients
from strom.client.admin import outcomes
from strom.client.errors import BROKER_DOWN, as_client_error
from strom.client.logs import LIBRDKAFKA_LOGGER
from strom.client.profiles import Connection, resolve

CLIENT_ID = "strom-cli"

if not os.environ.get("STROM_CLI_DEBUG"):
    LIBRDKAFKA_LOGGER.propagate = False
else:  # pragma: no cover - a debugging aid
    logging.basicConfig(level=logging.DEBUG)


def connection_for(brokers: str, props: list[str] | None) -> Connection:
    """Brokers and client properties of one command: the profile, the client config
    file, then `-X`; `-b` unless it is the default and another source names brokers."""
    named = None if brokers == DEFAULT_BROKERS and not os.environ.get("STROM_BROKERS") \
        else brokers
    return resolve(named, parse_kv(props), default_brokers=DEFAULT_BROKERS)


def clients_for(brokers: str, props: list[str] | None) -> KafkaClients:
    """The clients of one command: `-b` brokers and `-X key=value` properties, over
    the selected profile and client config file."""
    connection = connection_for(brokers, props)
    return KafkaClients(connection.brokers, connection.properties, client_id=CLIENT_ID)


def _hints(brokers: str) -> dict[str, str]:
    down = (f"is a broker running at {brokers}? Start one with `strom server`, or point "
            "-b/--brokers (or STROM_BROKERS) at one")
    describe = "`strom topic describe TOPIC`"
    offsets = f"the offset is outside the partition's log; see its watermarks with {describe}"
    return {
        **dict.fromkeys(BROKER_DOWN, down),
        "_AUTHENTICATION": "check -X security.protocol, sasl.mechanism, sasl.username and "
                           "sasl.password",
        "_SSL": "check -X security.protocol and the ssl.* properties",
        "_INVALID_ARG": "-X takes librdkafka property names; see "
                        "https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md",
        "TOPIC_ALREADY_EXISTS": "pass --if-not-exists to accept an existing topic",
        "UNKNOWN_TOPIC_OR_PART": "`strom topic list` shows the topics that exist",
        "_UNKNOWN_TOPIC": "`strom topic list` shows the topics that exist",
        "_UNKNOWN_PARTITION": f"{describe} shows its partitions",
        "INVALID_PARTITIONS": f"the new count must be larger than the current one ({describe})",
        "INVALID_REPLICATION_FACTOR": "it cannot exceed the number of brokers "
                                      "(`strom cluster info`)",
        "INVALID_CONFIG": f"{describe} lists config names, values and sources",
        "GROUP_ID_NOT_FOUND": "`strom group list` shows the groups",
        "MSG_SIZE_TOO_LARGE": "raise max.message.bytes on the topic "
                              "(`strom topic alter-config TOPIC --set max.message.bytes=N`)",
        "NOT_ENOUGH_REPLICAS": f"fewer in-sync replicas than min.insync.replicas; see {describe}",
        "_AUTO_OFFSET_RESET": offsets,
        "OFFSET_OUT_OF_RANGE": offsets,
    }


def cli_error(error: KafkaClientError, brokers: str | None = None) -> CliError:
    """The one-line form of a client failure, with the CLI's hint where it has one."""
    hints = _hints(brokers or DEFAULT_BROKERS)
    if isinstance(error, BrokerUnreachableError | ClientTimeoutError):
        hint: str | None = hints["_ALL_BROKERS_DOWN"]
    else:
        hint = hints.get(error.name, error.hint)
    return CliError(error.message, name=error.name, hint=hint)


def delivery_error(error: Any, brokers: str | None = None) -> CliError:
    """A delivery report's KafkaError as a one-line error."""
    return cli_error(KafkaClientError.from_kafka_error(error), brokers)


def as_cli_error(exc: BaseException, brokers: str | None = None) -> CliError | None:
    """Any failure a command can meet as a CliError; None for a bug (let it show)."""
    if isinstance(exc, CliError):
        return exc
    error = as_client_error(exc)
    if error is not None:
        return cli_error(error, brokers)
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
        return CliError(str(exc), name=type(exc).__name__)
    return None


def per_resource(clients: KafkaClients, futures: dict[Any, Any], fmt: OutputFormat,
                 ok_status: str, label: str = "TOPIC",
                 tolerate: dict[str, str] | None = None) -> None:
    """Print one row per resource with its outcome; an error named in `tolerate` counts as
    success with that status (`--if-not-exists`). Failures also go to stderr as error
    lines, and the command exits 1 if any failed."""
    import typer

    from strom.cli.common import print_error
    from strom.cli.output import Output
    from strom.client.admin import resource_name

    rows = []
    failed: list[CliError] = []
    accepted = tolerate or {}
    for resource, outcome in outcomes(clients, futures).items():
        name = resource_name(resource)
        if isinstance(outcome, KafkaClientError) and outcome.name not in accepted:
            error = cli_error(outcome, clients.bootstrap_servers)
            failed.append(error)
            rows.append({label.lower(): name, "status": "failed", "error": error.name,
                         "message": error.message})
            continue
        if isinstance(outcome, KafkaClientError):
            status = accepted[outcome.name]
        else:
            status = outcome if isinstance(outcome, str) else ok_status
        rows.append({label.lower(): name, "status": status, "error": None})
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
    else:
        out.table([label, "STATUS"], [[r[label.lower()], r["status"] if not r["error"]
                                       else f"{r['error']}"] for r in rows])
    for error in failed:
        print_error(error)
    if failed:
        raise typer.Exit(1)

"""`strom connect`: run a Connect worker, and manage connectors through its REST API.

    strom connect standalone worker.properties [connector.properties ...]
    strom connect distributed worker.properties
    strom connect list [--json] | status NAME | config NAME | plugins | validate FILE
    strom connect create FILE [--no-update] | delete NAME
    strom connect restart NAME [--include-tasks] [--only-failed] [--task N]
    strom connect pause | resume | stop NAME
    strom connect offsets get NAME | alter NAME FILE | reset NAME

The management verbs speak Kafka Connect's REST API (`--url`, or `STROM_CONNECT_URL`,
default http://localhost:8083), so they work against Kafka Connect too. This module
imports Typer only; the runtime loads inside the commands, so `strom` starts as fast
as before.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(name="connect", help="Kafka Connect workers (Kafka Connect's REST API, Python "
                  "connectors).", no_args_is_help=True, add_completion=False)


@app.command()
def standalone(
    worker_properties: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                      help="worker.properties (Kafka's names).")],
    connector_properties: Annotated[list[Path] | None, typer.Argument(
        exists=True, dir_okay=False, help="Connector .properties files to create at start.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run one worker as connect-standalone.sh does: offsets in a local file, REST API on
    `listeners` (http://:8083 by default)."""
    from strom.connect.runtime.standalone import run

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise typer.Exit(run(worker_properties, connector_properties or [], log_level.lower()))


@app.command()
def distributed(
    worker_properties: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                      help="worker.properties (Kafka's names).")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run one worker of a Connect cluster as connect-distributed.sh does: workers sharing
    `group.id` divide the work; configs, offsets and statuses live in Kafka topics."""
    from strom.connect.runtime.distributed.run import run

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise typer.Exit(run(worker_properties, log_level.lower()))


Url = Annotated[str, typer.Option("--url", envvar="STROM_CONNECT_URL",
                                  help="The Connect REST API (Kafka Connect's or Strom's).")]
DEFAULT_URL = "http://localhost:8083"


def _call(url: str, method: str, path: str, body: Any = None) -> Any:
    """One REST call; Kafka Connect's error body becomes a one-line error and exit 1."""
    from strom.connect.rest.client import RestError, call

    try:
        return call(url, method, path, body)
    except RestError as exc:
        suffix = f" (HTTP {exc.status})" if exc.status else ""
        typer.echo(f"error: {exc}{suffix}", err=True)
        raise typer.Exit(1) from None


def _show(answer: Any) -> None:
    if answer is not None:
        typer.echo(json.dumps(answer, indent=2))


def _path(name: str, suffix: str = "") -> str:
    """`/connectors/{name}{suffix}`, the name percent-encoded (names may hold '/', '?', ' ')."""
    from urllib.parse import quote

    return f"/connectors/{quote(name, safe='')}{suffix}"


@app.command("list")
def list_connectors(url: Url = DEFAULT_URL,
                    as_json: Annotated[bool, typer.Option("--json", help="Kafka's expanded answer.")] = False,
                    ) -> None:
    """Connectors with their type, state and their tasks' states."""
    answer = _call(url, "GET", "/connectors?expand=status&expand=info")
    if as_json:
        _show(answer)
        return
    for name in sorted(answer):
        status = answer[name]["status"]
        tasks = ",".join(t["state"] for t in status["tasks"]) or "-"
        typer.echo(f"{name}\t{status['type']}\t{status['connector']['state']}\ttasks: {tasks}")


@app.command()
def status(name: str, url: Url = DEFAULT_URL) -> None:
    """A connector's status (with failed tasks' traces)."""
    _show(_call(url, "GET", _path(name, "/status")))


@app.command()
def config(name: str, url: Url = DEFAULT_URL) -> None:
    """A connector's configuration."""
    _show(_call(url, "GET", _path(name, "/config")))


@app.command()
def plugins(url: Url = DEFAULT_URL,
            everything: Annotated[bool, typer.Option("--all", help="Transforms, predicates and "
                                                     "converters too.")] = False) -> None:
    """The plugins the worker can run: class, type, version."""
    suffix = "?connectorsOnly=false" if everything else ""
    for plugin in _call(url, "GET", "/connector-plugins" + suffix):
        typer.echo(f"{plugin['class']}\t{plugin['type']}\t{plugin.get('version', '')}")


def _read_connector_file(path: Path) -> tuple[str, dict[str, Any]]:
    """(name, config) from a .properties file or a JSON file ({"name", "config"} or flat)."""
    if path.suffix == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            typer.echo(f"error: {path} is not JSON: {exc}", err=True)
            raise typer.Exit(1) from None
        config = dict(document.get("config", document))
        name = document.get("name") or config.get("name")
    else:
        from strom.config.properties import load_properties

        config = dict(load_properties(path))
        name = config.get("name")
    if not name:
        typer.echo(f"error: {path} names no connector ('name')", err=True)
        raise typer.Exit(1)
    return str(name), {k: str(v) for k, v in config.items()}


ConnectorFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                               help="A .properties file (connect-standalone's form) or "
                                                    "a .json file ({\"name\", \"config\"} or the config).")]


@app.command()
def create(file: ConnectorFile, url: Url = DEFAULT_URL,
           no_update: Annotated[bool, typer.Option(help="Fail if the connector exists (POST "
                                                   "/connectors) instead of updating it.")] = False,
           ) -> None:
    """Create or update a connector from a .properties or .json file (PUT .../config)."""
    name, settings = _read_connector_file(file)
    if no_update:
        _show(_call(url, "POST", "/connectors", {"name": name, "config": settings}))
    else:
        _show(_call(url, "PUT", _path(name, "/config"), settings))


@app.command()
def validate(file: ConnectorFile, url: Url = DEFAULT_URL) -> None:
    """Validate a connector config file against its plugin; exit 1 with each error if invalid."""
    name, settings = _read_connector_file(file)
    plugin = settings.get("connector.class", "")
    from urllib.parse import quote

    answer = _call(url, "PUT", f"/connector-plugins/{quote(plugin, safe='')}/config/validate",
                   {**settings, "name": name})
    errors = [(c["value"]["name"], e) for c in answer.get("configs", []) for e in c["value"]["errors"]]
    for key, error in errors:
        typer.echo(f"{key}: {error}", err=True)
    if answer.get("error_count"):
        raise typer.Exit(1)
    typer.echo(f"{name}: valid ({answer.get('name', plugin)})")


@app.command()
def delete(name: str, url: Url = DEFAULT_URL) -> None:
    """Delete a connector."""
    _call(url, "DELETE", _path(name))


@app.command()
def restart(name: str, include_tasks: bool = False, only_failed: bool = False,
            task: Annotated[int | None, typer.Option(help="Restart only this task.")] = None,
            url: Url = DEFAULT_URL) -> None:
    """Restart a connector (and its tasks with --include-tasks; only failed ones with
    --only-failed), or one task (--task N)."""
    if task is not None:
        _call(url, "POST", _path(name, f"/tasks/{task}/restart"))
        return
    flags = f"?includeTasks={str(include_tasks).lower()}&onlyFailed={str(only_failed).lower()}"
    _show(_call(url, "POST", _path(name, "/restart" + flags)))


@app.command()
def pause(name: str, url: Url = DEFAULT_URL) -> None:
    """Pause a connector and its tasks."""
    _call(url, "PUT", _path(name, "/pause"))


@app.command()
def resume(name: str, url: Url = DEFAULT_URL) -> None:
    """Resume a paused or stopped connector."""
    _call(url, "PUT", _path(name, "/resume"))


@app.command()
def stop(name: str, url: Url = DEFAULT_URL) -> None:
    """Stop a connector (KIP-875): tasks shut down; offsets can then be changed."""
    _call(url, "PUT", _path(name, "/stop"))


offsets_app = typer.Typer(name="offsets", no_args_is_help=True, add_completion=False,
                          help="A connector's offsets (KIP-875): get, alter, reset. Stop the "
                               "connector before altering or resetting them.")
app.add_typer(offsets_app)


@offsets_app.command("get")
def offsets_get(name: str, url: Url = DEFAULT_URL) -> None:
    """The connector's offsets: source partitions and offsets, or a sink's consumer group's."""
    _show(_call(url, "GET", _path(name, "/offsets")))


@offsets_app.command("alter")
def offsets_alter(name: str,
                  file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=(
                      "JSON: {\"offsets\": [{\"partition\": {...}, \"offset\": {...}}]}, or the list "
                      "alone. A sink's partition is {\"kafka_topic\", \"kafka_partition\"}, its "
                      "offset {\"kafka_offset\"}."))],
                  url: Url = DEFAULT_URL) -> None:
    """Alter offsets from a file (PATCH .../offsets); the connector must be STOPPED."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        typer.echo(f"error: {file} is not JSON: {exc}", err=True)
        raise typer.Exit(1) from None
    if isinstance(body, list):
        body = {"offsets": body}
    _show(_call(url, "PATCH", _path(name, "/offsets"), body))


@offsets_app.command("reset")
def offsets_reset(name: str, url: Url = DEFAULT_URL) -> None:
    """Reset every offset (DELETE .../offsets); the connector must be STOPPED."""
    _show(_call(url, "DELETE", _path(name, "/offsets")))

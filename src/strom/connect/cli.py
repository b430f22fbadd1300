"""`strom connect`: run a Connect worker, and manage connectors through its REST API.

    strom connect standalone worker.properties [connector.properties ...]
    strom connect distributed worker.properties
    strom connect list | status NAME | create FILE | delete NAME
    strom connect restart NAME [--include-tasks] [--only-failed] | pause | resume | stop NAME
    strom connect offsets NAME

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


@app.command("list")
def list_connectors(url: Url = DEFAULT_URL) -> None:
    """Connectors with their state and their tasks' states."""
    answer = _call(url, "GET", "/connectors?expand=status")
    for name in sorted(answer):
        status = answer[name]["status"]
        tasks = ",".join(t["state"] for t in status["tasks"]) or "-"
        typer.echo(f"{name}\t{status['type']}\t{status['connector']['state']}\ttasks: {tasks}")


@app.command()
def status(name: str, url: Url = DEFAULT_URL) -> None:
    """A connector's status (with failed tasks' traces)."""
    _show(_call(url, "GET", f"/connectors/{name}/status"))


def _read_connector_file(path: Path) -> tuple[str, dict[str, Any]]:
    """(name, config) from a .properties file or a JSON file ({"name", "config"} or flat)."""
    if path.suffix == ".json":
        document = json.loads(path.read_text(encoding="utf-8"))
        config = dict(document.get("config", document))
        name = document.get("name") or config.get("name")
    else:
        from strom.config.properties import load_properties

        config = dict(load_properties(path))
        name = config.get("name")
    if not name:
        typer.echo(f"error: {path} names no connector ('name')", err=True)
        raise typer.Exit(1)
    return str(name), config


@app.command()
def create(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
           url: Url = DEFAULT_URL) -> None:
    """Create or update a connector from a .properties or .json file (PUT .../config)."""
    name, config = _read_connector_file(file)
    _show(_call(url, "PUT", f"/connectors/{name}/config", config))


@app.command()
def delete(name: str, url: Url = DEFAULT_URL) -> None:
    """Delete a connector."""
    _call(url, "DELETE", f"/connectors/{name}")


@app.command()
def restart(name: str, include_tasks: bool = False, only_failed: bool = False,
            url: Url = DEFAULT_URL) -> None:
    """Restart a connector (and its tasks with --include-tasks; only failed ones with --only-failed)."""
    flags = f"?includeTasks={str(include_tasks).lower()}&onlyFailed={str(only_failed).lower()}"
    _show(_call(url, "POST", f"/connectors/{name}/restart{flags}"))


@app.command()
def pause(name: str, url: Url = DEFAULT_URL) -> None:
    """Pause a connector and its tasks."""
    _call(url, "PUT", f"/connectors/{name}/pause")


@app.command()
def resume(name: str, url: Url = DEFAULT_URL) -> None:
    """Resume a paused or stopped connector."""
    _call(url, "PUT", f"/connectors/{name}/resume")


@app.command()
def stop(name: str, url: Url = DEFAULT_URL) -> None:
    """Stop a connector (KIP-875): tasks shut down; offsets can then be changed."""
    _call(url, "PUT", f"/connectors/{name}/stop")


@app.command()
def offsets(name: str, url: Url = DEFAULT_URL,
            reset: Annotated[bool, typer.Option(help="Reset them (the connector must be stopped).")] = False,
            set_file: Annotated[Path | None, typer.Option(
                "--set", exists=True, dir_okay=False,
                help="Alter them from a JSON file {\"offsets\": [...]} (connector stopped).")] = None,
            ) -> None:
    """Show, alter (--set FILE) or reset (--reset) a connector's offsets (KIP-875)."""
    if reset:
        _show(_call(url, "DELETE", f"/connectors/{name}/offsets"))
    elif set_file is not None:
        _show(_call(url, "PATCH", f"/connectors/{name}/offsets",
                    json.loads(set_file.read_text(encoding="utf-8"))))
    else:
        _show(_call(url, "GET", f"/connectors/{name}/offsets"))

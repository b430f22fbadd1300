"""`strom cluster`: brokers, controller, cluster id, broker configs."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strom.cli.common import (
    DEFAULT_BROKERS,
    Brokers,
    ClientProps,
    Format,
    OutputFormat,
    reports_errors,
)

if TYPE_CHECKING:
    from strom.client import KafkaClients

app = typer.Typer(help="Brokers, controller and broker configs.", no_args_is_help=True)


def _clients(brokers: str, props: list[str] | None) -> KafkaClients:
    from strom.cli.client import clients_for

    return clients_for(brokers, props)


def cluster_info(clients: KafkaClients) -> dict[str, Any]:
    described = clients.result(clients.admin().describe_cluster(request_timeout=clients.timeout))
    metadata = clients.list_topics()
    controller = described.controller
    user_topics = [t for t in metadata.topics if not t.startswith("__")]
    return {
        "cluster_id": described.cluster_id,
        "controller_id": controller.id if controller is not None else None,
        "brokers": [{"id": n.id, "host": n.host, "port": n.port, "rack": n.rack}
                    for n in sorted(described.nodes, key=lambda n: n.id)],
        "topics": len(user_topics),
        "partitions": sum(len(metadata.topics[t].partitions) for t in user_topics),
    }


@app.command()
@reports_errors
def info(
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Cluster id, controller, brokers, and how many topics and partitions there are."""
    from strom.cli.output import Output

    data = cluster_info(_clients(brokers, props))
    out = Output(fmt)
    if out.json:
        out.emit_json(data)
        return
    out.section([("CLUSTER", data["cluster_id"]), ("CONTROLLER", data["controller_id"]),
                 ("TOPICS", data["topics"]), ("PARTITIONS", data["partitions"])])
    out.blank()
    out.table(["ID", "HOST", "PORT", "RACK", "CONTROLLER"],
              [[b["id"], b["host"], b["port"], b["rack"],
                "*" if b["id"] == data["controller_id"] else ""] for b in data["brokers"]])


@app.command()
@reports_errors
def config(
    names: Annotated[list[str] | None, typer.Argument(
        help="Only these configs (shell patterns like 'log.retention.*').",
        show_default=False)] = None,
    broker: Annotated[list[int] | None, typer.Option(
        "--broker", "-B", help="Broker id (repeatable); default: every broker.")] = None,
    changed: Annotated[bool, typer.Option(
        "--changed", help="Only configs not at their default.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Broker configs with their value and source.

    strom cluster config 'log.retention.*' --changed
    """
    from confluent_kafka.admin import ConfigResource

    from strom.cli.output import Output
    from strom.client.admin import config_source, results

    clients = _clients(brokers, props)
    ids = broker or [b["id"] for b in cluster_info(clients)["brokers"]]
    futures = clients.admin().describe_configs([ConfigResource("BROKER", str(i)) for i in ids],
                                               request_timeout=clients.timeout)
    rows = []
    for resource, entries in results(clients, futures).items():
        for entry in sorted(entries.values(), key=lambda e: e.name):
            source = config_source(entry)
            if names and not any(fnmatch.fnmatchcase(entry.name, n) for n in names):
                continue
            if changed and source == "DEFAULT":
                continue
            rows.append({"broker": int(resource.name), "name": entry.name,
                         "value": None if entry.is_sensitive else entry.value,
                         "source": source, "read_only": bool(entry.is_read_only),
                         "sensitive": bool(entry.is_sensitive)})
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
        return
    out.table(["BROKER", "NAME", "VALUE", "SOURCE", "READ-ONLY"],
              [[r["broker"], r["name"], "(sensitive)" if r["sensitive"] else r["value"],
                r["source"], r["read_only"]] for r in rows])


@app.command()
def up(
    directory: Annotated[str, typer.Option("--dir", help="Where ZooKeeper and brokers keep data.")]
    = "./strom-cluster",
    brokers: Annotated[int, typer.Option("--brokers", "-n", min=1, help="How many brokers.")] = 3,
    zookeeper_port: Annotated[int, typer.Option(help="ZooKeeper's client port.")] = 2181,
    first_port: Annotated[int, typer.Option(help="Broker 1's port; the others follow.")] = 9092,
) -> None:
    """Start a local ZooKeeper and N brokers on loopback ports until Ctrl-C (development)."""
    from pathlib import Path

    from strom.cli.local_cluster import ClusterError, LocalCluster

    cluster = LocalCluster(Path(directory), brokers, zookeeper_port, first_port)
    try:
        cluster.start()
        typer.echo(f"strom cluster up: {brokers} broker(s) at {cluster.bootstrap}, ZooKeeper "
                   f"127.0.0.1:{zookeeper_port}, data and logs in {directory}; Ctrl-C stops it")
        cluster.wait()
    except ClusterError as exc:
        typer.echo(f"strom: error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        cluster.stop()

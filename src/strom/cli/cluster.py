"""`strom cluster`: brokers, controller, cluster id; `strom cluster config` shows broker
configs and changes the dynamic ones (per broker or cluster-wide), as `rpk cluster
config` does, through `strom.client.broker_configs`."""

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
    fail,
    parse_kv,
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


config_app = typer.Typer(
    help="Broker configs: show them, and change the dynamic ones without a restart, for "
         "one broker (--broker) or as the cluster-wide default.",
    no_args_is_help=True)
app.add_typer(config_app, name="config")

BrokerOption = Annotated[int | None, typer.Option(
    "--broker", "-B", help="One broker's own config (default: the cluster-wide default).",
    show_default=False)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Validate only; change nothing.")]


def _target(broker: int | None) -> str:
    return "the cluster-wide default" if broker is None else f"broker {broker}"


@config_app.command("show")
@reports_errors
def config_show(
    names: Annotated[list[str] | None, typer.Argument(
        help="Only these configs (shell patterns like 'log.retention.*').",
        show_default=False)] = None,
    broker: Annotated[list[int] | None, typer.Option(
        "--broker", "-B", help="Broker id (repeatable); default: every broker.")] = None,
    default: Annotated[bool, typer.Option(
        "--default", help="The cluster-wide dynamic defaults instead of brokers.")] = False,
    changed: Annotated[bool, typer.Option(
        "--changed", help="Only configs not at their default.")] = False,
    dynamic: Annotated[bool, typer.Option(
        "--dynamic", help="Only configs that can change without a restart.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Broker configs with their value, where it comes from, and whether it is dynamic.

    strom cluster config show 'log.retention.*' --changed
    strom cluster config show --default
    """
    from strom.cli.output import Output
    from strom.client.broker_configs import describe_broker_configs

    clients = _clients(brokers, props)
    ids: list[int | None] = [None] if default else list(
        broker or [b["id"] for b in cluster_info(clients)["brokers"]])
    rows = []
    for broker_id in ids:
        for entry in describe_broker_configs(clients, broker_id):
            if names and not any(fnmatch.fnmatchcase(entry.name, n) for n in names):
                continue
            if (changed and entry.source == "DEFAULT") or (dynamic and not entry.dynamic):
                continue
            rows.append({"broker": broker_id, "name": entry.name,
                         "value": None if entry.sensitive else entry.value,
                         "source": entry.source, "read_only": entry.read_only,
                         "sensitive": entry.sensitive})
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
        return
    out.table(["BROKER", "NAME", "VALUE", "SOURCE", "DYNAMIC"],
              [["default" if r["broker"] is None else r["broker"], r["name"],
                "(sensitive)" if r["sensitive"] else r["value"], r["source"],
                not r["read_only"]] for r in rows])
    if default and not rows:
        out.note("no cluster-wide dynamic defaults are set")


@config_app.command("get")
@reports_errors
def config_get(
    name: Annotated[str, typer.Argument(help="A broker config name.", show_default=False)],
    broker: Annotated[int | None, typer.Option(
        "--broker", "-B", help="Broker id; default: the broker with the lowest id.",
        show_default=False)] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Print one config's effective value on a broker (nothing if it has none).

    Without --broker, the broker with the lowest id answers.

    strom cluster config get log.retention.ms
    """
    from strom.client.broker_configs import describe_broker_configs

    clients = _clients(brokers, props)
    broker_id = broker if broker is not None else min(
        b["id"] for b in cluster_info(clients)["brokers"])
    found = {e.name: e for e in describe_broker_configs(clients, broker_id)}.get(name)
    if found is None:
        fail(f"broker {broker_id} reports no config named {name!r}", name="UNKNOWN_CONFIG",
             hint="`strom cluster config show` lists them")
    if found.value is not None:
        typer.echo(found.value)


def _pairs(items: list[str]) -> dict[str, str]:
    """KEY=VALUE items, or one KEY VALUE pair (as `rpk cluster config set` takes it)."""
    if len(items) == 2 and "=" not in items[0]:
        return {items[0]: items[1]}
    return parse_kv(items, "set")


@config_app.command("set")
@reports_errors
def config_set(
    items: Annotated[list[str], typer.Argument(
        metavar="KEY=VALUE...", help="Configs to set (or one KEY VALUE pair).",
        show_default=False)],
    broker: BrokerOption = None,
    dry_run: DryRun = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Set dynamic broker configs, cluster-wide or for one --broker.

    They apply at once and survive restarts; configs that need a restart are refused.

    strom cluster config set log.retention.ms=86400000
    strom cluster config set message.max.bytes 2097152 --broker 1
    """
    from strom.client.broker_configs import alter_broker_configs

    configs = _pairs(items)
    alter_broker_configs(_clients(brokers, props), broker, configs, validate_only=dry_run)
    verb = "would set" if dry_run else "set"
    for key, value in configs.items():
        typer.echo(f"{verb} {key}={value} for {_target(broker)}")


@config_app.command("delete")
@reports_errors
def config_delete(
    names: Annotated[list[str], typer.Argument(
        metavar="KEY...", help="Dynamic configs to remove.", show_default=False)],
    broker: BrokerOption = None,
    dry_run: DryRun = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Remove dynamic broker configs, cluster-wide or for one --broker.

    The value falls back to the next level: the cluster-wide default, then
    server.properties, then the built-in default.

    strom cluster config delete log.retention.ms
    """
    from strom.client.broker_configs import alter_broker_configs

    alter_broker_configs(_clients(brokers, props), broker, {}, names, validate_only=dry_run)
    verb = "would remove" if dry_run else "removed"
    for name in names:
        typer.echo(f"{verb} {name} from {_target(broker)}")


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

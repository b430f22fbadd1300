"""`strom topic`: create, list, describe, delete, add-partitions, alter-config, produce,
consume — with confluent-kafka's AdminClient, Producer and Consumer."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strom.cli import consume, produce
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

app = typer.Typer(help="Create, inspect, change and delete topics; produce and consume.",
                  no_args_is_help=True)
app.command("produce")(produce.produce)
app.command("consume")(consume.consume)

Topics = Annotated[list[str], typer.Argument(help="Topic names.", show_default=False)]


def _clients(brokers: str, props: list[str] | None) -> KafkaClients:
    from strom.cli.client import clients_for

    return clients_for(brokers, props)


@app.command()
@reports_errors
def create(
    topics: Topics,
    partitions: Annotated[int, typer.Option("--partitions", "-p",
                                            help="Partitions; -1 = the broker's num.partitions.")] = -1,
    replication_factor: Annotated[int, typer.Option(
        "--replication-factor", "-r",
        help="Replicas per partition; -1 = the broker's default.replication.factor.")] = -1,
    config: Annotated[list[str] | None, typer.Option(
        "--config", "-c", metavar="KEY=VALUE", help="Topic config (repeatable).")] = None,
    if_not_exists: Annotated[bool, typer.Option(
        "--if-not-exists", help="Succeed if the topic already exists.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate on the broker without creating.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Create topics.

    strom topic create orders -p 6 -c retention.ms=86400000 -c cleanup.policy=compact
    """
    from confluent_kafka.admin import NewTopic

    from strom.cli.client import per_resource

    clients = _clients(brokers, props)
    configs = parse_kv(config, "--config")
    new = [NewTopic(t, num_partitions=partitions, replication_factor=replication_factor,
                    config=configs) for t in topics]
    admin = clients.admin()
    futures = admin.create_topics(new, validate_only=dry_run,
                                  request_timeout=clients.timeout, operation_timeout=clients.timeout)
    per_resource(clients, futures, fmt, "validated" if dry_run else "created",
                 tolerate={"TOPIC_ALREADY_EXISTS": "exists"} if if_not_exists else None)


@app.command("list")
@reports_errors
def list_(
    internal: Annotated[bool, typer.Option("--internal", "-i",
                                           help="Include internal topics.")] = False,
    regex: Annotated[str | None, typer.Option("--regex", "-r",
                                              help="Only topics whose name matches.")] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """List topics with their partition count and replication factor."""
    from strom.cli.output import Output

    clients = _clients(brokers, props)
    metadata = clients.list_topics()
    pattern = re.compile(regex) if regex else None
    rows = []
    for name, info in sorted(metadata.topics.items()):
        is_internal = name.startswith("__")
        if (is_internal and not internal) or (pattern and not pattern.search(name)):
            continue
        rf = max((len(p.replicas) for p in info.partitions.values()), default=0)
        rows.append({"name": name, "partitions": len(info.partitions),
                     "replication_factor": rf, "internal": is_internal})
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
    else:
        out.table(["NAME", "PARTITIONS", "REPLICAS"],
                  [[r["name"], r["partitions"], r["replication_factor"]] for r in rows])


def describe_topics(clients: KafkaClients, topics: list[str]) -> list[dict[str, Any]]:
    """Everything `describe` shows, as plain data."""
    from confluent_kafka import TopicCollection, TopicPartition
    from confluent_kafka.admin import ConfigResource, OffsetSpec

    from strom.client.admin import config_source, list_offsets, results

    admin = clients.admin()
    described = admin.describe_topics(TopicCollection(topics), request_timeout=clients.timeout)
    descriptions = results(clients, described)
    specs: dict[Any, Any] = {}
    for name, desc in descriptions.items():
        for p in desc.partitions:
            specs[TopicPartition(name, p.id)] = OffsetSpec.earliest()
    lows = list_offsets(clients, specs)
    highs = list_offsets(clients, {tp: OffsetSpec.latest() for tp in specs})
    config_futures = admin.describe_configs([ConfigResource("TOPIC", t) for t in topics],
                                            request_timeout=clients.timeout)
    configs = {resource.name: found for resource, found in results(clients, config_futures).items()}
    result = []
    for name in topics:
        desc = descriptions[name]
        partitions = []
        for p in sorted(desc.partitions, key=lambda p: p.id):
            low, high = lows.get((name, p.id)), highs.get((name, p.id))
            partitions.append({
                "partition": p.id,
                "leader": p.leader.id if p.leader is not None else -1,
                "replicas": [n.id for n in p.replicas],
                "isr": [n.id for n in p.isr],
                "low_watermark": low,
                "high_watermark": high,
                "records": None if low is None or high is None else high - low,
            })
        result.append({
            "name": name,
            "topic_id": str(desc.topic_id) if desc.topic_id is not None else None,
            "internal": bool(desc.is_internal),
            "partitions": partitions,
            "configs": [
                {"name": e.name, "value": e.value, "source": config_source(e),
                 "read_only": bool(e.is_read_only), "sensitive": bool(e.is_sensitive)}
                for e in sorted(configs[name].values(), key=lambda e: e.name)
            ],
        })
    return result


@app.command()
@reports_errors
def describe(
    topics: Topics,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Partitions (leader, replicas, ISR, low/high watermarks) and configs of topics."""
    from strom.cli.output import Output

    clients = _clients(brokers, props)
    data = describe_topics(clients, topics)
    out = Output(fmt)
    if out.json:
        out.emit_json(data)
        return
    for i, topic in enumerate(data):
        if i:
            out.blank()
        rf = max((len(p["replicas"]) for p in topic["partitions"]), default=0)
        out.section([("NAME", topic["name"]), ("TOPIC-ID", topic["topic_id"]),
                     ("INTERNAL", topic["internal"]), ("PARTITIONS", len(topic["partitions"])),
                     ("REPLICAS", rf)])
        out.blank()
        out.table(["PARTITION", "LEADER", "REPLICAS", "ISR", "LOW-WATERMARK", "HIGH-WATERMARK",
                   "RECORDS"],
                  [[p["partition"], p["leader"], p["replicas"], p["isr"], p["low_watermark"],
                    p["high_watermark"], p["records"]] for p in topic["partitions"]])
        out.blank()
        out.table(["CONFIG", "VALUE", "SOURCE"],
                  [[c["name"], "(sensitive)" if c["sensitive"] else c["value"], c["source"]]
                   for c in topic["configs"]])


@app.command()
@reports_errors
def delete(
    topics: Topics,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Delete topics and all their data."""
    from strom.cli.client import per_resource

    clients = _clients(brokers, props)
    futures = clients.admin().delete_topics(topics, request_timeout=clients.timeout,
                                            operation_timeout=clients.timeout)
    per_resource(clients, futures, fmt, "deleted")


@app.command("add-partitions")
@reports_errors
def add_partitions(
    topics: Topics,
    num: Annotated[int | None, typer.Option("--num", "-n",
                                            help="How many partitions to add.")] = None,
    to: Annotated[int | None, typer.Option("--to", help="The new total partition count.")] = None,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Add partitions to topics (existing keys may then map to other partitions)."""
    from confluent_kafka.admin import NewPartitions

    from strom.cli.client import per_resource

    if (num is None) == (to is None):
        fail("pass exactly one of --num (partitions to add) or --to (new total)",
             name="INVALID_ARGUMENT")
    clients = _clients(brokers, props)
    metadata = clients.topic_metadata(topics)
    new = []
    for topic in topics:
        total = to if to is not None else len(metadata[topic].partitions) + (num or 0)
        new.append(NewPartitions(topic, total))
    futures = clients.admin().create_partitions(new, request_timeout=clients.timeout,
                                                operation_timeout=clients.timeout)
    per_resource(clients, futures, fmt, "done")


@app.command("alter-config")
@reports_errors
def alter_config(
    topics: Topics,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                   help="Set a config (repeatable).")] = None,
    delete_: Annotated[list[str] | None, typer.Option(
        "--delete", "-d", metavar="KEY", help="Remove an override: back to the default.")] = None,
    append: Annotated[list[str] | None, typer.Option(
        "--append", metavar="KEY=VALUE", help="Append to a list config.")] = None,
    subtract: Annotated[list[str] | None, typer.Option(
        "--subtract", metavar="KEY=VALUE", help="Remove from a list config.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Change topic configs incrementally (IncrementalAlterConfigs).

    strom topic alter-config orders --set retention.ms=3600000 --delete cleanup.policy
    """
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    from strom.cli.client import per_resource

    ops: list[tuple[str, str | None, Any]] = []
    for key, value in parse_kv(set_, "--set").items():
        ops.append((key, value, AlterConfigOpType.SET))
    for key in delete_ or []:
        ops.append((key, None, AlterConfigOpType.DELETE))
    for key, value in parse_kv(append, "--append").items():
        ops.append((key, value, AlterConfigOpType.APPEND))
    for key, value in parse_kv(subtract, "--subtract").items():
        ops.append((key, value, AlterConfigOpType.SUBTRACT))
    if not ops:
        fail("nothing to change: pass --set, --delete, --append or --subtract",
             name="INVALID_ARGUMENT")
    clients = _clients(brokers, props)
    resources = [
        ConfigResource("TOPIC", topic, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=op) for key, value, op in ops])
        for topic in topics
    ]
    futures = clients.admin().incremental_alter_configs(
        resources, validate_only=dry_run, request_timeout=clients.timeout)
    per_resource(clients, futures, fmt, "validated" if dry_run else "altered")

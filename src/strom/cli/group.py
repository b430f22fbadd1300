"""`strom group`: list, describe, seek, delete consumer groups.

`list` and the TYPE and STATE of `describe` come from ListGroups v5 on every broker
(`strom.client.group_listing`): the group type (classic, consumer, share) and the state in
Kafka's words, KIP-848's Assigning and Reconciling included, which librdkafka's listing
cannot name. `describe` joins three more answers: the group description (members and
their assignment), its committed offsets, and the partitions' high watermarks; lag is
high watermark minus committed offset. `seek` changes committed offsets the way `kafka-consumer-groups.sh
--reset-offsets` does: it prints the plan and changes nothing unless `--execute` is given,
and only while the group has no active members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strom.cli.common import (
    DEFAULT_BROKERS,
    Brokers,
    ClientProps,
    CliError,
    Format,
    OutputFormat,
    fail,
    parse_topic_partitions,
    reports_errors,
)

if TYPE_CHECKING:
    from strom.client import KafkaClients
    from strom.client.group_listing import GroupListing
    from strom.client.protocol_admin import ProtocolAdmin

app = typer.Typer(help="Consumer groups: members, lag, offsets.", no_args_is_help=True)

Groups = Annotated[list[str], typer.Argument(help="Group ids.", show_default=False)]
INACTIVE_STATES = ("Empty", "Dead", "Unknown")


def _clients(brokers: str, props: list[str] | None) -> KafkaClients:
    from strom.cli.client import clients_for

    return clients_for(brokers, props)


def _protocol_admin(brokers: str, props: list[str] | None) -> ProtocolAdmin:
    from strom.cli.client import CLIENT_ID, connection_for
    from strom.client.protocol_admin import ProtocolAdmin

    connection = connection_for(brokers, props)
    return ProtocolAdmin.from_properties(connection.brokers, connection.properties,
                                        client_id=CLIENT_ID)


def _listings(brokers: str, props: list[str] | None) -> list[GroupListing]:
    from strom.client.group_listing import list_groups

    with _protocol_admin(brokers, props) as admin:
        return list_groups(admin)


def _state(value: Any) -> str:
    """Kafka's spelling of a group state: Stable, PreparingRebalance, Empty, ..."""
    name = getattr(value, "name", str(value))
    return "".join(part.capitalize() for part in name.split("_")).replace("Rebalancing",
                                                                          "Rebalance")


@app.command("list")
@reports_errors
def list_(
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """List groups with their type (classic, consumer, share) and state."""
    from strom.cli.output import Output

    rows = [{"group": g.group_id, "state": g.state, "type": g.group_type,
             "simple": g.is_simple} for g in _listings(brokers, props)]
    out = Output(fmt)
    if out.json:
        out.emit_json(rows)
    else:
        out.table(["GROUP", "STATE", "TYPE"], [[r["group"], r["state"], r["type"]] for r in rows])


def _committed(clients: KafkaClients, group: str) -> dict[tuple[str, int], int]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    futures = clients.admin().list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=clients.timeout)
    result = clients.result(futures[group])
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions
            if tp.error is None}


def _watermarks(clients: KafkaClients, keys: set[tuple[str, int]], latest: bool = True
                ) -> dict[tuple[str, int], int]:
    """Log end (or start) offsets; a deleted topic has none to show."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    from strom.client.admin import list_offsets

    spec = OffsetSpec.latest() if latest else OffsetSpec.earliest()
    return list_offsets(clients, {TopicPartition(t, p): spec for t, p in keys},
                        skip_errors=True)


def _description(clients: KafkaClients, group: str) -> Any:
    futures = clients.admin().describe_consumer_groups([group], request_timeout=clients.timeout)
    return clients.result(futures[group])


def _type(desc: Any) -> str | None:
    """The group type librdkafka reports (classic or consumer), if any."""
    name = getattr(getattr(desc, "type", None), "name", "")
    return name.lower() if name and name != "UNKNOWN" else None


def describe_group(clients: KafkaClients, group: str,
                   listing: GroupListing | None = None) -> dict[str, Any]:
    """The group's members, offsets and lag; `listing` (ListGroups) supplies its type and
    its state in Kafka's words when given."""
    desc = _description(clients, group)
    committed = _committed(clients, group)
    owners: dict[tuple[str, int], Any] = {}
    members = []
    for m in desc.members:
        assigned = [(tp.topic, tp.partition) for tp in (m.assignment.topic_partitions
                                                          if m.assignment else [])]
        for key in assigned:
            owners[key] = m
        members.append({"member_id": m.member_id, "client_id": m.client_id, "host": m.host,
                        "instance_id": m.group_instance_id,
                        "assignment": [{"topic": t, "partition": p} for t, p in sorted(assigned)]})
    state = listing.state if listing is not None else _state(desc.state)
    if state in ("Dead", "Unknown") and not members and not committed:
        fail(f"group {group!r} does not exist", name="GROUP_ID_NOT_FOUND",
             hint="`strom group list` shows the groups")
    keys = set(committed) | set(owners)
    highs = _watermarks(clients, keys)
    partitions = []
    total = 0
    for topic, partition in sorted(keys):
        offset = committed.get((topic, partition))
        if offset is not None and offset < 0:
            offset = None
        high = highs.get((topic, partition))
        lag = max(high - offset, 0) if high is not None and offset is not None else None
        total += lag or 0
        owner = owners.get((topic, partition))
        partitions.append({
            "topic": topic, "partition": partition, "committed_offset": offset,
            "high_watermark": high, "lag": lag,
            "member_id": owner.member_id if owner else None,
            "client_id": owner.client_id if owner else None,
            "host": owner.host if owner else None,
        })
    coordinator = desc.coordinator
    return {
        "group": group,
        "type": listing.group_type if listing is not None else _type(desc),
        "state": state,
        "assignor": desc.partition_assignor or None,
        "coordinator": ({"id": coordinator.id, "host": coordinator.host,
                         "port": coordinator.port} if coordinator is not None else None),
        "members": members,
        "partitions": partitions,
        "total_lag": total,
    }


@app.command()
@reports_errors
def describe(
    groups: Groups,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Members, assignment, committed offsets, high watermarks and lag per partition."""
    from strom.cli import share_group
    from strom.cli.output import Output

    clients = _clients(brokers, props)
    listed = {g.group_id: g for g in _listings(brokers, props)}
    data = [share_group.describe(brokers, props, g)
            if getattr(listed.get(g), "group_type", None) == "share"  # KIP-932
            else describe_group(clients, g, listed.get(g)) for g in groups]
    out = Output(fmt)
    if out.json:
        out.emit_json(data)
        return
    for i, group in enumerate(data):
        if i:
            out.blank()
        if group["type"] == "share":
            share_group.render(out, group)
            continue
        coordinator = group["coordinator"]
        out.section([
            ("GROUP", group["group"]), ("TYPE", group["type"]), ("STATE", group["state"]),
            ("COORDINATOR", f"{coordinator['id']} ({coordinator['host']}:{coordinator['port']})"
             if coordinator else None),
            ("ASSIGNOR", group["assignor"]), ("MEMBERS", len(group["members"])),
            ("TOTAL-LAG", group["total_lag"]),
        ])
        out.blank()
        out.table(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID",
                   "CLIENT-ID", "HOST"],
                  [[p["topic"], p["partition"], p["committed_offset"], p["high_watermark"],
                    p["lag"], p["member_id"], p["client_id"], p["host"]]
                   for p in group["partitions"]])


def _targets(clients: KafkaClients, group: str, topics: list[str] | None,
             committed: dict[tuple[str, int], int]) -> list[tuple[str, int]]:
    wanted = parse_topic_partitions(topics)
    if not wanted:
        if not committed:
            fail(f"group {group!r} has no committed offsets", name="INVALID_ARGUMENT",
                 hint="name the partitions to set with --topic TOPIC or --topic TOPIC:0,1")
        return sorted(committed)
    metadata = clients.topic_metadata(list(wanted))
    keys = []
    for topic, parts in wanted.items():
        available = sorted(metadata[topic].partitions)
        for p in parts if parts is not None else available:
            if p not in available:
                fail(f"topic {topic!r} has no partition {p}", name="UNKNOWN_TOPIC_OR_PART")
            keys.append((topic, p))
    return keys


@app.command()
@reports_errors
def seek(
    group: Annotated[str, typer.Argument(help="Group id.", show_default=False)],
    to_start: Annotated[bool, typer.Option("--to-start", "--to-earliest",
                                           help="To the log start.")] = False,
    to_end: Annotated[bool, typer.Option("--to-end", "--to-latest",
                                         help="To the log end.")] = False,
    to_offset: Annotated[int | None, typer.Option("--to-offset", help="To this offset.")] = None,
    to_timestamp: Annotated[str | None, typer.Option(
        "--to-timestamp", metavar="TIME",
        help="To the first record at or after TIME: ms, ISO-8601 or relative (-1h).")] = None,
    shift_by: Annotated[int | None, typer.Option(
        "--shift-by", help="Move the committed offsets by N (negative: back).")] = None,
    topic: Annotated[list[str] | None, typer.Option(
        "--topic", "-t", metavar="TOPIC[:P,P]",
        help="Partitions to move (repeatable); default: all with committed offsets.")] = None,
    execute: Annotated[bool, typer.Option(
        "--execute", help="Apply; without it, only show the plan.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Move a group's committed offsets (dry run unless --execute).

    \b
    strom group seek billing --to-timestamp 2024-05-01T00:00:00Z            # show the plan
    strom group seek billing --to-timestamp -1h --topic orders --execute    # apply it
    """
    from strom.cli.output import Output

    chosen = [to_start, to_end, to_offset is not None, to_timestamp is not None,
              shift_by is not None]
    if sum(chosen) != 1:
        fail("pass exactly one of --to-start, --to-end, --to-offset, --to-timestamp, "
             "--shift-by", name="INVALID_ARGUMENT")
    clients = _clients(brokers, props)
    desc = _description(clients, group)
    if execute:
        _require_inactive(desc, group)
    committed = _committed(clients, group)
    keys = _targets(clients, group, topic, committed)
    lows = _watermarks(clients, set(keys), latest=False)
    highs = _watermarks(clients, set(keys))
    choose = _chooser(clients, keys, to_start, to_end, to_offset, to_timestamp, shift_by)
    plan = []
    for key in keys:
        low, high = lows.get(key, 0), highs.get(key, 0)
        current = committed.get(key)
        current = current if current is not None and current >= 0 else None
        new = min(max(choose(key, low, high, current), low), high)  # clamped as Kafka's tool
        plan.append({"topic": key[0], "partition": key[1], "current_offset": current,
                     "new_offset": new, "low_watermark": low, "high_watermark": high})
    if execute:
        _apply(clients, group, plan)
    out = Output(fmt)
    if out.json:
        out.emit_json({"group": group, "executed": execute, "partitions": plan})
    else:
        out.table(["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET", "LOG-START-OFFSET",
                   "LOG-END-OFFSET"],
                  [[p["topic"], p["partition"], p["current_offset"], p["new_offset"],
                    p["low_watermark"], p["high_watermark"]] for p in plan])
        out.note(f"offsets of group {group} changed" if execute
                 else "dry run: nothing changed; pass --execute to apply")


def _require_inactive(desc: Any, group: str) -> None:
    """Offsets may change only while the group has no members (as Kafka's tool requires)."""
    state = _state(desc.state)
    if state not in INACTIVE_STATES or desc.members:
        raise CliError(
            f"group {group!r} is {state} with {len(desc.members)} member(s); offsets can be "
            "changed only while it has none", name="REBALANCE_IN_PROGRESS"
            if state.endswith("Rebalance") else "NON_EMPTY_GROUP",
            hint="stop its consumers and run again")


Chooser = Callable[[tuple[str, int], int, int, int | None], int]


def _chooser(clients: KafkaClients, keys: list[tuple[str, int]], to_start: bool, to_end: bool,
             to_offset: int | None, to_timestamp: str | None, shift_by: int | None) -> Chooser:
    """The new offset of a partition from (key, log start, log end, committed offset)."""
    from strom.cli.formats import parse_timestamp

    if to_start:
        return lambda key, low, high, current: low
    if to_end:
        return lambda key, low, high, current: high
    if to_offset is not None:
        return lambda key, low, high, current: to_offset
    if to_timestamp is not None:
        stamps = _for_timestamp(clients, keys, parse_timestamp(to_timestamp))
        return lambda key, low, high, current: stamps[key] if stamps[key] >= 0 else high
    return lambda key, low, high, current: (current if current is not None else low) + (
        shift_by or 0)


def _for_timestamp(clients: KafkaClients, keys: list[tuple[str, int]], ts: int
                   ) -> dict[tuple[str, int], int]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    from strom.client.admin import list_offsets

    return list_offsets(clients, {TopicPartition(t, p): OffsetSpec.for_timestamp(ts)
                                  for t, p in keys})


def _apply(clients: KafkaClients, group: str, plan: list[dict[str, Any]]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(p["topic"], p["partition"], p["new_offset"]) for p in plan])
    futures = clients.admin().alter_consumer_group_offsets([request],
                                                           request_timeout=clients.timeout)
    result = clients.result(futures[group])
    failed = [tp for tp in result.topic_partitions if tp.error is not None]
    if failed:
        error = failed[0].error
        raise CliError(f"{failed[0].topic}-{failed[0].partition}: {error.str()}",
                       name=error.name(), hint="stop the group's consumers and run again")


@app.command()
@reports_errors
def delete(
    groups: Groups,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Delete groups and their committed offsets (only groups without members)."""
    from strom.cli.client import per_resource

    clients = _clients(brokers, props)
    futures = clients.admin().delete_consumer_groups(groups, request_timeout=clients.timeout)
    per_resource(clients, futures, fmt, "deleted", label="GROUP")

"""`strom group describe` of a share group (KIP-932): members, and per share-partition the
start offset and the records not yet acknowledged (in flight or still to deliver).

Read over the Kafka protocol by `strom.client.share_groups`; `strom.cli.group` hands
share groups here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strom.cli.output import Output


def describe(brokers: str, props: list[str] | None, group: str) -> dict[str, Any]:
    """The share group as a dict (the JSON output, and what `render` prints)."""
    from strom.cli.client import CLIENT_ID, connection_for
    from strom.client.protocol_admin import ProtocolAdmin
    from strom.client.share_groups import describe_share_group

    connection = connection_for(brokers, props)
    with ProtocolAdmin.from_properties(connection.brokers, connection.properties,
                                       client_id=CLIENT_ID) as admin:
        view = describe_share_group(admin, group)
    node_id, host, port = view.coordinator
    owners: dict[tuple[str, int], list[str]] = {}
    for m in view.members:
        for key in m.assignment:
            owners.setdefault(key, []).append(m.member_id)
    return {
        "group": group, "type": "share", "state": view.state, "assignor": view.assignor,
        "group_epoch": view.group_epoch,
        "coordinator": {"id": node_id, "host": host, "port": port},
        "members": [{"member_id": m.member_id, "client_id": m.client_id, "host": m.host,
                     "member_epoch": m.member_epoch,
                     "assignment": [{"topic": t, "partition": p} for t, p in m.assignment]}
                    for m in view.members],
        "partitions": [{"topic": p.topic, "partition": p.partition,
                        "start_offset": p.start_offset, "in_flight": p.lag,
                        "members": len(owners.get((p.topic, p.partition), []))}
                       for p in view.partitions],
        "total_in_flight": view.total_lag,
    }


def render(out: Output, group: dict[str, Any]) -> None:
    coordinator = group["coordinator"]
    out.section([
        ("GROUP", group["group"]), ("TYPE", "share"), ("STATE", group["state"]),
        ("COORDINATOR", f"{coordinator['id']} ({coordinator['host']}:{coordinator['port']})"),
        ("ASSIGNOR", group["assignor"]), ("MEMBERS", len(group["members"])),
        ("IN-FLIGHT", group["total_in_flight"]),
    ])
    out.blank()
    out.table(["TOPIC", "PARTITION", "START-OFFSET", "IN-FLIGHT", "MEMBERS"],
              [[p["topic"], p["partition"], p["start_offset"], p["in_flight"], p["members"]]
               for p in group["partitions"]])
    if group["members"]:
        out.blank()
        out.table(["MEMBER-ID", "CLIENT-ID", "HOST", "EPOCH", "ASSIGNMENT"],
                  [[m["member_id"], m["client_id"], m["host"], m["member_epoch"],
                    ",".join(f"{a['topic']}:{a['partition']}" for a in m["assignment"])]
                   for m in group["members"]])

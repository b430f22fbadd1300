"""`strom streams`: reset and describe a Streams application (Strom Streams or Kafka Streams).

A Streams application is a consumer group named by its `application.id` plus the internal
topics it created (`<application.id>-...-changelog`, `-repartition`, and the foreign-key
join's subscription topics). `reset` is Kafka's `kafka-streams-application-reset`: input
offsets back to the earliest (or to the latest, an offset, a duration ago or a date and
time), intermediate topics skipped to their end, internal topics deleted, all refused
while the group has active members; `--dry-run` shows the plan and changes nothing.
`describe` shows the group, its members and their partitions, the lag per partition and
the internal topics. Both reuse `strom.streams.runtime.reset` and `strom group describe`'s
reading of a group, so a command and the library never disagree.
"""

from __future__ import annotations

import re
import time
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
    reports_errors,
)

if TYPE_CHECKING:
    from strom.client import KafkaClients
    from strom.streams.runtime.reset import ResetReport, ResetTarget

app = typer.Typer(help="Streams applications: reset, describe.", no_args_is_help=True)

AppId = Annotated[str, typer.Argument(help="The application.id (its consumer group).",
                                      show_default=False)]
Topics = Annotated[list[str] | None, typer.Option(
    "--input-topics", "-i", metavar="TOPIC[,TOPIC]",
    help="Input topics whose offsets are reset (comma-separated or repeated).")]
Intermediate = Annotated[list[str] | None, typer.Option(
    "--intermediate-topics", metavar="TOPIC[,TOPIC]",
    help="Topics the application writes and reads back: skipped to their end.")]
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _split(items: list[str] | None) -> list[str]:
    """Kafka's tool takes comma-separated lists; repeated options are accepted too."""
    return [t.strip() for item in items or [] for t in item.split(",") if t.strip()]


def parse_duration_ms(text: str) -> int:
    """Milliseconds of an ISO-8601 duration as Kafka's `--by-duration` takes it (PnDTnHnMnS)."""
    match = _DURATION.match(text.strip().upper())
    if match is None or text.strip().upper() in ("P", "PT"):
        fail(f"cannot read {text!r} as a duration; use ISO-8601 like PT15M, PT1H30M or P1DT2H",
             name="INVALID_ARGUMENT")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return int((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000)


def _target(to_earliest: bool, to_latest: bool, to_offset: int | None, by_duration: str | None,
            to_datetime: str | None) -> ResetTarget:
    """The one scheme chosen (earliest when none is, as Kafka's tool defaults)."""
    from strom.cli.formats import parse_timestamp
    from strom.streams.runtime.reset import ResetTarget

    chosen = [to_earliest, to_latest, to_offset is not None, by_duration is not None,
              to_datetime is not None]
    if sum(chosen) > 1:
        fail("pass at most one of --to-earliest, --to-latest, --to-offset, --by-duration, "
             "--to-datetime", name="INVALID_ARGUMENT")
    if to_latest:
        return ResetTarget("latest")
    if to_offset is not None:
        return ResetTarget("offset", to_offset)
    if by_duration is not None:
        return ResetTarget("timestamp", int(time.time() * 1000) - parse_duration_ms(by_duration))
    if to_datetime is not None:
        return ResetTarget("timestamp", parse_timestamp(to_datetime))
    return ResetTarget("earliest")


def _clients(brokers: str, props: list[str] | None) -> KafkaClients:
    from strom.cli.client import clients_for

    return clients_for(brokers, props)


def _require_inactive(clients: KafkaClients, application_id: str) -> None:
    """Kafka's tool refuses while instances run: their commits would undo the reset."""
    futures = clients.admin().describe_consumer_groups([application_id],
                                                       request_timeout=clients.timeout)
    members = clients.result(futures[application_id]).members
    if members:
        raise CliError(
            f"consumer group {application_id!r} is still active and has {len(members)} "
            f"member(s): {', '.join(sorted(m.client_id for m in members))}",
            name="NON_EMPTY_GROUP",
            hint="stop every instance of the application before resetting it")


@app.command()
@reports_errors
def reset(
    application_id: AppId,
    input_topics: Topics = None,
    intermediate_topics: Intermediate = None,
    to_earliest: Annotated[bool, typer.Option("--to-earliest",
                                              help="Inputs to the log start (default).")] = False,
    to_latest: Annotated[bool, typer.Option("--to-latest", help="Inputs to the log end.")
                         ] = False,
    to_offset: Annotated[int | None, typer.Option("--to-offset", help="Inputs to this offset.")
                         ] = None,
    by_duration: Annotated[str | None, typer.Option(
        "--by-duration", metavar="PnDTnHnMnS",
        help="Inputs to the first record of this long ago (ISO-8601 duration).")] = None,
    to_datetime: Annotated[str | None, typer.Option(
        "--to-datetime", metavar="YYYY-MM-DDTHH:mm:SS.sss",
        help="Inputs to the first record at or after this time.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Show what would be done; change nothing.")
                       ] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Make an application reprocess its input (Kafka's kafka-streams-application-reset).

    \b
    strom streams reset wordcount --input-topics lines --dry-run
    strom streams reset wordcount --input-topics lines --by-duration PT1H
    Local state is each instance's own: start instances with a clean state directory.
    """
    from strom.streams.errors import StreamsError
    from strom.streams.runtime.reset import reset_application

    target = _target(to_earliest, to_latest, to_offset, by_duration, to_datetime)
    clients = _clients(brokers, props)
    inputs, intermediate = _split(input_topics), _split(intermediate_topics)
    _require_inactive(clients, application_id)
    try:
        report = reset_application(clients, application_id, inputs,
                                   intermediate_topics=intermediate, target=target,
                                   dry_run=dry_run)
    except StreamsError as exc:  # a member joined since the check above
        raise CliError(str(exc), name="NON_EMPTY_GROUP") from exc
    _render_reset(application_id, report, fmt)


def _render_reset(application_id: str, report: ResetReport, fmt: OutputFormat) -> None:
    from strom.cli.output import Output

    out = Output(fmt)
    rows = [[t, p, o, "input"] for (t, p), o in sorted(report.input_offsets.items())]
    rows += [[t, p, o, "intermediate"] for (t, p), o in sorted(report.intermediate_offsets.items())]
    if out.json:
        out.emit_json({"application_id": application_id, "dry_run": report.dry_run,
                       "offsets": [{"topic": t, "partition": p, "offset": o, "kind": k}
                                   for t, p, o, k in rows],
                       "deleted_topics": report.deleted_topics})
        return
    out.table(["TOPIC", "PARTITION", "NEW-OFFSET", "KIND"], rows)
    out.blank()
    out.table(["INTERNAL-TOPIC"], [[t] for t in report.deleted_topics])
    out.note(f"dry run: nothing changed for application {application_id}" if report.dry_run
             else f"application {application_id} reset: offsets moved, "
                  f"{len(report.deleted_topics)} internal topic(s) deleted")


def _internal_kind(topic: str) -> str:
    return topic.rsplit("-", 1)[-1] if not topic.endswith("-topic") else "subscription"


def describe_application(clients: KafkaClients, application_id: str) -> dict[str, Any]:
    """The group (state, members and their partitions, lag per partition) and the
    application's internal topics with their partition counts."""
    from strom.cli.group import describe_group
    from strom.streams.runtime.reset import internal_topics

    group = describe_group(clients, application_id)
    internal = internal_topics(clients, application_id)
    metadata = clients.topic_metadata(internal) if internal else {}
    for partition in group["partitions"]:
        partition["internal"] = partition["topic"] in internal
    return {"application_id": application_id, "state": group["state"],
            "coordinator": group["coordinator"], "members": group["members"],
            "partitions": group["partitions"], "total_lag": group["total_lag"],
            "internal_topics": [{"topic": t, "kind": _internal_kind(t),
                                 "partitions": len(metadata[t].partitions)}
                                for t in internal]}


@app.command()
@reports_errors
def describe(
    application_id: AppId,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """The application's group, members, partitions with lag, and internal topics."""
    from strom.cli.output import Output

    data = describe_application(_clients(brokers, props), application_id)
    out = Output(fmt)
    if out.json:
        out.emit_json(data)
        return
    out.section([("APPLICATION", application_id), ("STATE", data["state"]),
                 ("MEMBERS", len(data["members"])), ("TOTAL-LAG", data["total_lag"])])
    out.blank()
    out.table(["MEMBER-ID", "CLIENT-ID", "HOST", "PARTITIONS"],
              [[m["member_id"], m["client_id"], m["host"],
                ", ".join(f"{a['topic']}-{a['partition']}" for a in m["assignment"])]
               for m in data["members"]])
    out.blank()
    out.table(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "INTERNAL",
               "CLIENT-ID"],
              [[p["topic"], p["partition"], p["committed_offset"], p["high_watermark"],
                p["lag"], "yes" if p["internal"] else "no", p["client_id"]]
               for p in data["partitions"]])
    out.blank()
    out.table(["INTERNAL-TOPIC", "KIND", "PARTITIONS"],
              [[t["topic"], t["kind"], t["partitions"]] for t in data["internal_topics"]])

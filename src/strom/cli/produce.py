"""`strom topic produce`: one record per input line, with confluent-kafka's Producer.

Lines come from stdin or `--input FILE`. A line is the value, or `KEY<delim>VALUE` with
`-K`, or any layout given by an input format (`-f '%k %v'`, `-f json`; see
`strom.cli.formats`). Empty lines are skipped. When the input is a regular file, a
progress bar with records/s and MB/s runs on stderr (when stderr is a terminal, or with
`--progress`). The summary line goes to stderr; stdout stays empty.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from strom.cli.common import DEFAULT_BROKERS, Brokers, ClientProps, CliError, fail, reports_errors

if TYPE_CHECKING:
    from strom.client import KafkaClients


class Compression(StrEnum):
    none = "none"
    gzip = "gzip"
    snappy = "snappy"
    lz4 = "lz4"
    zstd = "zstd"


class Acks(StrEnum):
    all = "all"
    one = "1"
    zero = "0"


class _Deliveries:
    __slots__ = ("bytes", "failed", "first_error", "ok")

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.bytes = 0
        self.first_error: Any = None

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1
            if self.first_error is None:
                self.first_error = err
        else:
            self.ok += 1
            self.bytes += len(msg) if msg.value() is not None else 0


def _is_regular_file(stream: BinaryIO) -> int | None:
    """The size of the file behind `stream` if it is a regular file."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


@reports_errors
def produce(
    topic: Annotated[str, typer.Argument(help="Topic to write to.", show_default=False)],
    input_file: Annotated[Path | None, typer.Option(
        "--input", "-i", help="Read lines from this file instead of stdin.",
        dir_okay=False)] = None,
    key_delimiter: Annotated[str | None, typer.Option(
        "--key-delimiter", "-K", help="Split each line at the first DELIM into key and value.",
        metavar="DELIM")] = None,
    key: Annotated[str | None, typer.Option("--key", "-k",
                                            help="The same key for every record.")] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", "-H", metavar="KEY=VALUE", help="A header on every record (repeatable).")] = None,
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", help="Write every record to this partition.")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="FORMAT",
        help="Input layout: fields %k %v %h %p %T between literal text, e.g. '%k:%v', "
             "or json (the envelope `consume -f json` prints).")] = None,
    compression: Annotated[Compression, typer.Option("--compression", "-z")] = Compression.none,
    acks: Annotated[Acks, typer.Option("--acks", help="all, 1 or 0.")] = Acks.all,
    null_empty: Annotated[bool, typer.Option(
        "--null-empty", "-Z", help="Send an empty key or value as null.")] = False,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress",
        help="Progress bar for file input (default: when stderr is a terminal).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
) -> None:
    """Produce records from lines of stdin or a file.

    \b
    echo hello | strom topic produce greetings
    strom topic produce orders -K : < orders.txt          # key:value lines
    strom topic produce orders -f '%T %k %v' -i dump.txt  # timestamp, key, value
    """
    from strom.cli.client import clients_for
    from strom.cli.common import parse_kv
    from strom.cli.formats import LineParser

    parser = LineParser(fmt, key_delimiter, null_empty)
    static_headers = [(k, v.encode()) for k, v in parse_kv(header, "--header").items()]
    fixed_key = key.encode() if key is not None else None
    clients = clients_for(brokers, props)
    producer = clients.producer({
        "acks": acks.value,
        "enable.idempotence": acks is Acks.all,
        "compression.type": compression.value,
        "linger.ms": 10,
        "message.timeout.ms": 30000,
    })
    info = clients.topic_metadata([topic], client=producer)[topic]
    if partition is not None and partition not in info.partitions:
        fail(f"topic {topic!r} has no partition {partition} (it has {len(info.partitions)})",
             name="UNKNOWN_TOPIC_OR_PART", hint=f"`strom topic describe {topic}` lists them")

    stream: BinaryIO = open(input_file, "rb") if input_file else sys.stdin.buffer  # noqa: SIM115
    size = _is_regular_file(stream)
    show = progress if progress is not None else (size is not None and sys.stderr.isatty())
    bar = _Progress(size or 0) if show and size is not None else None
    deliveries = _Deliveries()
    started = time.monotonic()
    try:
        sent = _send_all(clients, producer, topic, stream, parser, deliveries,
                         partition, fixed_key, static_headers, bar)
        clients.flush(producer)
    finally:
        if input_file:
            stream.close()
        if bar is not None:
            bar.update(size or 0, deliveries)
            bar.stop()
    elapsed = max(time.monotonic() - started, 1e-9)
    if deliveries.failed:
        from strom.cli.client import delivery_error

        error = delivery_error(deliveries.first_error, brokers)
        raise CliError(f"{deliveries.failed} of {sent} records were not delivered: "
                       f"{error.message}", name=error.name, hint=error.hint)
    if not quiet:
        print(f"produced {deliveries.ok} records ({_human(deliveries.bytes)}) to {topic} in "
              f"{elapsed:.2f} s: {deliveries.ok / elapsed:,.0f} records/s, "
              f"{deliveries.bytes / elapsed / 1e6:.2f} MB/s", file=sys.stderr)


def _human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _send_all(clients: KafkaClients, producer: Any, topic: str, stream: BinaryIO, parser: Any,
              deliveries: _Deliveries, partition: int | None, fixed_key: bytes | None,
              static_headers: list[tuple[str, bytes]], bar: _Progress | None) -> int:
    sent = 0
    read = 0
    for number, raw in enumerate(stream, 1):
        read += len(raw)
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if not line:
            continue
        item = parser(line, number)
        headers = static_headers + (item.headers or []) if static_headers else item.headers
        target = item.partition if item.partition is not None else partition
        kwargs: dict[str, Any] = {"on_delivery": deliveries}
        if target is not None:
            kwargs["partition"] = target
        if headers:
            kwargs["headers"] = headers
        if item.timestamp is not None:
            kwargs["timestamp"] = item.timestamp
        record_key = item.key if item.key is not None else fixed_key
        while True:
            try:
                producer.produce(topic, item.value, record_key, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
                clients.check()
        sent += 1
        if sent % 1000 == 0:
            producer.poll(0)
            clients.check()
            if bar is not None:
                bar.update(read, deliveries)
    return sent


class _Progress:
    """A Rich progress bar over the bytes of the input file, with record and byte rates."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.started = time.monotonic()
        self.progress = Progress(
            TextColumn("producing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TextColumn("{task.fields[records]}"), TimeRemainingColumn(),
            console=Console(file=sys.stderr, width=None if sys.stderr.isatty() else 120),
            transient=False,
        )
        self.task = self.progress.add_task("produce", total=total or 1, records="")
        self.progress.start()

    def update(self, read: int, deliveries: _Deliveries) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.progress.update(self.task, completed=read,
                             records=f"{deliveries.ok:,} acked, {deliveries.ok / elapsed:,.0f} rec/s")

    def stop(self) -> None:
        self.progress.stop()

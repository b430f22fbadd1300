"""`strom bench`: producer and consumer throughput and latency, in the spirit of
`kafka-producer-perf-test.sh` and `kafka-consumer-perf-test.sh`.

`produce` sends N records of a fixed size (random upper-case letters, as Kafka's tool
does) as fast as allowed, or at `--throughput` records/s, and measures each record's
latency from `produce()` to its delivery report. `consume` reads N records from the start
of a topic and measures throughput and end-to-end latency (receive time minus the
record's timestamp, meaningful while a producer runs). Progress windows go to stderr every
`--interval` seconds; the summary goes to stdout (text or `--format json`).
"""

from __future__ import annotations

import random
import string
import sys
import time
from array import array
from typing import Annotated, Any

import typer

from strom.cli.common import (
    DEFAULT_BROKERS,
    Brokers,
    ClientProps,
    CliError,
    Format,
    OutputFormat,
    reports_errors,
)
from strom.cli.produce import Acks, Compression

app = typer.Typer(help="Throughput and latency benchmarks.", no_args_is_help=True)
PERCENTILES = (0.5, 0.95, 0.99, 0.999)


def percentiles(values: list[float] | array[float]) -> dict[str, float]:
    """Nearest-rank percentiles, as Kafka's perf tool takes them: sorted[int(n * p)]."""
    ordered = sorted(values)
    if not ordered:
        return {f"p{_label(p)}": 0.0 for p in PERCENTILES}
    n = len(ordered)
    return {f"p{_label(p)}": ordered[min(int(n * p), n - 1)] for p in PERCENTILES}


def _label(p: float) -> str:
    return f"{p * 100:g}"


class _Window:
    """Records and latency since the last progress line."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.count = 0
        self.bytes = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0

    def add(self, size: int, latency_ms: float) -> None:
        self.count += 1
        self.bytes += size
        self.latency_sum += latency_ms
        self.latency_max = max(self.latency_max, latency_ms)

    def line(self, verb: str) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        avg = self.latency_sum / self.count if self.count else 0.0
        return (f"{self.count} records {verb}, {self.count / elapsed:.1f} records/sec "
                f"({self.bytes / elapsed / 1048576:.2f} MB/sec), {avg:.1f} ms avg latency, "
                f"{self.latency_max:.1f} ms max latency.")


class _ProduceStats:
    def __init__(self, interval: float) -> None:
        self.latencies: array[float] = array("d")
        self.bytes = 0
        self.errors = 0
        self.first_error: Any = None
        self.interval = interval
        self.window = _Window()

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = err
            return
        latency_ms = (msg.latency() or 0.0) * 1000
        size = len(msg)
        self.latencies.append(latency_ms)
        self.bytes += size
        self.window.add(size, latency_ms)
        if time.monotonic() - self.window.start >= self.interval:
            print(self.window.line("sent"), file=sys.stderr, flush=True)
            self.window = _Window()


def _summary(kind: str, count: int, total_bytes: int, elapsed: float,
             latencies: list[float] | array[float], latency_name: str) -> dict[str, Any]:
    ordered = list(latencies)
    return {
        "benchmark": kind,
        "records": count,
        "bytes": total_bytes,
        "seconds": round(elapsed, 3),
        "records_per_sec": round(count / elapsed, 1) if elapsed else 0.0,
        "mb_per_sec": round(total_bytes / elapsed / 1048576, 2) if elapsed else 0.0,
        f"{latency_name}_ms": {
            "avg": round(sum(ordered) / len(ordered), 2) if ordered else 0.0,
            "max": round(max(ordered), 2) if ordered else 0.0,
            **{k: round(v, 2) for k, v in percentiles(ordered).items()},
        },
    }


def _print_summary(fmt: OutputFormat, data: dict[str, Any], verb: str, latency_name: str) -> None:
    from strom.cli.output import Output

    out = Output(fmt)
    if out.json:
        out.emit_json(data)
        return
    lat = data[f"{latency_name}_ms"]
    latency_name = latency_name.replace("_", " ")
    print(f"{data['records']} records {verb}, {data['records_per_sec']:.1f} records/sec "
          f"({data['mb_per_sec']:.2f} MB/sec), {lat['avg']:.2f} ms avg {latency_name}, "
          f"{lat['max']:.2f} ms max {latency_name}, {lat['p50']:.0f} ms 50th, "
          f"{lat['p95']:.0f} ms 95th, {lat['p99']:.0f} ms 99th, {lat['p99.9']:.0f} ms 99.9th.")
    sys.stdout.flush()


@app.command("produce")
@reports_errors
def produce_bench(
    topic: Annotated[str, typer.Argument(help="Topic (created if missing).")] = "strom-bench",
    records: Annotated[int, typer.Option("--records", "-n", help="Records to send.")] = 100_000,
    record_size: Annotated[int, typer.Option("--record-size", "-s", help="Value bytes.")] = 100,
    throughput: Annotated[int, typer.Option(
        "--throughput", "-t", help="Records/s to aim at; -1 = as fast as possible.")] = -1,
    partitions: Annotated[int, typer.Option(
        "--partitions", "-p", help="Partitions when the topic is created.")] = 3,
    acks: Annotated[Acks, typer.Option("--acks")] = Acks.all,
    compression: Annotated[Compression, typer.Option("--compression", "-z")] = Compression.none,
    linger_ms: Annotated[int, typer.Option("--linger-ms")] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Bytes per batch.")] = 1_000_000,
    interval: Annotated[float, typer.Option(
        "--interval", help="Seconds between progress lines on stderr.")] = 5.0,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Producer throughput and latency: records/s, MB/s, p50/p95/p99/p99.9."""
    from strom.cli.client import clients_for, delivery_error
    from strom.client.admin import ensure_topic

    clients = clients_for(brokers, props)
    ensure_topic(clients, topic, partitions)
    producer = clients.producer({
        "acks": acks.value, "enable.idempotence": acks is Acks.all,
        "compression.type": compression.value, "linger.ms": linger_ms,
        "batch.size": batch_size, "queue.buffering.max.messages": 1_000_000,
        "message.timeout.ms": 60_000,
    })
    rng = random.Random(0)
    payload = "".join(rng.choices(string.ascii_uppercase, k=record_size)).encode()
    stats = _ProduceStats(interval)
    started = time.monotonic()
    for i in range(records):
        if throughput > 0:
            ahead = i / throughput - (time.monotonic() - started)
            if ahead > 0:
                producer.poll(ahead)
        while True:
            try:
                producer.produce(topic, payload, on_delivery=stats)
                break
            except BufferError:
                producer.poll(0.01)
                clients.check()
        if i % 1000 == 0:
            producer.poll(0)
            clients.check()
    clients.flush(producer)
    elapsed = time.monotonic() - started
    if stats.errors:
        error = delivery_error(stats.first_error, brokers)
        raise CliError(f"{stats.errors} of {records} records failed: {error.message}",
                       name=error.name, hint=error.hint)
    data = _summary("produce", len(stats.latencies), stats.bytes, elapsed, stats.latencies,
                    "latency")
    _print_summary(fmt, data, "sent", "latency")


@app.command("consume")
@reports_errors
def consume_bench(
    topic: Annotated[str, typer.Argument(help="Topic to read.")] = "strom-bench",
    records: Annotated[int, typer.Option("--records", "-n", help="Records to read.")] = 100_000,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Stop after this many seconds without a record.")] = 10.0,
    interval: Annotated[float, typer.Option(
        "--interval", help="Seconds between progress lines on stderr.")] = 5.0,
    brokers: Brokers = DEFAULT_BROKERS,
    props: ClientProps = None,
    fmt: Format = OutputFormat.text,
) -> None:
    """Consumer throughput from the start of a topic, and end-to-end latency."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from strom.cli.client import clients_for

    clients = clients_for(brokers, props)
    info = clients.topic_metadata([topic])[topic]
    consumer = clients.consumer({
        "group.id": "strom-bench", "enable.auto.commit": False,
        "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in info.partitions])
    latencies: array[float] = array("d")
    total_bytes = 0
    count = 0
    window = _Window()
    started = time.monotonic()
    last = started
    first: float | None = None
    try:
        while count < records:
            batch = consumer.consume(min(10_000, records - count), 0.2)
            clients.check()
            now = time.monotonic()
            if not batch:
                if now - last > timeout:
                    break
                continue
            last = now
            if first is None:
                first = now
            wall_ms = time.time() * 1000
            for msg in batch:
                if msg.error() is not None:
                    continue
                size = len(msg)
                count += 1
                total_bytes += size
                latency = max(wall_ms - msg.timestamp()[1], 0.0)
                latencies.append(latency)
                window.add(size, latency)
            if now - window.start >= interval:
                print(window.line("read"), file=sys.stderr, flush=True)
                window = _Window()
    finally:
        consumer.close()
    if count == 0:
        raise CliError(f"no records in {topic} within {timeout:g} s", name="_TIMED_OUT",
                       hint=f"fill it first: `strom bench produce {topic}`")
    elapsed = max(last - started, 1e-9)
    data = _summary("consume", count, total_bytes, elapsed, latencies, "e2e_latency")
    data["seconds_to_first_record"] = round((first or started) - started, 3)
    _print_summary(fmt, data, "read", "e2e_latency")

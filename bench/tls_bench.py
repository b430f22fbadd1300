"""Throughput over TLS beside plaintext: Strom and Apache Kafka 4.4, same client, same machine.

Each broker in turn (Strom, then Kafka from the jars `tools/kafka_dist.py` fetches) runs
three listeners on one fresh data directory — PLAINTEXT, SSL (server certificate only)
and SASL_SSL with SCRAM-SHA-512 — with the same PKCS12 keystore and PEM truststore of a
test CA (`tests/support/tls_certs`, made with `cryptography`). Over each listener
confluent-kafka (librdkafka) produces 1 KiB and 16 KiB records to a topic of one
partition (acks=1, linger 5 ms, no compression) and then consumes them back from offset
0. The numbers are records/s and MB/s per case, each broker's TLS/plaintext ratio, and
the Strom/Kafka ratio per case.

Writes docs/benchmarks/tls.json and tls.md. Never part of the test suite; run it only
on a quiet machine (the 2-core CI host: take /tmp/bench-lock while it runs).

    python bench/tls_bench.py [--quick] [--only strom|kafka]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tools import kafka_dist  # noqa: E402

from bench.single_node import free_port  # noqa: E402
from support.tls_certs import STORE_PASSWORD, Pki, make_pki  # type: ignore[import-not-found]  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
LISTENERS = ("PLAINTEXT", "SSL", "SASL_SSL")
USER, PASSWORD = "bench", "bench-secret"


@dataclass(frozen=True)
class Plan:
    counts: dict[int, int]

    @classmethod
    def full(cls) -> Plan:
        return cls({1024: 200_000, 16384: 20_000})

    @classmethod
    def quick(cls) -> Plan:
        return cls({1024: 20_000, 16384: 2_000})


@dataclass
class Broker:
    name: str
    version: str
    ports: dict[str, int]
    stop: Callable[[], None]

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


def listener_configs(pki: Pki, ports: dict[str, int]) -> dict[str, str]:
    """The same security settings for both brokers (Kafka's names)."""
    return {
        "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "advertised.listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.broker_p12_keystore()),
        "ssl.keystore.password": STORE_PASSWORD,
        "ssl.key.password": STORE_PASSWORD,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca_file),
    }


def client_conf(broker: Broker, listener: str, pki: Pki) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": broker.address(listener),
                            "security.protocol": listener}
    if listener != "PLAINTEXT":
        conf["ssl.ca.location"] = str(pki.ca_file)
    if listener == "SASL_SSL":
        conf.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER,
                     "sasl.password": PASSWORD})
    return conf


def wait_ready(bootstrap: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    client = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    while True:
        try:
            if client.list_topics(timeout=5).brokers:
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no broker at {bootstrap} after {timeout}s")
        time.sleep(0.2)


def start_strom(work: Path, pki: Pki) -> Broker:
    ports = {name: free_port() for name in LISTENERS}
    configs = listener_configs(pki, ports)
    args = [sys.executable, "-m", "strom", "server", "--log-level", "warning",
            "--override", f"log.dirs={work / 'data'}", "--override", "strom.metrics.port=-1",
            "--override", "listener.security.protocol.map="
                          "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL"]
    for key, value in configs.items():
        if key != "advertised.listeners":
            args += ["--override", f"{key}={value}"]
    log = open(work / "strom.log", "wb")  # noqa: SIM115 - the child writes it
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    from importlib.metadata import version
    wait_ready(f"127.0.0.1:{ports['PLAINTEXT']}")
    return Broker("strom", version("strom"), ports, stop)


def start_kafka(work: Path, pki: Pki) -> Broker:
    ports = {name: free_port() for name in LISTENERS}
    controller = free_port()
    configs = listener_configs(pki, ports)
    configs["listeners"] += f",CONTROLLER://127.0.0.1:{controller}"
    configs["listener.security.protocol.map"] = ("CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                                                 "SSL:SSL,SASL_SSL:SASL_SSL")
    broker = kafka_dist.KafkaBroker(work / "kafka", port=ports["PLAINTEXT"],
                                    controller_port=controller, overrides=configs)
    broker.start()

    def stop() -> None:
        broker.stop()

    return Broker("kafka", kafka_dist.KAFKA_VERSION, ports, stop)


def add_user(broker: Broker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.address("PLAINTEXT")})
    futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), PASSWORD.encode())])
    for future in futures.values():
        future.result(timeout=30)


def create_topic(broker: Broker, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.address("PLAINTEXT")})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and md.partitions[0].leader >= 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{topic} has no leader")


def produce(conf: dict[str, Any], topic: str, size: int, count: int) -> dict[str, float]:
    producer = Producer({**conf, "acks": "1", "linger.ms": 5, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 2_000_000, "compression.type": "none",
                         "message.timeout.ms": 120_000})
    value = os.urandom(size)
    failed: list[object] = []
    t0 = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value, partition=0,
                                 on_delivery=lambda err, _m: failed.append(err) if err else None)
                break
            except BufferError:
                producer.poll(0.001)
    if producer.flush(300) != 0 or failed:
        raise KafkaException(f"produce to {topic} did not finish: {failed[:3]}")
    return _rate(count, size, time.perf_counter() - t0)


def consume(conf: dict[str, Any], topic: str, size: int, count: int) -> dict[str, float]:
    consumer = Consumer({**conf, "group.id": f"bench-{topic}", "enable.auto.commit": False,
                         "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    t0 = time.perf_counter()
    while got < count:
        batch = consumer.consume(min(10_000, count - got), timeout=10)
        if not batch:
            raise RuntimeError(f"consumer stalled at {got}/{count}")
        got += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - t0
    consumer.close()
    return _rate(got, size, elapsed)


def _rate(count: int, size: int, seconds: float) -> dict[str, float]:
    return {"records_per_s": round(count / seconds, 1),
            "mb_per_s": round(count * size / seconds / 1e6, 2),
            "seconds": round(seconds, 3), "records": count}


def run_broker(name: str, plan: Plan, work: Path, pki: Pki) -> dict[str, Any]:
    broker = (start_strom if name == "strom" else start_kafka)(work, pki)
    results: dict[str, Any] = {"version": broker.version, "cases": {}}
    try:
        add_user(broker)
        for listener in LISTENERS:
            conf = client_conf(broker, listener, pki)
            for size, count in plan.counts.items():
                topic = f"tls-{listener.lower()}-{size}"
                create_topic(broker, topic)
                case = {"produce": produce(conf, topic, size, count),
                        "consume": consume(conf, topic, size, count)}
                results["cases"][f"{listener}/{size}"] = case
                print(f"{name:6} {listener:10} {size:6} B  produce "
                      f"{case['produce']['mb_per_s']:8.1f} MB/s  consume "
                      f"{case['consume']['mb_per_s']:8.1f} MB/s", flush=True)
    finally:
        broker.stop()
    return results


def machine() -> dict[str, Any]:
    import confluent_kafka

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "librdkafka": confluent_kafka.libversion()[0],
            "openssl": __import__("ssl").OPENSSL_VERSION}


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def write_markdown(result: dict[str, Any], plan: Plan) -> str:
    brokers = result["brokers"]
    lines = [
        "# Throughput over TLS: Strom vs Apache Kafka",
        "",
        f"Written by `bench/tls_bench.py` on {result['date']} "
        f"({result['machine']['cpus']} CPUs, Python {result['machine']['python']}, "
        f"librdkafka {result['machine']['librdkafka']}, {result['machine']['openssl']}). "
        "One broker at a time on the same machine, one partition, confluent-kafka as the "
        "client for both; acks=1, linger 5 ms, no compression; consume from offset 0 of "
        "what was produced. SSL: server certificate only; SASL_SSL: SCRAM-SHA-512. "
        f"Records: {', '.join(f'{c:,} of {s} B' for s, c in plan.counts.items())}.",
        "",
        "| case | listener | Strom MB/s | Kafka MB/s | Strom/Kafka | Strom vs its PLAINTEXT "
        "| Kafka vs its PLAINTEXT |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for op in ("produce", "consume"):
        for size in plan.counts:
            for listener in LISTENERS:
                key, base = f"{listener}/{size}", f"PLAINTEXT/{size}"
                strom = _mb(brokers.get("strom"), key, op)
                kafka = _mb(brokers.get("kafka"), key, op)
                lines.append(
                    f"| {op} {size} B | {listener} | {_num(strom)} | {_num(kafka)} | "
                    f"{_ratio(strom, kafka)} | {_ratio(strom, _mb(brokers.get('strom'), base, op))}"
                    f" | {_ratio(kafka, _mb(brokers.get('kafka'), base, op))} |")
    lines += ["", "Raw numbers (records/s, seconds): `docs/benchmarks/tls.json`.", ""]
    return "\n".join(lines)


def _mb(broker: dict[str, Any] | None, key: str, op: str) -> float | None:
    if not broker or key not in broker["cases"]:
        return None
    return float(broker["cases"][key][op]["mb_per_s"])


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the records")
    parser.add_argument("--only", choices=["strom", "kafka"])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    plan = Plan.quick() if args.quick else Plan.full()
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "machine": machine(), "quick": args.quick, "brokers": {}}
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as tmp:
        pki = make_pki(Path(tmp) / "pki")
        for name in ("strom", "kafka"):
            if args.only in (None, name):
                work = Path(tmp) / name
                work.mkdir()
                result["brokers"][name] = run_broker(name, plan, work, pki)
    if args.no_write:
        print(json.dumps(result, indent=2))
        return
    (OUT / "tls.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "tls.md").write_text(write_markdown(result, plan))
    print(f"wrote {OUT / 'tls.md'}")


if __name__ == "__main__":
    main()

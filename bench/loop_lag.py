"""Event-loop stalls of one broker under produce load: a lag probe inside the broker.

The broker runs in a child process with one extra task on its event loop that sleeps
10 ms again and again and records how late each wake-up is: every millisecond of lag is
a millisecond in which no connection was served (fsyncs on the loop, long synchronous
work). The parent drives an idempotent acks=all producer (confluent-kafka) at 8
partitions with small segments, so that segment rolls, producer snapshots and the
periodic checkpoint all happen during the window, and prints the lag percentiles.

    python bench/loop_lag.py [--seconds 30] [--rate 5000] [--src PATH]

At a bounded rate the loop is mostly idle, so the lag it shows is what housekeeping and
single long operations cost; `--rate 0` measures a saturated loop instead.

`--src` runs another checkout's `src` (e.g. an older commit exported with `git archive`)
for a before/after comparison. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE_S = 0.01


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the child: a broker with the probe on its loop -----------------------------------

async def _serve(props: dict[str, str], out: Path) -> None:
    from strom.broker.server import Broker
    from strom.config.broker import BrokerConfig

    broker = Broker(BrokerConfig(props))
    await broker.start()
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lags.clear)  # the load starts: forget startup
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    probe = asyncio.create_task(_probe(lags))
    await stop.wait()
    probe.cancel()
    out.write_text(json.dumps(lags))
    await broker.stop()


async def _probe(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(PROBE_S)
        lags.append(loop.time() - start - PROBE_S)


# -- the parent: load and report -------------------------------------------------------

def _produce(bootstrap: str, seconds: float, rate: int) -> int:
    """Produce for `seconds`, at most `rate` records/s (0: as fast as possible)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 2, "compression.type": "none"})
    value = os.urandom(1000)
    sent = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        if rate and sent > (time.monotonic() - start) * rate:
            producer.poll(0.001)
            continue
        try:
            producer.produce("lag", value=value, partition=sent % 8)
            sent += 1
        except BufferError:
            producer.poll(0.005)
        if sent % 1000 == 0:
            producer.poll(0)
    producer.flush(30)
    return sent


def _create_topic(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic("lag", 8, 1,
                                            config={"segment.bytes": str(1 << 20)})])
    for future in futures.values():
        future.result(30)


def _percentiles(lags: list[float]) -> dict[str, float]:
    ordered = sorted(lags)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"samples": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99),
            "p999_ms": at(0.999), "max_ms": round(ordered[-1] * 1000, 2),
            "over_20ms": sum(1 for lag in ordered if lag > 0.020)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--rate", type=int, default=5000, help="records/s; 0: unbounded")
    parser.add_argument("--serve", nargs=2, metavar=("PROPS_JSON", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(json.loads(args.serve[0]), Path(args.serve[1])))
        return
    with tempfile.TemporaryDirectory(prefix="strom-lag-", dir=ROOT.parent) as tmp:
        port = _free_port()
        props = {"listeners": f"PLAINTEXT://127.0.0.1:{port}", "log.dirs": f"{tmp}/data",
                 "strom.metrics.port": "-1"}
        out = Path(tmp) / "lags.json"
        env = dict(os.environ, PYTHONPATH=str(args.src))
        child = subprocess.Popen([sys.executable, __file__, "--serve", json.dumps(props),
                                  str(out)], env=env)
        try:
            _wait_for(port)
            _create_topic(f"127.0.0.1:{port}")
            child.send_signal(signal.SIGUSR1)
            sent = _produce(f"127.0.0.1:{port}", args.seconds, args.rate)
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(60)
        report = {"src": str(args.src), "seconds": args.seconds, "rate": args.rate,
                  "records": sent,
                  **_percentiles(json.loads(out.read_text()))}
        print(json.dumps(report))


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"no broker on port {port}")


if __name__ == "__main__":
    main()

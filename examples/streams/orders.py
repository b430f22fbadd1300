"""E-commerce: orders aggregated per customer in tumbling windows of event time.

Orders arrive as JSON (`{"customer": "c1", "amount": 12.5}`, keyed by order id, the
record timestamp being the order time). They are re-keyed by customer (repartition
topic `<application-id>-orders-by-customer-repartition`) and summed per customer and
window in a window store (`order-totals`, changelog `<application-id>-order-totals-changelog`).
Each update goes out as JSON keyed by customer:
`{"customer", "window_start", "window_end", "orders", "total"}`; with `--emit-final`
only each window's final result, once the window and its grace have passed.

    python examples/streams/orders.py --bootstrap-servers localhost:9092 \\
        --application-id order-totals --input orders --output customer-totals
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from strom.streams import (
    Grouped,
    Materialized,
    Serdes,
    StreamsBuilder,
    Suppressed,
    TimeWindows,
    Windowed,
)
from strom.streams.runtime.app import StreamsApp


def _add(customer: str, order: dict[str, Any], agg: dict[str, Any]) -> dict[str, Any]:
    return {"orders": agg["orders"] + 1, "total": round(agg["total"] + order["amount"], 2)}


def _result(key: Windowed, agg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return key.key, {"customer": key.key, "window_start": key.window.start,
                     "window_end": key.window.end, **agg}


def build(input_topic: str, output_topic: str, window_ms: int, grace_ms: int,
          emit_final: bool) -> StreamsBuilder:
    builder = StreamsBuilder()
    table = (builder.stream(input_topic, key_serde=Serdes.String, value_serde=Serdes.Json)
             .filter(lambda _, order: isinstance(order, dict) and "customer" in order)
             .group_by(lambda _, order: order["customer"],
                       Grouped("orders-by-customer", Serdes.String, Serdes.Json))
             .windowed_by(TimeWindows.of(window_ms, grace_ms=grace_ms))
             .aggregate(lambda: {"orders": 0, "total": 0.0}, _add,
                        Materialized.as_("order-totals", value_serde=Serdes.Json)))
    if emit_final:
        table = table.suppress(Suppressed.until_window_closes())
    table.to_stream().map(_result).to(output_topic, Serdes.String, Serdes.Json)
    return builder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--application-id", default="order-totals")
    parser.add_argument("--input", default="orders")
    parser.add_argument("--output", default="customer-totals")
    parser.add_argument("--window-ms", type=int, default=60_000)
    parser.add_argument("--grace-ms", type=int, default=0)
    parser.add_argument("--emit-final", action="store_true")
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--commit-interval-ms", type=int, default=None,
                        help="default: 30000, or 100 under exactly-once")
    parser.add_argument("--processing-guarantee", default="at_least_once",
                        choices=["at_least_once", "exactly_once_v2"])
    parser.add_argument("--consumer-property", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka property of the group consumer (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings: dict[str, Any] = {"commit_interval_ms": args.commit_interval_ms,
                                "processing_guarantee": args.processing_guarantee}
    if args.state_dir:
        settings["state_dir"] = args.state_dir
    settings["consumer_properties"] = dict(p.split("=", 1) for p in args.consumer_property)
    builder = build(args.input, args.output, args.window_ms, args.grace_ms, args.emit_final)
    StreamsApp(builder, args.application_id, args.bootstrap_servers, **settings).run()


if __name__ == "__main__":
    main()

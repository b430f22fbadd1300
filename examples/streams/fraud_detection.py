"""Fraud detection: card transactions checked against the customer table and card
activity, alerts to a topic. The flow of the tutorial in docs/streams.md.

Inputs (JSON values, string keys):
- `--customers`: key customer id, value `{"name", "country", "limit"}` (a table);
- `--transactions`: key customer id, value `{"card", "amount", "country", "merchant"}`.

Rules, each an alert `{"customer", "card", "rule", "detail", ...}` keyed by customer:
- `over-limit`: one transaction above the customer's limit;
- `foreign-country`: a transaction in another country than the customer's;
- `burst`: the N-th transaction of one card session (transactions less than
  `--session-gap-ms` apart), reported once per session when it reaches
  `--max-per-session`;
- `unknown-customer`: a transaction for a customer the table does not know.

    python examples/streams/fraud_detection.py --bootstrap-servers localhost:9092 \\
        --application-id fraud --transactions transactions --customers customers \\
        --alerts alerts
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from strom.streams import Grouped, Materialized, Serdes, SessionWindows, StreamsBuilder, Windowed
from strom.streams.runtime.app import StreamsApp


def _enrich(txn: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    return {**txn, "customer_info": customer}


def _rule_alerts(customer_id: str, txn: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The per-transaction rules: over the limit, another country, unknown customer."""
    info = txn["customer_info"]
    base = {"customer": customer_id, "card": txn["card"], "amount": txn["amount"]}
    if info is None:
        return [(customer_id, {**base, "rule": "unknown-customer", "detail": "no such customer"})]
    alerts = []
    if txn["amount"] > info["limit"]:
        alerts.append((customer_id, {**base, "rule": "over-limit",
                                     "detail": f"{txn['amount']} > {info['limit']}"}))
    if txn["country"] != info["country"]:
        alerts.append((customer_id, {**base, "rule": "foreign-country",
                                     "detail": f"{txn['country']} (home: {info['country']})"}))
    return alerts


def build(transactions: str, customers: str, alerts: str, session_gap_ms: int,
          max_per_session: int) -> StreamsBuilder:
    builder = StreamsBuilder()
    json, text = Serdes.Json, Serdes.String
    customer_table = builder.table(customers, text, json, materialized="customers")
    txns = builder.stream(transactions, key_serde=text, value_serde=json)

    # 1. every transaction meets its customer (left join: unknown customers are alerts too)
    enriched = txns.left_join(customer_table, _enrich)
    enriched.flat_map(_rule_alerts).to(alerts, text, json)

    # 2. card activity: sessions of one card's transactions, an alert when one gets busy
    def burst(key: Windowed, count: int | None) -> tuple[str, dict[str, Any]]:
        customer, card = key.key.split("/", 1)
        return customer, {"customer": customer, "card": card, "rule": "burst",
                          "detail": f"{count} transactions in a session",
                          "session_start": key.window.start, "session_end": key.window.end}

    (txns.group_by(lambda customer, txn: f"{customer}/{txn['card']}",
                   Grouped("card-activity", text, json))
     .windowed_by(SessionWindows.with_inactivity_gap(session_gap_ms))
     .count(Materialized.as_("card-sessions"))
     .to_stream()
     .filter(lambda key, count: count == max_per_session)
     .map(burst)
     .to(alerts, text, json))
    return builder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--application-id", default="fraud-detection")
    parser.add_argument("--transactions", default="transactions")
    parser.add_argument("--customers", default="customers")
    parser.add_argument("--alerts", default="alerts")
    parser.add_argument("--session-gap-ms", type=int, default=300_000)
    parser.add_argument("--max-per-session", type=int, default=5)
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings: dict[str, Any] = {}
    if args.state_dir:
        settings["state_dir"] = args.state_dir
    builder = build(args.transactions, args.customers, args.alerts, args.session_gap_ms,
                    args.max_per_session)
    StreamsApp(builder, args.application_id, args.bootstrap_servers, **settings).run()


if __name__ == "__main__":
    main()

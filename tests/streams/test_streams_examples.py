"""The example applications' topologies through the test driver (the runtime tests run
word_count.py and orders.py as processes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from strom.streams import Serdes, TopologyTestDriver

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "streams"))

import fraud_detection

J, S = Serdes.Json, Serdes.String
MINUTE = 60_000


def test_streams_fraud_detection_rules() -> None:
    builder = fraud_detection.build("txns", "customers", "alerts", session_gap_ms=5 * MINUTE,
                                    max_per_session=3)
    with TopologyTestDriver(builder.build(), "fraud") as driver:
        customers = driver.create_input_topic("customers", S, J)
        txns = driver.create_input_topic("txns", S, J)
        customers.pipe_input("c1", {"name": "Ann", "country": "NL", "limit": 500}, 0)

        def txn(customer: str, amount: int, country: str, minute: int, card: str = "k1") -> None:
            txns.pipe_input(customer, {"card": card, "amount": amount, "country": country,
                                       "merchant": "m"}, minute * MINUTE)

        txn("c1", 20, "NL", 1)
        txn("c1", 900, "NL", 2)     # over the limit
        txn("c1", 30, "FR", 3)      # abroad; third in the session: a burst
        txn("c1", 10, "NL", 4)      # fourth: no second burst alert
        txn("c1", 10, "NL", 30)     # a new session
        txn("c9", 10, "NL", 31)     # unknown customer
        alerts = driver.create_output_topic("alerts", S, J).read_key_values_to_list()
    rules: list[tuple[str, Any]] = [(key, alert["rule"]) for key, alert in alerts]
    assert rules == [("c1", "over-limit"), ("c1", "foreign-country"), ("c1", "burst"),
                     ("c9", "unknown-customer")]
    burst = alerts[2][1]
    assert (burst["card"], burst["session_start"], burst["session_end"]) == ("k1", MINUTE,
                                                                             3 * MINUTE)

"""OrderGeneratorSource: a source of synthetic e-commerce orders, for demos and tests.

Orders are a pure function of (`seed`, sequence number), so a restarted connector
continues the same stream from its committed offset `{"seq": n}`: nothing repeats and
nothing is skipped beyond at-least-once. Values are structs with a schema (order id,
customer, product, quantity, unit price as a Decimal, timestamp); keys are the
customer id, so one customer's orders stay in one partition.
"""

from __future__ import annotations

import decimal
import random
import time
from collections.abc import Mapping

from strom.connect.api.config import ConfigDef, ConfigType, Importance, at_least
from strom.connect.api.connector import SourceConnector
from strom.connect.api.records import SourceRecord
from strom.connect.api.task import SourceTask
from strom.connect.connectors.base import PropsConnector
from strom.connect.data.schema import (
    INT32_SCHEMA,
    INT64_SCHEMA,
    STRING_SCHEMA,
    SchemaBuilder,
    decimal_schema,
    from_epoch_millis,
    timestamp_schema,
)
from strom.connect.data.struct import Struct
from strom.connect.version import VERSION

CONFIG = (
    ConfigDef()
    .define("topic", ConfigType.STRING, importance=Importance.HIGH, documentation="Topic to write orders to.")
    .define("max.records", ConfigType.LONG, -1, Importance.MEDIUM,
            "Stop producing after this many orders in total (-1: never).")
    .define("interval.ms", ConfigType.LONG, 0, Importance.MEDIUM,
            "Pause between polls, in milliseconds.", validator=at_least(0))
    .define("batch.size", ConfigType.INT, 100, Importance.LOW, "Orders per poll.", validator=at_least(1))
    .define("seed", ConfigType.LONG, 42, Importance.LOW, "Seed of the order stream.")
    .define("start.timestamp.ms", ConfigType.LONG, 1_700_000_000_000, Importance.LOW,
            "Timestamp of the first order; each order is one second after the previous.")
)

ORDER_SCHEMA = (
    SchemaBuilder.struct().name("strom.connect.generator.Order").version(1)
    .field("order_id", INT64_SCHEMA)
    .field("customer_id", STRING_SCHEMA)
    .field("product", STRING_SCHEMA)
    .field("quantity", INT32_SCHEMA)
    .field("unit_price", decimal_schema(2))
    .field("created_at", timestamp_schema())
    .build()
)
PRODUCTS = ("keyboard", "mouse", "monitor", "laptop", "headphones", "webcam", "dock", "cable")


def order(seed: int, seq: int, start_ms: int) -> Struct:
    """The order number `seq` of the stream `seed`."""
    rng = random.Random(seed * 1_000_003 + seq)
    price = decimal.Decimal(rng.randint(199, 199_999)).scaleb(-2)
    return (Struct(ORDER_SCHEMA).put("order_id", seq).put("customer_id", f"c{rng.randint(1, 500):04d}")
            .put("product", rng.choice(PRODUCTS)).put("quantity", rng.randint(1, 5))
            .put("unit_price", price).put("created_at", from_epoch_millis(start_ms + seq * 1000)))


class OrderGeneratorSourceConnector(PropsConnector, SourceConnector):
    config_def = CONFIG
    max_tasks = 1

    def task_class(self) -> type[OrderGeneratorSourceTask]:
        return OrderGeneratorSourceTask


class OrderGeneratorSourceTask(SourceTask):
    PARTITION = {"generator": "orders"}

    def version(self) -> str:
        return VERSION

    def start(self, props: Mapping[str, str]) -> None:
        parsed = CONFIG.parse(props)
        self.topic, self.limit = parsed["topic"], int(parsed["max.records"])
        self.interval, self.batch = int(parsed["interval.ms"]) / 1000, int(parsed["batch.size"])
        self.seed, self.start_ms = int(parsed["seed"]), int(parsed["start.timestamp.ms"])
        stored = self.context.offset_storage_reader.offset(self.PARTITION)
        self.next_seq = int(stored["seq"]) + 1 if stored else 0

    def poll(self) -> list[SourceRecord] | None:
        if self.interval:
            time.sleep(self.interval)
        end = self.next_seq + self.batch
        if self.limit >= 0:
            end = min(end, self.limit)
        if end <= self.next_seq:
            time.sleep(0.1)
            return None
        records = []
        for seq in range(self.next_seq, end):
            value = order(self.seed, seq, self.start_ms)
            records.append(SourceRecord(self.topic, None, STRING_SCHEMA, value.get("customer_id"),
                                        ORDER_SCHEMA, value, self.start_ms + seq * 1000,
                                        source_partition=self.PARTITION, source_offset={"seq": seq}))
        self.next_seq = end
        return records

    def stop(self) -> None:
        """Nothing to release."""

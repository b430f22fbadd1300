"""Foreign-key table-table joins (KIP-213): a left row meets the right row whose key its
value names, wherever that row lives; neither table is repartitioned.

    orders.join(customers, lambda order, customer: {...},
                foreign_key=lambda order: order["customer"])

The flow, as in Kafka Streams:

1. A left change sends *subscriptions* to the subscription topic, keyed by foreign key
   (so they reach the right table's partition): "subscribe PK with this value hash" to
   the new foreign key, "unsubscribe PK" to an old foreign key it moved away from.
2. The right side keeps subscriptions in a store keyed `[len(fk): 4][fk][pk]` (Kafka's
   CombinedKey layout, so a prefix scan finds a foreign key's subscribers) and answers
   each one with the right row on the response topic, keyed by PK; a change of a right
   row answers every subscriber of its key.
3. The left side joins an answer with the left row's current value, unless the value's
   hash no longer matches the subscription's: the answer is stale (the row changed since)
   and a fresher one is on its way.

Topics (with the application id prefix): `<name>-subscription-registration-topic`
(co-partitioned with the right table) and `<name>-subscription-response-topic`
(co-partitioned with the left table); store `<name>-subscription-store`, logged. The
bytes are Kafka Streams 4.4's, so Strom and Java instances can share one FK join's topics
(checked against Kafka's own serdes in tests/streams/test_streams_java_bytes.py):

- subscription (Kafka's SubscriptionWrapper, version 1): `[version | 0x80 if no hash: 1]
  [instruction: 1][hash: 16 if any][pk bytes][left partition: int32]`;
- response (SubscriptionResponseWrapper, version 0): `[version | 0x80 if no hash: 1]
  [hash: 16 if any][right value bytes, none if empty]`;
- the hash: MurmurHash3 x64-128 of the serialized left value, seed 104729, as Kafka's
  `Murmur3.hash128` (strom.streams.murmur3);
- the subscription store holds the subscription bytes under Kafka's CombinedKey.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom.streams.dsl.change import Change
from strom.streams.murmur3 import hash128_bytes
from strom.streams.processor import Processor
from strom.streams.record import Record
from strom.streams.serdes import BytesSerde, Serde
from strom.streams.state.stores import Stores

if TYPE_CHECKING:
    from strom.streams.dsl.table import Table

UNSUBSCRIBE = 0  # Kafka's DELETE_KEY_NO_PROPAGATE
UNSUBSCRIBE_AND_ANSWER = 1  # DELETE_KEY_AND_PROPAGATE: the left row is gone
SUBSCRIBE_ANSWER_NULL = 2  # PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE (left join)
SUBSCRIBE_ANSWER_IF_FOUND = 3  # PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE (inner join)


SUBSCRIPTION_VERSION = 1  # Kafka's SubscriptionWrapper.CURRENT_VERSION (adds the partition)
RESPONSE_VERSION = 0  # SubscriptionResponseWrapper.CURRENT_VERSION
NO_HASH = 0x80  # the version byte's top bit: no hash follows


def value_hash(data: bytes | None) -> bytes | None:
    return None if data is None else hash128_bytes(data)


def encode_subscription(instruction: int, digest: bytes | None, pk: bytes,
                        primary_partition: int) -> bytes:
    """Kafka's SubscriptionWrapper bytes (version 1)."""
    head = bytes([SUBSCRIPTION_VERSION | (NO_HASH if digest is None else 0), instruction])
    return head + (digest or b"") + pk + struct.pack(">i", primary_partition)


def decode_subscription(data: bytes) -> tuple[int, bytes | None, bytes, int | None]:
    """(instruction, hash, pk bytes, left partition) of a subscription of version 0 or 1."""
    version, has_hash = data[0] & 0x7F, not data[0] & NO_HASH
    at = 18 if has_hash else 2
    end = len(data) - (4 if version > 0 else 0)
    partition = struct.unpack_from(">i", data, end)[0] if version > 0 else None
    return data[1], data[2:18] if has_hash else None, data[at:end], partition


def encode_response(digest: bytes | None, right: bytes | None) -> bytes:
    """Kafka's SubscriptionResponseWrapper bytes: no right value is no bytes at all."""
    return bytes([RESPONSE_VERSION | (NO_HASH if digest is None else 0)]) + (digest or b"") + (
        right or b"")


def decode_response(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(hash, right value bytes or None) of a response."""
    has_hash = not data[0] & NO_HASH
    return (data[1:17] if has_hash else None), (data[17 if has_hash else 1:] or None)


def combined_key(fk: bytes, pk: bytes) -> bytes:
    return struct.pack(">i", len(fk)) + fk + pk


class SubscriptionSend(Processor):
    """Left side: a change of a row sends (un)subscriptions to the foreign keys."""

    def __init__(self, left_store: str, foreign_key: Callable[[Any], Any], inner: bool,
                 fk_serde: Serde[Any] | None, sinks: tuple[str, str]) -> None:
        self._left_name = left_store
        self._foreign_key = foreign_key
        self._inner = inner
        self._fk_serde_arg = fk_serde
        self.subscription_sink, self.response_sink = sinks

    def init(self, context: Any) -> None:
        super().init(context)
        self._left = context.get_state_store(self._left_name)
        self._fk_serde = self._fk_serde_arg or context.default_key_serde

    def _fk(self, value: Any) -> bytes | None:
        if value is None:
            return None
        fk = self._foreign_key(value)
        return None if fk is None else self._fk_serde.serialize(self._left.topic, fk)

    def process(self, record: Record) -> None:
        if record.key is None:
            return
        change: Change = record.value
        pk = self._left.key_serde.serialize(self._left.topic, record.key) or b""
        new_fk, old_fk = self._fk(change.new), self._fk(change.old)
        if change.new is None:
            if old_fk is not None:
                self._send(record, old_fk, UNSUBSCRIBE_AND_ANSWER, None, pk)
            return
        if old_fk is not None and old_fk != new_fk:
            self._send(record, old_fk, UNSUBSCRIBE, None, pk)
        if new_fk is not None:
            digest = value_hash(self._left.value_serde.serialize(self._left.topic, change.new))
            # an update must unset the previous result when the new key has no row: an
            # inner join answers "nothing" too, except for a row seen for the first time
            first_time = change.old is None
            instruction = (SUBSCRIBE_ANSWER_IF_FOUND if self._inner and first_time
                           else SUBSCRIBE_ANSWER_NULL)
            self._send(record, new_fk, instruction, digest, pk)
        elif not self._inner:  # no foreign key: a left join still has a row
            self._send_direct(record)

    def _send(self, record: Record, fk: bytes, instruction: int, digest: bytes | None,
              pk: bytes) -> None:
        value = encode_subscription(instruction, digest, pk, self.context.partition)
        self.context.forward(Record(fk, value, record.timestamp, record.headers),
                             to=self.subscription_sink)

    def _send_direct(self, record: Record) -> None:
        """A row without a foreign key answers itself (with no right value)."""
        pk = self._left.key_serde.serialize(self._left.topic, record.key) or b""
        digest = value_hash(self._left.value_serde.serialize(self._left.topic, record.value.new))
        self.context.forward(Record(pk, encode_response(digest, None), record.timestamp),
                             to=self.response_sink)


class SubscriptionReceive(Processor):
    """Right side: keep a subscription, answer it with the right row."""

    def __init__(self, subscriptions: str, right_store: str) -> None:
        self._sub_name = subscriptions
        self._right_name = right_store

    def init(self, context: Any) -> None:
        super().init(context)
        self._subs = context.get_state_store(self._sub_name)
        self._right = context.get_state_store(self._right_name)

    def process(self, record: Record) -> None:
        fk: bytes = record.key
        data: bytes = record.value
        instruction, digest, pk, _ = decode_subscription(data)
        key = combined_key(fk, pk)
        if instruction in (UNSUBSCRIBE, UNSUBSCRIBE_AND_ANSWER):
            self._subs.delete(key)
            if instruction == UNSUBSCRIBE_AND_ANSWER:
                self._answer(record, pk, digest, None)
            return
        self._subs.put(key, data, record.timestamp)
        found = self._right.get(self._right.key_serde.deserialize(self._right.topic, fk))
        if found is None and instruction == SUBSCRIBE_ANSWER_IF_FOUND:
            return
        self._answer(record, pk, digest, found)

    def _answer(self, record: Record, pk: bytes, digest: bytes | None, right: Any) -> None:
        raw = None if right is None else self._right.value_serde.serialize(self._right.topic, right)
        self.context.forward(Record(pk, encode_response(digest, raw), record.timestamp,
                                    record.headers))


class ForeignChange(Processor):
    """Right side: a change of a right row answers every subscriber of its key."""

    def __init__(self, subscriptions: str, right_store: str) -> None:
        self._sub_name = subscriptions
        self._right_name = right_store

    def init(self, context: Any) -> None:
        super().init(context)
        self._subs = context.get_state_store(self._sub_name)
        self._right = context.get_state_store(self._right_name)

    def process(self, record: Record) -> None:
        if record.key is None:
            return
        change: Change = record.value
        fk = self._right.key_serde.serialize(self._right.topic, record.key) or b""
        prefix = struct.pack(">i", len(fk)) + fk
        raw = (None if change.new is None
               else self._right.value_serde.serialize(self._right.topic, change.new))
        for key, data in self._subs.range(prefix, None):
            if not key.startswith(prefix):
                break
            value = encode_response(decode_subscription(data)[1], raw)
            self.context.forward(Record(key[len(prefix):], value, record.timestamp,
                                        record.headers))


class ResponseResolve(Processor):
    """Left side: join an answer with the row's current value, unless it is stale."""

    def __init__(self, left_store: str, right_value_serde: Serde[Any] | None,
                 joiner: Callable[[Any, Any], Any], inner: bool) -> None:
        self._left_name = left_store
        self._right_serde_arg = right_value_serde
        self._joiner = joiner
        self._inner = inner

    def init(self, context: Any) -> None:
        super().init(context)
        self._left = context.get_state_store(self._left_name)
        self._right_serde = self._right_serde_arg or context.default_value_serde

    def process(self, record: Record) -> None:
        digest, right_raw = decode_response(record.value)
        key = self._left.key_serde.deserialize(self._left.topic, record.key)
        current = self._left.get(key)
        raw_current = (None if current is None
                       else self._left.value_serde.serialize(self._left.topic, current))
        if value_hash(raw_current) != digest:
            return  # the row changed since it subscribed: a newer answer follows
        right = (None if right_raw is None
                 else self._right_serde.deserialize(self._left.topic, right_raw))
        missing = current is None or (right is None and self._inner)
        result = None if missing else self._joiner(current, right)
        self.context.forward(Record(key, Change(result, None), record.timestamp,
                                    record.headers))


def build_fk_join(left: Table, right: Table, joiner: Callable[[Any, Any], Any],
                  foreign_key: Callable[[Any], Any], inner: bool, name: str | None) -> str:
    """Add the nodes, topics and store of a foreign-key join; the result node's name."""
    builder = left.builder
    namer, topology = builder.namer, builder.topology
    left_store, right_store = left.materialize(), right.materialize()
    left.enable_send_old_values()
    base = name or namer.name("KTABLE-FK-JOIN-")
    sub_topic, resp_topic = (f"{base}-subscription-registration-topic",
                             f"{base}-subscription-response-topic")
    sub_store = f"{base}-subscription-store"
    for topic in (sub_topic, resp_topic):
        topology.add_internal_topic(topic, copartitioned=True)
    raw = BytesSerde()
    fk_serde, right_value_serde = right.key_serde, right.value_serde
    sinks = (f"{sub_topic}-sink", f"{base}-direct-sink")
    supplier = lambda: SubscriptionSend(left_store, foreign_key, inner, fk_serde, sinks)  # noqa: E731
    topology.add_processor(f"{base}-subscription-send", supplier, left.node)
    topology.add_sink(f"{sub_topic}-sink", sub_topic, f"{base}-subscription-send",
                      key_serde=raw, value_serde=raw)
    topology.add_sink(f"{base}-direct-sink", resp_topic, f"{base}-subscription-send",
                      key_serde=raw, value_serde=raw)
    topology.connect_processor_and_state_stores(f"{base}-subscription-send", stores=[left_store])
    topology.add_source(f"{sub_topic}-source", sub_topic, key_serde=raw, value_serde=raw)
    topology.add_processor(f"{base}-subscription-receive",
                           lambda: SubscriptionReceive(sub_store, right_store),
                           f"{sub_topic}-source")
    topology.add_processor(f"{base}-foreign-change",
                           lambda: ForeignChange(sub_store, right_store), right.node)
    topology.add_state_store(Stores.key_value(sub_store, raw, raw),
                             f"{base}-subscription-receive", f"{base}-foreign-change")
    topology.connect_processor_and_state_stores(f"{base}-subscription-receive",
                                                stores=[right_store])
    topology.connect_processor_and_state_stores(f"{base}-foreign-change", stores=[right_store])
    topology.add_sink(f"{resp_topic}-sink", resp_topic, f"{base}-subscription-receive",
                      f"{base}-foreign-change", key_serde=raw, value_serde=raw)
    topology.add_source(f"{resp_topic}-source", resp_topic, key_serde=raw, value_serde=raw)
    result = f"{base}-result"
    topology.add_processor(result, lambda: ResponseResolve(left_store, right_value_serde, joiner,
                                                           inner), f"{resp_topic}-source")
    topology.connect_processor_and_state_stores(result, stores=[left_store])
    return result

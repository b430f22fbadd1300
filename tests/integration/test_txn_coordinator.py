"""The transaction coordinator through real clients: confluent-kafka's transactional
producer (init_transactions, send_offsets_to_transaction, commit and abort), fencing of
a zombie instance, and kafka-python's admin-free raw view of the answers.

Offsets sent to a transaction become visible to OffsetFetch only after the commit; an
aborted transaction's offsets never do. Producing records in a transaction needs the
partition side (transactional produce, markers in data partitions) and is tested with it.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from support.broker_process import BrokerProcess
from support.clients import create_topic, unique_topic

pytestmark = pytest.mark.timeout(120)


def txn_producer(broker: BrokerProcess, txn_id: str, **extra: object) -> Producer:
    return Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id,
                     "transaction.timeout.ms": 60_000, **extra})


def group_metadata(broker: BrokerProcess, group: str) -> tuple[Consumer, object]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    return consumer, consumer.consumer_group_metadata()


def committed(broker: BrokerProcess, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=20)
        return tp.offset
    finally:
        consumer.close()


def test_offsets_committed_in_a_transaction(broker: BrokerProcess) -> None:
    topic = unique_topic("txn-in")
    create_topic(broker.bootstrap, topic, 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    producer = txn_producer(broker, f"t-{uuid.uuid4().hex[:8]}")
    producer.init_transactions(30)
    consumer, metadata = group_metadata(broker, group)
    try:
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 42)], metadata, 30)
        producer.commit_transaction(30)
        assert committed(broker, group, topic) == 42

        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 99)], metadata, 30)
        producer.abort_transaction(30)
        assert committed(broker, group, topic) == 42  # the aborted offsets never show
    finally:
        consumer.close()
    import time
    import urllib.request

    deadline = time.monotonic() + 20
    while True:  # the CompleteAbort record follows the markers
        with urllib.request.urlopen(broker.metrics_url, timeout=10) as response:
            text = response.read().decode()
        if 'strom_transactional_ids{state="CompleteAbort"}' in text or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert 'strom_transactional_ids{state="CompleteAbort"}' in text
    assert "strom_transaction_coordinator_partitions 50.0" in text


def test_a_second_instance_fences_the_first(broker: BrokerProcess) -> None:
    topic = unique_topic("txn-fence")
    create_topic(broker.bootstrap, topic, 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    txn_id = f"t-{uuid.uuid4().hex[:8]}"
    zombie = txn_producer(broker, txn_id)
    zombie.init_transactions(30)
    consumer, metadata = group_metadata(broker, group)
    try:
        zombie.begin_transaction()
        zombie.send_offsets_to_transaction([TopicPartition(topic, 0, 7)], metadata, 30)
        successor = txn_producer(broker, txn_id)
        successor.init_transactions(30)  # aborts the zombie's open transaction
        with pytest.raises(KafkaException) as raised:
            zombie.commit_transaction(30)
        error = raised.value.args[0]
        assert error.code() == KafkaError._FENCED or error.fatal()
        assert committed(broker, group, topic) < 0  # the zombie's offsets were aborted
        successor.begin_transaction()
        successor.send_offsets_to_transaction([TopicPartition(topic, 0, 8)], metadata, 30)
        successor.commit_transaction(30)
        assert committed(broker, group, topic) == 8
    finally:
        consumer.close()


def test_transaction_timeout_above_the_maximum_is_refused(broker: BrokerProcess) -> None:
    producer = txn_producer(broker, f"t-{uuid.uuid4().hex[:8]}",
                            **{"transaction.timeout.ms": 900_001})
    with pytest.raises(KafkaException) as raised:
        producer.init_transactions(30)
    assert raised.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT


def test_describe_and_list_transactions(broker: BrokerProcess) -> None:
    from support.raw_client import RawClient

    topic = unique_topic("txn-describe")
    create_topic(broker.bootstrap, topic, 1)
    txn_id = f"t-{uuid.uuid4().hex[:8]}"
    producer = txn_producer(broker, txn_id)
    producer.init_transactions(30)
    consumer, metadata = group_metadata(broker, f"g-{uuid.uuid4().hex[:8]}")
    raw = RawClient(broker.bootstrap)
    try:
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 1)], metadata, 30)
        coordinator_answer = raw.request(10, 4, key_type=1, coordinator_keys=[txn_id]).body
        assert coordinator_answer.coordinators[0].error_code == 0
        described = raw.request(65, 0, transactional_ids=[txn_id, "nobody-" + txn_id]).body
        state, missing = described.transaction_states
        assert state.transaction_state == "Ongoing" and state.producer_epoch == 0
        assert [t.topic for t in state.topics] == ["__consumer_offsets"]
        assert missing.error_code == 105  # TRANSACTIONAL_ID_NOT_FOUND
        listed = raw.request(66, 1, state_filters=["Ongoing", "Bogus"], producer_id_filters=[],
                             duration_filter=-1).body
        assert [t.transactional_id for t in listed.transaction_states] == [txn_id]
        assert list(listed.unknown_state_filters) == ["Bogus"]
        producer.commit_transaction(30)
        listed = raw.request(66, 0, state_filters=["Ongoing"], producer_id_filters=[]).body
        assert txn_id not in {t.transactional_id for t in listed.transaction_states}
    finally:
        raw.close()
        consumer.close()


def test_transactional_offsets_and_states_survive_a_sigkill(broker_factory) -> None:  # type: ignore[no-untyped-def]
    """Transactional offsets are in __consumer_offsets (a transactional batch, later its
    marker), and the coordinator's state in __transaction_state: a transaction open
    across a SIGKILL still commits its offsets, and the producer id's epoch is bumped
    after it, not reset."""
    import signal

    node = broker_factory()
    topic = unique_topic("txn-kill")
    create_topic(node.bootstrap, topic, 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    txn_id = f"t-{uuid.uuid4().hex[:8]}"
    producer = txn_producer(node, txn_id)
    producer.init_transactions(30)
    consumer, metadata = group_metadata(node, group)
    producer.begin_transaction()
    producer.send_offsets_to_transaction([TopicPartition(topic, 0, 42)], metadata, 30)
    consumer.close()
    # the broker dies between TxnOffsetCommit and EndTxn: the open transaction and its
    # held offsets are loaded back from the two internal topics, and the commit lands
    node.kill(signal.SIGKILL)
    node.restart()
    producer.commit_transaction(60)
    assert committed(node, group, topic) == 42
    from support.raw_client import RawClient

    with RawClient(node.bootstrap) as raw:
        first = raw.request(22, 4, transactional_id=txn_id, transaction_timeout=60_000,
                            producer_id=-1, producer_epoch=-1).body
    assert first.error_code == 0 and first.producer_epoch == 1  # epoch 0 was loaded back


def test_kafka_python_transactions(broker: BrokerProcess) -> None:
    """kafka-python's transactional producer: committed records are read with
    read_committed, aborted ones are not, offsets sent to a transaction commit with it."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KpPartition

    topic = unique_topic("txn-kp")
    create_topic(broker.bootstrap, topic, 1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap,
                             transactional_id=f"t-{uuid.uuid4().hex[:8]}")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"committed-1")
        producer.send_offsets_to_transaction({KpPartition(topic, 0): OffsetAndMetadata(3, "", -1)},
                                             group)
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, b"aborted")
        producer.flush()
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send(topic, b"committed-2")
        producer.commit_transaction()
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        consumer.assign([KpPartition(topic, 0)])
        values = [m.value for m in consumer]
    finally:
        consumer.close()
    assert values == [b"committed-1", b"committed-2"]
    assert committed(broker, group, topic) == 3


def test_txn_offset_commit_outside_the_transaction_is_refused(broker: BrokerProcess) -> None:
    """KIP-890 part 1 for offsets: a TxnOffsetCommit whose group partition was not added
    to the producer's transaction (no AddOffsetsToTxn, or a retry after the end) writes
    nothing: TRANSACTION_ABORTABLE from v4, INVALID_TXN_STATE below, as Kafka 4.4."""
    import time

    from support.raw_client import RawClient

    topic = unique_topic("txn-late")
    create_topic(broker.bootstrap, topic, 1)
    txn_id, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    with RawClient(broker.bootstrap) as raw:
        deadline = time.monotonic() + 30
        while True:  # the coordinators' topics are created and loaded on first use
            found = [raw.request(10, 4, key_type=k, coordinator_keys=[key]).body.coordinators[0]
                     for k, key in ((0, group), (1, txn_id))]
            init = raw.request(22, 4, transactional_id=txn_id, transaction_timeout=60_000,
                               producer_id=-1, producer_epoch=-1).body
            if all(c.error_code == 0 for c in found) and init.error_code == 0:
                break
            assert time.monotonic() < deadline, (found, init)
            time.sleep(0.2)

        def commit(version: int) -> int:
            body = raw.request(28, version, transactional_id=txn_id, group_id=group,
                               producer_id=init.producer_id, producer_epoch=init.producer_epoch,
                               generation_id=-1, member_id="", group_instance_id=None,
                               topics=[{"name": topic, "partitions": [
                                   {"partition_index": 0, "committed_offset": 5,
                                    "committed_leader_epoch": -1,
                                    "committed_metadata": ""}]}]).body
            return int(body.topics[0].partitions[0].error_code)

        assert commit(4) == 120  # TRANSACTION_ABORTABLE
        assert commit(3) == 48  # INVALID_TXN_STATE
        stable = raw.request(9, 8, groups=[{"group_id": group, "topics": [
            {"name": topic, "partition_indexes": [0]}]}], require_stable=True).body
        part = stable.groups[0].topics[0].partitions[0]
        assert (part.error_code, part.committed_offset) == (0, -1)  # nothing held


def _ready_producer(raw, txn_id: str):  # type: ignore[no-untyped-def]
    """InitProducerId for ``txn_id`` once the coordinator is up (created on first use)."""
    import time

    deadline = time.monotonic() + 30
    while True:
        found = raw.request(10, 4, key_type=1, coordinator_keys=[txn_id]).body.coordinators[0]
        init = raw.request(22, 4, transactional_id=txn_id, transaction_timeout=60_000,
                           producer_id=-1, producer_epoch=-1).body
        if found.error_code == 0 and init.error_code == 0:
            return init
        assert time.monotonic() < deadline, (found, init)
        time.sleep(0.2)


def test_wire_versions_of_the_producer_requests(broker: BrokerProcess) -> None:
    """PRODUCER_FENCED (90) for the versions of KIP-588, INVALID_PRODUCER_EPOCH (47) before;
    AddPartitionsToTxn v4 carries several transactions, verify-only ones among them."""
    from support.raw_client import RawClient

    topic = unique_topic("txn-wire")
    create_topic(broker.bootstrap, topic, 2)
    txn_id = f"t-{uuid.uuid4().hex[:8]}"
    with RawClient(broker.bootstrap) as raw:
        init = _ready_producer(raw, txn_id)
        pid, epoch = init.producer_id, init.producer_epoch

        def add(version: int, at_epoch: int) -> int:
            body = raw.request(24, version, v3_and_below_transactional_id=txn_id,
                               v3_and_below_producer_id=pid,
                               v3_and_below_producer_epoch=at_epoch,
                               v3_and_below_topics=[{"name": topic, "partitions": [0]}]).body
            return int(body.results_by_topic_v3_and_below[0].results_by_partition[0]
                       .partition_error_code)

        assert add(1, epoch + 1) == 47 and add(3, epoch + 1) == 90
        assert add(3, epoch) == 0
        assert raw.request(26, 1, transactional_id=txn_id, producer_id=pid,
                           producer_epoch=epoch + 1, committed=True).body.error_code == 47
        batch = raw.request(24, 4, transactions=[
            {"transactional_id": txn_id, "producer_id": pid, "producer_epoch": epoch,
             "verify_only": True, "topics": [{"name": topic, "partitions": [0, 1]}]},
            {"transactional_id": "nobody-" + txn_id, "producer_id": pid,
             "producer_epoch": epoch, "verify_only": True,
             "topics": [{"name": topic, "partitions": [0]}]}]).body
        assert batch.error_code == 0
        mine, nobody = batch.results_by_transaction
        codes = {int(r.partition_index): int(r.partition_error_code)
                 for r in mine.topic_results[0].results_by_partition}
        assert codes == {0: 0, 1: 120}  # in the transaction / not: TRANSACTION_ABORTABLE
        assert nobody.topic_results[0].results_by_partition[0].partition_error_code == 49
        assert raw.request(26, 3, transactional_id=txn_id, producer_id=pid,
                           producer_epoch=epoch, committed=False).body.error_code == 0

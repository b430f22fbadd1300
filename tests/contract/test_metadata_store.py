"""One contract for every `MetadataStore`: the same tests against the local JSON store and
the ZooKeeper store (see conftest.py), pinning what `strom.cluster.store` promises.

What the broker relies on, whichever store it runs on: topics are created, grown,
reconfigured and deleted with Kafka's errors; `update_topic` is an atomic
read-modify-write (a change computed from a stale read is never written over a newer
one); every write yields a new image with a higher epoch, delivered to subscribers on
the event loop; the metadata survives a restart; a store registers its broker and,
alone, is the controller. Capabilities only one store has today (several brokers,
producer-id blocks, controller fencing) are tested where the store has them, and skipped
with the reason elsewhere.

Where the stores differ today in a way the protocol does not allow, the test states the
protocol and `KNOWN_DIFFERENCES` marks that store's run as a strict xfail with the
reason: the run fails the moment the store is fixed, so the mark is removed with the fix.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from dataclasses import replace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from strom.cluster.image import MetadataImage, PartitionInfo, TopicInfo
from strom.cluster.store import MetadataError
from support.metadata_stores import Backend, broker_info

KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
}


@pytest.fixture(autouse=True)
def _known_difference(request: pytest.FixtureRequest) -> None:
    if "backend" not in request.fixturenames:
        return
    kind = request.node.callspec.params.get("backend")
    reason = KNOWN_DIFFERENCES.get((request.node.originalname, kind))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"known difference: {reason}"))


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _refused(error: str, call: Any, *args: Any) -> MetadataError:
    with pytest.raises(MetadataError) as caught:
        call(*args)
    assert caught.value.error == ErrorCode[error], caught.value
    return caught.value


class Recorder:
    """A subscriber that keeps every image it is given and the thread it ran on."""

    def __init__(self) -> None:
        self.images: list[MetadataImage] = []
        self.threads: set[int] = set()

    def __call__(self, image: MetadataImage) -> None:
        self.images.append(image)
        self.threads.add(threading.get_ident())

    @property
    def last(self) -> MetadataImage | None:
        return self.images[-1] if self.images else None


# --- creating topics ---------------------------------------------------------------------------


async def test_a_created_topic_is_in_the_image(backend: Backend, store: Any) -> None:
    before = store.image().epoch
    topic = store.create_topic("orders", {0: [1], 1: [1], 2: [1]}, {"retention.ms": "60000"})
    assert topic.name == "orders"
    assert isinstance(topic.topic_id, uuid.UUID) and topic.topic_id.int != 0
    assert topic.configs == {"retention.ms": "60000"}
    assert not topic.internal
    assert sorted(topic.partitions) == [0, 1, 2]
    for index, partition in topic.partitions.items():
        assert partition == PartitionInfo(index, leader=1, leader_epoch=0, replicas=(1,), isr=(1,))
    image = store.image()
    assert image.epoch > before
    assert image.topics["orders"] == topic
    assert image.topic_by_id(topic.topic_id) == topic


async def test_an_internal_topic_is_marked_internal(backend: Backend, store: Any) -> None:
    topic = store.create_topic("__consumer_offsets", {0: [1]}, {"cleanup.policy": "compact"},
                               internal=True)
    assert topic.internal
    assert store.image().topics["__consumer_offsets"].internal


async def test_creating_an_existing_topic_is_refused(backend: Backend, store: Any) -> None:
    first = store.create_topic("dup", {0: [1]}, {})
    _refused("topic_already_exists", store.create_topic, "dup", {0: [1], 1: [1]}, {})
    assert store.image().topics["dup"] == first


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 250, "has space", "slash/y", "ümlaut"])
async def test_an_illegal_name_is_refused(backend: Backend, store: Any, name: str) -> None:
    _refused("invalid_topic_exception", store.create_topic, name, {0: [1]}, {})
    assert name not in store.image().topics


async def test_the_longest_legal_name_is_accepted(backend: Backend, store: Any) -> None:
    name = "a._-9" * 49 + "Z" * 4  # 249 characters
    assert store.create_topic(name, {0: [1]}, {}).name == name


async def test_names_that_differ_only_by_dot_and_underscore_collide(backend: Backend,
                                                                    store: Any) -> None:
    """Kafka refuses them: both map to one metric name."""
    store.create_topic("metrics.a", {0: [1]}, {})
    _refused("invalid_topic_exception", store.create_topic, "metrics_a", {0: [1]}, {})
    assert "metrics_a" not in store.image().topics


# --- deleting, growing, configuring ------------------------------------------------------------


async def test_a_deleted_topic_leaves_the_image_and_its_name_can_be_reused(
        backend: Backend, store: Any) -> None:
    old = store.create_topic("gone", {0: [1], 1: [1]}, {"segment.ms": "1000"})
    before = store.image().epoch
    store.delete_topic("gone")
    image = store.image()
    assert "gone" not in image.topics and image.topic_by_id(old.topic_id) is None
    assert image.epoch > before
    _refused("unknown_topic_or_partition", store.delete_topic, "gone")
    again = store.create_topic("gone", {0: [1]}, {})
    assert again.topic_id != old.topic_id
    assert again.configs == {} and sorted(again.partitions) == [0]


async def test_added_partitions_join_the_topic_and_the_rest_is_unchanged(
        backend: Backend, store: Any) -> None:
    topic = store.create_topic("grow", {0: [1], 1: [1]}, {"retention.ms": "5"})
    grown = store.add_partitions("grow", {2: [1], 3: [1]})
    assert grown.topic_id == topic.topic_id and grown.configs == topic.configs
    assert sorted(grown.partitions) == [0, 1, 2, 3]
    assert grown.partitions[0] == topic.partitions[0]
    assert grown.partitions[1] == topic.partitions[1]
    assert grown.partitions[3] == PartitionInfo(3, leader=1, leader_epoch=0, replicas=(1,), isr=(1,))
    assert store.image().topics["grow"] == grown
    _refused("unknown_topic_or_partition", store.add_partitions, "no-such-topic", {0: [1]})


async def test_topic_configs_are_replaced_as_a_whole(backend: Backend, store: Any) -> None:
    topic = store.create_topic("conf", {0: [1]}, {"retention.ms": "1000", "segment.ms": "2000"})
    updated = store.set_topic_configs("conf", {"cleanup.policy": "compact"})
    assert updated.configs == {"cleanup.policy": "compact"}
    assert updated.partitions == topic.partitions and updated.topic_id == topic.topic_id
    assert store.image().topics["conf"].configs == {"cleanup.policy": "compact"}
    store.set_topic_configs("conf", {})
    assert store.image().topics["conf"].configs == {}
    _refused("unknown_topic_or_partition", store.set_topic_configs, "no-such-topic", {})


# --- update_topic --------------------------------------------------------------------------------


def _bump_isr(index: int, isr: tuple[int, ...]) -> Any:
    def change(topic: TopicInfo) -> TopicInfo:
        current = topic.partitions[index]
        updated = replace(current, isr=isr, partition_epoch=current.partition_epoch + 1)
        return replace(topic, partitions={**topic.partitions, index: updated})

    return change


async def test_update_topic_writes_the_change_and_returns_it(backend: Backend, store: Any) -> None:
    store.create_topic("upd", {0: [1], 1: [1]}, {"retention.ms": "7"})
    before = store.image().epoch
    seen: list[TopicInfo] = []

    def change(topic: TopicInfo) -> TopicInfo:
        seen.append(topic)
        p0 = topic.partitions[0]
        return replace(topic, partitions={
            **topic.partitions, 0: replace(p0, leader_epoch=p0.leader_epoch + 1,
                                           partition_epoch=p0.partition_epoch + 1)})

    updated = store.update_topic("upd", change)
    assert seen[-1].partitions[0].leader_epoch == 0
    assert updated is not None and updated.partitions[0].leader_epoch == 1
    assert updated.partitions[0].partition_epoch == 1
    assert updated.configs == {"retention.ms": "7"}
    image = store.image()
    assert image.topics["upd"] == updated and image.epoch > before


async def test_a_change_that_returns_none_writes_nothing(backend: Backend, store: Any) -> None:
    topic = store.create_topic("noop", {0: [1]}, {"retention.ms": "3"})
    assert store.update_topic("noop", lambda _topic: None) is None
    await asyncio.sleep(0.2)  # let the ZooKeeper store's watches deliver whatever they have
    assert store.image().topics["noop"] == topic


async def test_updating_an_unknown_topic_is_refused(backend: Backend, store: Any) -> None:
    calls: list[TopicInfo] = []

    def change(topic: TopicInfo) -> TopicInfo:
        calls.append(topic)
        return topic

    _refused("unknown_topic_or_partition", store.update_topic, "no-such-topic", change)
    assert calls == []


async def test_a_change_computed_from_a_stale_read_is_applied_again(backend: Backend,
                                                                   store: Any) -> None:
    """Another writer changes the topic between the read and the write (here from inside
    `change`, the one interleaving a single thread can produce): the stale result must be
    refused and `change` run again on the current topic, so neither write is lost."""
    store.create_topic("race", {0: [1], 1: [1]}, {})
    reads: list[TopicInfo] = []

    def change(topic: TopicInfo) -> TopicInfo:
        reads.append(topic)
        if len(reads) == 1:  # the concurrent writer: partition 1's ISR changes meanwhile
            store.update_topic("race", _bump_isr(1, (1,)))
        return _bump_isr(0, (1,))(topic)

    store.update_topic("race", change)
    final = store.image().topics["race"]
    assert final.partitions[1].partition_epoch == 1, "the concurrent write was lost"
    assert final.partitions[0].partition_epoch == 1
    assert len(reads) == 2 and reads[1].partitions[1].partition_epoch == 1


# --- images and subscribers ---------------------------------------------------------------------


async def test_subscribers_get_every_write_in_epoch_order_on_the_loop(backend: Backend,
                                                                    store: Any) -> None:
    recorder = Recorder()
    store.subscribe(recorder)
    store.create_topic("sub-a", {0: [1]}, {})
    await backend.settle(lambda: recorder.last is not None and "sub-a" in recorder.last.topics,
                         "the create delivered")
    store.add_partitions("sub-a", {1: [1]})
    await backend.settle(lambda: recorder.last is not None
                         and recorder.last.topics["sub-a"].partition_count == 2,
                         "the new partition delivered")
    store.set_topic_configs("sub-a", {"retention.ms": "9"})
    await backend.settle(lambda: recorder.last is not None
                         and recorder.last.topics["sub-a"].configs == {"retention.ms": "9"},
                         "the configs delivered")
    store.update_topic("sub-a", _bump_isr(0, (1,)))
    await backend.settle(lambda: recorder.last is not None
                         and recorder.last.topics["sub-a"].partitions[0].partition_epoch == 1,
                         "the update delivered")
    store.delete_topic("sub-a")
    await backend.settle(lambda: recorder.last is not None and "sub-a" not in recorder.last.topics,
                         "the delete delivered")
    epochs = [image.epoch for image in recorder.images]
    assert epochs == sorted(set(epochs)), f"images out of order or repeated: {epochs}"
    await backend.settle(lambda: recorder.last is store.image(), "the latest image delivered")
    assert recorder.threads == {threading.get_ident()}, "a subscriber ran off the event loop"


async def test_a_write_from_a_worker_thread_is_delivered_on_the_loop(backend: Backend,
                                                                   store: Any) -> None:
    """The broker makes remote-store round trips on worker threads (topic_admin)."""
    if backend.kind == "local":
        pytest.skip("LocalMetadataStore calls its subscribers in the writer's thread, so the "
                    "broker writes it only on the loop (topic_admin._call_store checks for "
                    "create_topics to decide): a requirement the protocol does not state")
    recorder = Recorder()
    store.subscribe(recorder)
    await asyncio.to_thread(store.create_topic, "threaded", {0: [1]}, {})
    await backend.settle(lambda: recorder.last is not None and "threaded" in recorder.last.topics,
                         "the create delivered")
    assert recorder.threads == {threading.get_ident()}


# --- restart ------------------------------------------------------------------------------------


async def test_topics_survive_a_restart(backend: Backend, store: Any) -> None:
    store.create_topic("keep-a", {0: [1], 1: [1]}, {"retention.ms": "123"})
    store.create_topic("__keep_internal", {0: [1]}, {}, internal=True)
    store.create_topic("keep-gone", {0: [1]}, {})
    store.add_partitions("keep-a", {2: [1]})
    store.set_topic_configs("keep-a", {"retention.ms": "456", "cleanup.policy": "compact"})
    store.update_topic("keep-a", lambda t: replace(t, partitions={
        **t.partitions, 1: replace(t.partitions[1], leader_epoch=4)}))
    store.delete_topic("keep-gone")
    expected = store.image().topics
    backend.close(store)
    reopened = (await backend.open(1)).image()
    assert set(reopened.topics) == {"keep-a", "__keep_internal"}
    for name, topic in expected.items():
        again = reopened.topics[name]
        assert (again.topic_id, again.configs, again.internal) == \
            (topic.topic_id, topic.configs, topic.internal)
        for index, partition in topic.partitions.items():
            kept = again.partitions[index]
            assert (kept.leader, kept.leader_epoch, kept.replicas, kept.isr) == \
                (partition.leader, partition.leader_epoch, partition.replicas, partition.isr)
    assert reopened.topics["keep-a"].partitions[1].leader_epoch == 4


async def test_partition_epochs_and_reassignments_survive_a_restart(backend: Backend,
                                                                  store: Any) -> None:
    store.create_topic("keep-epochs", {0: [1]}, {})
    store.update_topic("keep-epochs", lambda t: replace(t, partitions={
        0: replace(t.partitions[0], partition_epoch=7, controller_epoch=3, adding=(2,),
                   removing=(1,))}))
    written = store.image().topics["keep-epochs"].partitions[0]
    backend.close(store)
    reopened = (await backend.open(1)).image()
    assert reopened.topics["keep-epochs"].partitions[0] == written


# --- brokers and the controller -----------------------------------------------------------------


async def test_the_store_registers_its_broker_and_a_lone_broker_is_the_controller(
        backend: Backend, store: Any) -> None:
    image = store.image()
    assert image.brokers[1] == broker_info(1)
    assert image.live_broker_ids == frozenset({1})
    assert image.controller_id == 1
    assert image.cluster_id == "contract-cluster-id"
    if hasattr(store, "is_controller"):
        await backend.settle(lambda: store.is_controller, "broker 1 holds the controller epoch")
        assert store.controller_epoch >= 1


def _needs_several_brokers(backend: Backend) -> None:
    if not backend.multi_broker:
        pytest.skip(f"{backend.kind}: a single-node store; it knows only its own broker")


async def test_brokers_come_and_go_and_every_store_sees_the_same_topics(backend: Backend,
                                                                      store: Any) -> None:
    _needs_several_brokers(backend)
    second = await backend.open(2)
    await backend.settle(lambda: store.image().live_broker_ids == {1, 2}, "broker 2 seen by 1")
    assert second.image().brokers[1] == broker_info(1)
    topic = store.create_topic("shared", {0: [1, 2], 1: [2, 1]}, {"retention.ms": "11"})
    await backend.settle(lambda: second.image().topics.get("shared") == topic,
                         "broker 2 sees broker 1's topic")
    second.set_topic_configs("shared", {"retention.ms": "22"})
    await backend.settle(lambda: store.image().topics["shared"].configs == {"retention.ms": "22"},
                         "broker 1 sees broker 2's configs")
    backend.close(second)
    await backend.settle(lambda: store.image().live_broker_ids == {1}, "broker 2 gone")


async def test_when_the_controller_leaves_another_broker_takes_over_with_a_higher_epoch(
        backend: Backend, store: Any) -> None:
    _needs_several_brokers(backend)
    await backend.settle(lambda: store.is_controller, "broker 1 is the controller")
    first_epoch = store.controller_epoch
    second = await backend.open(2)
    changes: list[bool] = []
    second.on_controller_change(changes.append)
    assert second.image().controller_id == 1 and not second.is_controller
    backend.close(store)
    await backend.settle(lambda: second.is_controller, "broker 2 elected")
    assert second.controller_epoch > first_epoch
    await backend.settle(lambda: second.image().controller_id == 2, "the image names broker 2")
    await backend.settle(lambda: True in changes, "broker 2 told it is the controller")


# --- producer ids -------------------------------------------------------------------------------


async def test_producer_id_blocks_never_overlap_across_brokers_and_restarts(
        backend: Backend, store: Any) -> None:
    if getattr(store, "reserve_producer_id_block", None) is None:
        pytest.skip(f"{type(store).__name__} has no reserve_producer_id_block: the broker "
                    "falls back to a file in its log dir (producer_id_manager.FileBlockReserver); "
                    "not part of the MetadataStore protocol")
    others = [await backend.open(2)] if backend.multi_broker else []
    blocks = [(store.reserve_producer_id_block(1000), 1000)]
    blocks += [(other.reserve_producer_id_block(1000), 1000) for other in others]
    blocks.append((store.reserve_producer_id_block(500), 500))
    backend.close(store)
    again = await backend.open(1)
    blocks.append((again.reserve_producer_id_block(1000), 1000))
    starts = [start for start, _ in blocks]
    assert starts == sorted(starts) and starts[0] >= 0, f"blocks out of order: {blocks}"
    for (start, size), (next_start, _) in itertools.pairwise(blocks):
        assert start + size <= next_start, f"blocks overlap: {blocks}"

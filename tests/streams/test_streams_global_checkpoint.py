"""Global store checkpoints against a real broker: a persistent (RocksDB) global table
restarted over the same state directory reads only the records added since its last
checkpoint (`<state.dir>/<app>/global/.checkpoint`, written after a flush), and still holds
every row; an in-memory global table, or one whose checkpoint is gone, reads its topic
whole again.
"""

from __future__ import annotations

from pathlib import Path

from streams_runtime_support import produce

from strom.client import KafkaClients
from strom.streams import Materialized, Serdes, StreamsBuilder
from strom.streams.runtime import checkpoint
from strom.streams.runtime.config import StreamsConfig
from strom.streams.runtime.global_updater import GlobalUpdater
from support.broker_process import BrokerProcess
from support.clients import create_topic, unique_topic


def _updater(broker: BrokerProcess, app_id: str, topic: str, state: Path,
             persistent: bool) -> GlobalUpdater:
    builder = StreamsBuilder()
    builder.global_table(topic, Serdes.String, Serdes.String,
                         Materialized.as_("rows", persistent=persistent))
    config = StreamsConfig(app_id, broker.bootstrap, state_dir=state, commit_interval_ms=200)
    updater = GlobalUpdater(builder.build(), config, KafkaClients(broker.bootstrap))
    updater.bootstrap()
    return updater


def _rows(updater: GlobalUpdater) -> dict[str, str]:
    return dict(updater.state.stores["rows"].all())


def _restart_counts(broker: BrokerProcess, tmp_path: Path, persistent: bool
                    ) -> tuple[int, int, dict[str, str], Path]:
    """Rows read by a first start (40 rows) and by a restart after 7 more (3 updates)."""
    app_id, topic = unique_topic("global-cp"), unique_topic("rows")
    create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, [(f"k{i}", f"v{i}", None) for i in range(40)])
    first = _updater(broker, app_id, topic, tmp_path, persistent)
    first_read = first.restored_records
    assert len(_rows(first)) == 40
    first.close()
    produce(broker.bootstrap, topic, [(f"k{i}", f"new{i}", None) for i in range(37, 44)])
    second = _updater(broker, app_id, topic, tmp_path, persistent)
    try:
        return first_read, second.restored_records, _rows(second), second.directory
    finally:
        second.close()


def _expected() -> dict[str, str]:
    rows = {f"k{i}": f"v{i}" for i in range(40)}
    rows.update({f"k{i}": f"new{i}" for i in range(37, 44)})
    return rows


def test_persistent_global_store_restores_only_the_tail(gbroker: BrokerProcess,
                                                        tmp_path: Path) -> None:
    first, second, rows, directory = _restart_counts(gbroker, tmp_path, persistent=True)
    assert (first, second) == (40, 7)
    assert rows == _expected()
    offsets = checkpoint.read(directory)
    assert sum(offsets.values()) == 47 and len(offsets) == 2


def test_in_memory_global_store_is_read_whole(gbroker: BrokerProcess, tmp_path: Path) -> None:
    first, second, rows, directory = _restart_counts(gbroker, tmp_path, persistent=False)
    assert (first, second) == (40, 47)
    assert rows == _expected()
    assert checkpoint.read(directory) == {}


def test_global_store_without_checkpoint_is_rebuilt(gbroker: BrokerProcess,
                                                    tmp_path: Path) -> None:
    app_id, topic = unique_topic("global-nocp"), unique_topic("rows")
    create_topic(gbroker.bootstrap, topic, 1)
    produce(gbroker.bootstrap, topic, [(f"k{i}", f"v{i}", None) for i in range(10)])
    _updater(gbroker, app_id, topic, tmp_path, True).close()
    checkpoint.remove(tmp_path / app_id / "global")  # e.g. a crash before the first one
    produce(gbroker.bootstrap, topic, [("k10", "v10", None)])
    again = _updater(gbroker, app_id, topic, tmp_path, True)
    try:
        assert again.restored_records == 11
        assert len(_rows(again)) == 11
    finally:
        again.close()

"""Property test: the PartitionLog keeps its leader-epoch cache and producer state consistent
with the segments under random appends (idempotent and not, across leader epochs),
retries, truncations, DeleteRecords, retention, producer snapshots and reopens.

The model keeps the batches appended and the producer snapshots taken; what the epoch
cache and producer state must be is derived from them after every step:

* epochs: the first offset of every newer leader epoch among the records at or after the
  log start (the first clamped to the log start);
* producers: the last batch of each producer, as appended; after a truncation or a
  reopen, as Kafka rebuilds it: the newest snapshot at or below the log end plus the
  batches after it (without a snapshot, the batches of the last two segments).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from kio.schema.errors import ErrorCode
from storage_helpers import FakeClock, crash

from strom.protocol.records import encode_batch, validate_batches
from strom.storage import Log, LogConfig
from strom.storage.partition_log import Duplicate, PartitionLog
from strom.storage.producer_state import SequenceError

PIDS = (7, 8)


@dataclass(frozen=True)
class Batch:
    base: int
    last: int
    epoch: int  # partition leader epoch
    pid: int  # -1: not idempotent
    producer_epoch: int
    first_seq: int
    timestamp: int


# producer id -> (producer epoch, last sequence, last offset, offset delta, timestamp)
ProducerView = dict[int, tuple[int, int, int, int, int]]


def fold(batches: list[Batch], start: ProducerView | None = None) -> ProducerView:
    """The producer state those batches leave, in Kafka's rules for valid sequences."""
    view = dict(start or {})
    for b in batches:
        if b.pid < 0:
            continue
        known = view.get(b.pid)
        if known is not None and b.producer_epoch < known[0]:
            continue
        span = b.last - b.base
        view[b.pid] = (b.producer_epoch, b.first_seq + span, b.last, span, b.timestamp)
    return view


class PartitionLogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="strom-plog-"))
        self.clock = FakeClock()
        self.batches: list[Batch] = []
        self.log_start = 0
        self.log_end = 0
        self.leader_epoch = 0
        self.producer_epochs = dict.fromkeys(PIDS, 0)
        self.next_seq = dict.fromkeys(PIDS, 0)
        self.expected: ProducerView = {}
        self.snapshots: dict[int, ProducerView] = {}  # on disk: offset -> state
        self.plog: PartitionLog

    def teardown(self) -> None:
        self.plog.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize(segment_bytes=st.integers(300, 3000))
    def start(self, segment_bytes: int) -> None:
        self.config = LogConfig(segment_bytes=segment_bytes, retention_bytes=-1)
        self.plog = PartitionLog(Log.open(self.root / "model-0", self.config, clock=self.clock))

    # -- operations -------------------------------------------------------------------

    @rule(count=st.integers(1, 4), pid=st.sampled_from((-1, *PIDS)), ts=st.integers(0, 99))
    def append(self, count: int, pid: int, ts: int) -> None:
        seq = self.next_seq[pid] if pid >= 0 else -1
        epoch = self.producer_epochs[pid] if pid >= 0 else -1
        data = bytearray(encode_batch([(None, b"v" * 20)] * count, timestamp_ms=1000 + ts,
                                      producer_id=pid, producer_epoch=epoch, base_sequence=seq))
        outcome = self.plog.append_as_leader(data, validate_batches(data),
                                             leader_epoch=self.leader_epoch)
        assert not isinstance(outcome, Duplicate)
        batch = Batch(self.log_end, self.log_end + count - 1, self.leader_epoch, pid, epoch,
                      seq, 1000 + ts)
        assert outcome.first_offset == batch.base
        self.batches.append(batch)
        self.log_end = batch.last + 1
        self.expected = fold([batch], self.expected)
        if pid >= 0:
            self.next_seq[pid] = seq + count

    @precondition(lambda self: any(b.pid >= 0 for b in self.batches))
    @rule()
    def retry_last_batch(self) -> None:
        """A producer retries its newest batch: answered with its offsets, not appended."""
        last = [b for b in self.batches if b.pid >= 0][-1]
        if self.expected.get(last.pid, (None, None, None))[2] != last.last:
            return  # no longer that producer's state (truncated and rebuilt otherwise)
        data = bytearray(encode_batch([(None, b"v" * 20)] * (last.last - last.base + 1),
                                      timestamp_ms=last.timestamp, producer_id=last.pid,
                                      producer_epoch=last.producer_epoch,
                                      base_sequence=last.first_seq))
        end = self.plog.log_end_offset
        outcome = self.plog.append_as_leader(data, validate_batches(data),
                                             leader_epoch=self.leader_epoch)
        assert isinstance(outcome, Duplicate) and outcome.first_offset == last.base
        assert self.plog.log_end_offset == end

    @rule(pid=st.sampled_from(PIDS))
    def stale_producer_epoch_is_fenced(self, pid: int) -> None:
        if pid not in self.expected or self.expected[pid][0] == 0:
            return
        data = bytearray(encode_batch([(None, b"x")], producer_id=pid,
                                      producer_epoch=self.expected[pid][0] - 1, base_sequence=0))
        try:
            self.plog.append_as_leader(data, validate_batches(data),
                                       leader_epoch=self.leader_epoch)
        except SequenceError as exc:
            assert exc.error == ErrorCode.invalid_producer_epoch
        else:
            raise AssertionError("a fenced producer epoch was appended")

    @rule(pid=st.sampled_from(PIDS))
    def bump_producer_epoch(self, pid: int) -> None:
        self.producer_epochs[pid] += 1
        self.next_seq[pid] = 0

    @rule()
    def new_leader_epoch(self) -> None:
        self.leader_epoch += 1

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.log_start, self.log_end), label="offset")
        moved = self.plog.truncate_to(offset)
        kept = [b for b in self.batches if b.last < offset]
        cut = [b for b in self.batches if b.last >= offset]
        assert moved == bool(cut)
        if cut:  # a batch straddling the offset goes whole; the log start follows down
            self.batches, self.log_end = kept, cut[0].base
            self.log_start = min(self.log_start, self.log_end)
            self._rebuilt()

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.log_start, self.log_end), label="offset")
        assert self.plog.delete_records_before(offset) == offset
        self._move_start(offset)

    @rule(retention_bytes=st.integers(0, 2000))
    def retention(self, retention_bytes: int) -> None:
        """The LogManager's path: straight to the segments, the PartitionLog not involved."""
        log = self.plog.log
        log.update_config(LogConfig(segment_bytes=self.config.segment_bytes,
                                    retention_bytes=retention_bytes))
        log.enforce_retention(self.clock(), high_watermark=None)
        log.update_config(self.config)
        self._move_start(log.log_start_offset)

    @rule()
    def snapshot(self) -> None:
        writer = self.plog.producer_snapshot_writer()
        if writer is not None:
            writer()
            self.snapshots[self.log_end] = dict(self.expected)
            for old in sorted(self.snapshots)[:-2]:  # two are kept
                del self.snapshots[old]

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        log = self.plog.log
        if clean:
            self.snapshot()
            log.close()
        else:
            log.flush()
            crash(log)
        self.plog = PartitionLog(Log.open(log.dir, self.config, clock=self.clock,
                                          recovery_point=log.recovery_point,
                                          log_start_offset=self.log_start,
                                          clean_shutdown=clean))
        self._rebuilt()

    # -- the model's rules --------------------------------------------------------------

    def _move_start(self, start: int) -> None:
        self.log_start = max(self.log_start, start)

    def _rebuilt(self) -> None:
        """Producer state as a rebuild makes it: snapshot + replay, or the last segments."""
        end = self.log_end
        for offset in [o for o in self.snapshots if o > end]:
            del self.snapshots[offset]
        if self.snapshots:
            offset = max(self.snapshots)
            view = self.snapshots[offset]
        else:
            bases = [s.base_offset for s in self.plog.log.segments]
            offset, view = (bases[-2] if len(bases) >= 2 else self.log_start), {}
        offset = max(offset, self.log_start)
        self.expected = fold([b for b in self.batches if b.last >= offset], view)
        for pid, (epoch, last_seq, _, _, _) in self.expected.items():
            # a producer goes on from what the broker now knows of it
            self.next_seq[pid] = last_seq + 1 if epoch == self.producer_epochs[pid] else 0

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def offsets_agree(self) -> None:
        assert (self.plog.log_start_offset, self.plog.log_end_offset) == (
            self.log_start, self.log_end)

    @invariant()
    def epochs_follow_the_records(self) -> None:
        derived: list[tuple[int, int]] = []
        for b in self.batches:
            if b.last >= self.log_start and (not derived or b.epoch > derived[-1][0]):
                derived.append((b.epoch, max(b.base, self.log_start)))
        entries = self.plog._epochs.entries
        live = [e for e in entries if e[1] < self.log_end]
        assert live == derived
        rest = entries[len(live):]  # all records deleted: the latest epoch is still known
        assert not rest or rest == [(rest[0][0], self.log_start)]

    @invariant()
    def producers_follow_the_records(self) -> None:
        state = {e.producer_id: (e.epoch, e.last_sequence, e.last_offset, e.offset_delta,
                                 e.timestamp)
                 for e in self.plog.producers.to_snapshot()}
        assert state == self.expected
        assert all(last < self.log_end for _, _, last, _, _ in state.values())


PartitionLogModel.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_partition_log_model = PartitionLogModel.TestCase

"""Property test: random appends, reads, truncations, DeleteRecords and restarts against
a plain in-memory model of the log (a list of batches)."""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from storage_helpers import FakeClock, crash

from strom.protocol.records import encode_batch, validate_batches
from strom.storage import Log, LogConfig, OffsetOutOfRange


@dataclass
class ModelBatch:
    base: int
    last: int
    timestamp: int
    data: bytes


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="strom-model-"))
        self.clock = FakeClock()
        self.batches: list[ModelBatch] = []  # physically present, in offset order
        self.log_start = 0
        self.log_end = 0
        self.log: Log

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize(
        segment_bytes=st.integers(200, 3000),
        interval=st.sampled_from([0, 50, 300, 4096]),
    )
    def start(self, segment_bytes: int, interval: int) -> None:
        self.config = LogConfig(segment_bytes=segment_bytes, index_interval_bytes=interval)
        self.log = Log.open(self.root / "model-0", self.config, clock=self.clock)

    # -- operations -------------------------------------------------------------------

    @rule(
        specs=st.lists(
            st.tuples(st.integers(1, 5), st.integers(0, 200), st.integers(0, 50)),
            min_size=1,
            max_size=4,
        ),
        epoch=st.integers(0, 3),
    )
    def append(self, specs: list[tuple[int, int, int]], epoch: int) -> None:
        raw = [
            encode_batch([(None, b"v" * size)] * count, timestamp_ms=1000 + ts)
            for count, size, ts in specs
        ]
        payload = bytearray(b"".join(raw))
        info = self.log.append_as_leader(
            payload, validate_batches(payload), leader_epoch=epoch
        )
        assert info.first_offset == self.log_end
        position = 0
        for (count, _, ts), data in zip(specs, raw, strict=True):
            stored = bytes(payload[position : position + len(data)])
            self.batches.append(ModelBatch(self.log_end, self.log_end + count - 1, ts, stored))
            self.log_end += count
            position += len(data)
        assert info.last_offset == self.log_end - 1

    @rule(
        data=st.data(),
        max_bytes=st.integers(1, 3000),
        use_max_offset=st.booleans(),
        min_one=st.booleans(),
    )
    def read(self, data: st.DataObject, max_bytes: int, use_max_offset: bool, min_one: bool) -> None:
        offset = data.draw(st.integers(self.log_start - 2, self.log_end + 2), label="offset")
        max_offset = (
            data.draw(st.integers(self.log_start, self.log_end), label="max_offset")
            if use_max_offset
            else None
        )
        if offset < self.log_start or offset > self.log_end:
            try:
                self.log.read(offset, max_bytes, max_offset=max_offset)
            except OffsetOutOfRange:
                return
            raise AssertionError("expected OffsetOutOfRange")
        result = self.log.read(offset, max_bytes, max_offset=max_offset, min_one_batch=min_one)
        assert result.data == self._expected_read(offset, max_bytes, max_offset, min_one)

    def _expected_read(
        self, offset: int, max_bytes: int, max_offset: int | None, min_one: bool
    ) -> bytes:
        candidates = [b for b in self.batches if b.last >= offset]
        if not candidates or offset >= self.log_end:
            return b""
        if max_offset is not None and offset >= max_offset:
            return b""  # at or past the high watermark: nothing, as in Kafka
        bases = [s.base_offset for s in self.log.segments]
        segment = bisect.bisect_right(bases, candidates[0].base)
        out = b""
        for b in candidates:
            if bisect.bisect_right(bases, b.base) != segment:
                break
            if max_offset is not None and b.base >= max_offset:
                break
            if len(out) + len(b.data) > max_bytes:
                if not out and min_one:
                    out = b.data
                break
            out += b.data
        return out

    @rule(data=st.data())
    def offset_for_timestamp(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(990, 1060), label="timestamp")
        expected = None
        for b in self.batches:
            if b.last >= self.log_start and 1000 + b.timestamp >= target:
                expected = (max(b.base, self.log_start), 1000 + b.timestamp)
                break
        assert self.log.offset_for_timestamp(target) == expected

    @rule()
    def max_timestamp(self) -> None:
        if not self.batches:
            assert self.log.max_timestamp_and_offset()[0] == -1
            return
        top = max(b.timestamp for b in self.batches)
        first = next(b for b in self.batches if b.timestamp == top)
        assert self.log.max_timestamp_and_offset() == (1000 + top, first.base)

    @precondition(lambda self: self.log_end > 0)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(max(self.log_start - 2, 0), self.log_end), label="to")
        self.log.truncate_to(offset)
        if offset >= self.log_end:
            return
        if offset < self.log_start:
            self.batches, self.log_start, self.log_end = [], offset, offset
            return
        self.batches = [b for b in self.batches if b.last < offset]
        tail = self.batches[-1].last + 1 if self.batches else 0
        self.log_end = max(tail, self.log.segments[-1].base_offset)
        self.log_start = min(self.log_start, self.log_end)

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.log_start, self.log_end), label="before")
        assert self.log.delete_records_before(offset) == max(offset, self.log_start)
        self.log_start = max(offset, self.log_start)
        first_base = self.log.segments[0].base_offset
        self.batches = [b for b in self.batches if b.base >= first_base]

    @rule(clean=st.booleans())
    def restart(self, clean: bool) -> None:
        recovery_point, log_start = self.log.recovery_point, self.log.log_start_offset
        if clean:
            self.log.close()
        else:
            crash(self.log)
        self.log = Log.open(
            self.root / "model-0",
            self.config,
            clock=self.clock,
            recovery_point=recovery_point,
            log_start_offset=log_start,
            clean_shutdown=clean,
        )

    @precondition(lambda self: self.batches and self.log.active_segment.size > 0)
    @rule(data=st.data())
    def torn_tail(self, data: st.DataObject) -> None:
        """Crash with the newest batch half written; recovery must cut exactly it."""
        segment = self.log.active_segment
        last = self.batches[-1]
        cut = data.draw(st.integers(segment.size - len(last.data), segment.size - 1), label="cut")
        recovery_point = min(self.log.recovery_point, last.base)  # it was not flushed
        log_start = self.log.log_start_offset
        crash(self.log)
        os.truncate(segment.log_path, cut)
        self.log = Log.open(
            self.root / "model-0",
            self.config,
            clock=self.clock,
            recovery_point=recovery_point,
            log_start_offset=log_start,
            clean_shutdown=False,
        )
        self.batches.pop()
        self.log_end = last.base
        if self.log_start > self.log_end:  # nothing readable is left: start over there
            self.batches, self.log_end = [], self.log_start

    @rule(limit=st.integers(0, 3000))
    def retention_by_size(self, limit: int) -> None:
        before = self.log.size_bytes
        self.log.update_config(replace(self.config, retention_bytes=limit, retention_ms=-1))
        deleted = self.log.enforce_retention(self.clock.now)
        self.log.update_config(self.config)
        after = self.log.size_bytes
        assert (deleted == 0 and after == before) or (deleted > 0 and after < before)
        first_base = self.log.segments[0].base_offset
        self.batches = [b for b in self.batches if b.base >= first_base]
        self.log_start = max(self.log_start, first_base)

    @rule()
    def flush(self) -> None:
        self.log.flush()
        assert self.log.recovery_point == self.log_end

    @rule()
    def roll(self) -> None:
        self.log.roll()

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def offsets_agree(self) -> None:
        if hasattr(self, "log"):
            assert (self.log.log_start_offset, self.log.log_end_offset) == (
                self.log_start,
                self.log_end,
            )
            assert self.log.recovery_point <= self.log_end

    @invariant()
    def everything_reads_back(self) -> None:
        if not hasattr(self, "log"):
            return
        expected = b"".join(b.data for b in self.batches if b.last >= self.log_start)
        got = bytearray()
        offset = self.log_start
        while offset < self.log_end:
            result = self.log.read(offset, 1 << 20)
            assert result.data
            got += result.data
            offset = validate_batches(result.data)[-1].last_offset + 1
        assert bytes(got) == expected


TestLogModel = LogModel.TestCase
TestLogModel.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

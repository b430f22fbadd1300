"""Killing a transactional process while one of its transactions holds records.

A test that SIGKILLs an exactly-once application to prove the open transaction is
aborted must kill it while one is open; under load a plain kill may land between two
commits and prove nothing. The process is frozen (SIGSTOP) before looking, so no commit
can slip in between the look and the kill; with nothing open it thaws and looks again.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from support.broker_process import kill_process


def open_transaction(admin: AdminClient, partitions: Sequence[TopicPartition]) -> bool:
    """Whether any partition holds records of a transaction not yet ended: its last
    stable offset (the end a read_committed reader sees) is behind its high watermark."""
    ends: list[dict[tuple[str, int], int]] = []
    for isolation in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions},
                                     isolation_level=isolation, request_timeout=10)
        ends.append({(tp.topic, tp.partition): future.result().offset
                     for tp, future in futures.items()})
    return any(ends[0][key] < ends[1][key] for key in ends[1])


def kill_mid_transaction(proc: subprocess.Popen[Any], admin: AdminClient,
                         partitions: Sequence[TopicPartition], timeout: float = 120) -> None:
    """SIGKILL `proc` while a transaction holds records in `partitions`."""
    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.3)  # a commit already on the wire reaches the log
        if open_transaction(admin, partitions):
            kill_process(proc)
            return
        proc.send_signal(signal.SIGCONT)
        assert time.monotonic() < deadline, "no open transaction seen to kill the process in"
        time.sleep(0.2)

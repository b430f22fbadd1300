"""The end of the fuzz suite: acknowledged data intact, then restarts.

Runs after the corrupt batches and the mutated frames (file order). The real client's
acknowledged records must all read back identical; the broker must stop cleanly on
SIGTERM and start again, then start again after SIGKILL; each time the acknowledged
records are still there, and no corrupt batch reappeared (the high watermarks of the
partitions they were sent to, `__consumer_offsets` included, are unchanged). A corrupt
batch stored in `__consumer_offsets` used to make every later start exit 1.
"""

from __future__ import annotations

import signal

import pytest

from support.fuzz_target import FuzzEnv, api_versions_latency
from support.raw_client import RawClient, high_watermark

pytestmark = pytest.mark.fuzz


def _assert_intact(env: FuzzEnv, when: str) -> None:
    assert api_versions_latency(env.broker.port) is not None, f"{when}: no ApiVersions answer"
    lost = env.ledger.verify()
    assert not lost, f"{when}: {len(lost)} of {len(env.ledger.acked)} acknowledged records " \
                     f"lost or changed:\n" + "\n".join(lost[:20])
    with RawClient(env.broker.bootstrap) as client:
        moved = {tp: (hw, high_watermark(client, *tp)) for tp, hw in env.watermarks.items()}
    moved = {tp: hws for tp, hws in moved.items() if hws[0] != hws[1]}
    assert not moved, f"{when}: high watermarks of corrupt-batch targets moved: {moved}"


def test_acknowledged_data_intact_after_fuzzing(fuzz_env: FuzzEnv) -> None:
    fuzz_env.ledger.stop_background()
    assert not fuzz_env.ledger.failed, fuzz_env.ledger.failed[:10]
    assert len(fuzz_env.ledger.acked) >= 200
    _assert_intact(fuzz_env, "after fuzzing")


def test_clean_restart(fuzz_env: FuzzEnv) -> None:
    fuzz_env.ledger.stop_background()
    code = fuzz_env.broker.stop()
    assert code == 0, f"SIGTERM: broker exited {code}; log:\n{fuzz_env.broker.log_text()[-3000:]}"
    fuzz_env.broker.start()
    _assert_intact(fuzz_env, "after SIGTERM and start")


def test_restart_after_sigkill(fuzz_env: FuzzEnv) -> None:
    fuzz_env.ledger.stop_background()
    fuzz_env.ledger.write(50)
    fuzz_env.broker.kill(signal.SIGKILL)
    fuzz_env.broker.start()
    _assert_intact(fuzz_env, "after SIGKILL and start")

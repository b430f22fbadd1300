"""One live broker for the whole fuzz suite, with real clients' data on it.

The suite runs in file order: corrupt batches (test_fuzz_corrupt_batches), mutated
recorded frames (test_fuzz_frames), the parser self-test (test_fuzz_oracles), then the
end checks and restarts (test_fuzz_restart). Throughout, a confluent-kafka idempotent
producer keeps writing to `fuzz-acked`; every record it had acknowledged must still read
back at the end and after each restart. Any module also runs alone: the fixture sets
everything up itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.broker_process import BrokerProcess
from support.fuzz_target import FuzzEnv, setup_env, teardown_env


@pytest.fixture(scope="session")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzEnv]:
    broker = BrokerProcess(tmp_path_factory.mktemp("fuzz") / "data").start()
    print(f"\nfuzz broker log: {broker.log_path}")
    env = setup_env(broker)
    yield env
    teardown_env(env)

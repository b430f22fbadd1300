"""Word count as an instance the rebalancing tests run as a child process (to SIGKILL it):
`examples/streams/word_count.py`'s topology with the rebalancing settings as flags."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples" / "streams"))

import word_count  # noqa: E402

from strom.streams.runtime.app import StreamsApp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--bootstrap-servers", "--application-id", "--input", "--output",
                 "--state-dir"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--guarantee", default="at_least_once")
    parser.add_argument("--application-server", default=None)
    parser.add_argument("--standbys", type=int, default=0)
    parser.add_argument("--acceptable-recovery-lag", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    StreamsApp(word_count.build(args.input, args.output), args.application_id,
               args.bootstrap_servers, state_dir=args.state_dir, commit_interval_ms=200,
               processing_guarantee=args.guarantee, application_server=args.application_server,
               num_standby_replicas=args.standbys,
               acceptable_recovery_lag=args.acceptable_recovery_lag,
               num_stream_threads=args.threads,
               consumer_properties={"session.timeout.ms": 6000}).run()


if __name__ == "__main__":
    main()

"""Word count, as Kafka's WordCountDemo: lines in, `word -> count` out.

The output key is the word (a string) and the value the count as a decimal string, so
any console consumer shows it. The count is kept in a RocksDB store (`counts-store`)
logged to `<application-id>-counts-store-changelog`; the words are repartitioned
through `<application-id>-counts-store-repartition`.

    python examples/streams/word_count.py --bootstrap-servers localhost:9092 \\
        --application-id wordcount --input lines --output counts
"""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from strom.streams import Grouped, Materialized, Serdes, StreamsBuilder
from strom.streams.runtime.app import StreamsApp

WORD = re.compile(r"\W+")


def build(input_topic: str, output_topic: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    (builder.stream(input_topic, key_serde=Serdes.String, value_serde=Serdes.String)
     .flat_map_values(lambda line: [w for w in WORD.split(line.lower()) if w])
     .group_by(lambda _, word: word, Grouped(key_serde=Serdes.String, value_serde=Serdes.String))
     .count(Materialized.as_("counts-store"))
     .to_stream()
     .map_values(str)
     .to(output_topic, Serdes.String, Serdes.String))
    return builder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--application-id", default="streams-wordcount")
    parser.add_argument("--input", default="streams-plaintext-input")
    parser.add_argument("--output", default="streams-wordcount-output")
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--commit-interval-ms", type=int, default=None,
                        help="default: 30000, or 100 under exactly-once")
    parser.add_argument("--processing-guarantee", default="at_least_once",
                        choices=["at_least_once", "exactly_once_v2"])
    parser.add_argument("--consumer-property", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka property of the group consumer (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings: dict[str, Any] = {"commit_interval_ms": args.commit_interval_ms,
                                "processing_guarantee": args.processing_guarantee}
    if args.state_dir:
        settings["state_dir"] = args.state_dir
    settings["consumer_properties"] = dict(p.split("=", 1) for p in args.consumer_property)
    StreamsApp(build(args.input, args.output), args.application_id, args.bootstrap_servers,
               **settings).run()


if __name__ == "__main__":
    main()

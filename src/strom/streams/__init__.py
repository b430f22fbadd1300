"""Strom Streams: Kafka Streams' processing model in Python (see docs/streams.md)."""

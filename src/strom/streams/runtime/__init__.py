"""Running a topology on a Kafka-compatible cluster: `StreamsApp` (Kafka's KafkaStreams)
with its `StreamsConfig`; `reset_application` makes an application start over."""

from strom.streams.runtime.app import State, StreamsApp
from strom.streams.runtime.config import AT_LEAST_ONCE, EXACTLY_ONCE_V2, StreamsConfig
from strom.streams.runtime.reset import reset_application

__all__ = ["AT_LEAST_ONCE", "EXACTLY_ONCE_V2", "State", "StreamsApp", "StreamsConfig",
           "reset_application"]

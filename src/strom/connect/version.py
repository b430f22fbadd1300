"""The version Strom Connect reports: its own, and the Kafka Connect REST API it speaks."""

VERSION = "0.1.0"
#: `GET /` answers `version` with the Kafka release whose REST API this one follows.
KAFKA_API_VERSION = "4.4.0"

"""Running a topology on a Kafka-compatible cluster: `StreamsApp`."""

"""Kafka's single message transforms and predicates, and the `transforms` chain config."""

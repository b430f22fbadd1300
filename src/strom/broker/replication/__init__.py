"""Partitions hosted here, their roles, and replication between brokers."""

"""The classic consumer-group coordinator, persisted in `__consumer_offsets`."""

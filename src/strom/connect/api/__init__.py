"""What a connector author sees: connectors, tasks, records, configuration, errors.
Nothing here imports the runtime (as in Kafka's connect-api)."""

"""State stores: key-value, window and session stores, in memory or on RocksDB, logged to
changelog topics in Kafka Streams' formats. `Stores` makes their builders."""

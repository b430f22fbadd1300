"""The worker: connectors and tasks on threads, offsets, error handling, the standalone herder."""

"""Built-in connectors: FileStream source/sink and the order generator."""

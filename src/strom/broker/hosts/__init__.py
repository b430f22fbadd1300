"""Coordinators hosted in the broker on the internal-topic partitions led here."""

"""Coordinators whose state is a fold over an internal topic partition."""

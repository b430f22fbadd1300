"""Metrics and the HTTP admin port (/metrics, /healthz, /readyz)."""

"""Distributed mode (in progress): the Connect group protocol's formats so far; the group
member, assignor, topic-backed stores and herder come next (docs/connect.md)."""

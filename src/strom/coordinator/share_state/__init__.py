"""The share coordinator (KIP-932): share-partition state as a fold over `__share_group_state`."""

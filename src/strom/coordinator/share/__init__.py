"""Share groups (KIP-932): membership on the group coordinator's shard."""

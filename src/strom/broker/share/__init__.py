"""Share-partitions and share sessions on the partitions' leader (KIP-932)."""

"""Client connections: framing in, requests dispatched in order, limits."""

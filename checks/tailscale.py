"""The ``tailscale`` layer (being built)."""

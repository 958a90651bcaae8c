"""The ``kubernetes`` layer (being built)."""

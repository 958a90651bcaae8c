"""The ``guildnet`` layer (being built)."""

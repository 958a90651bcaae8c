"""The ``rethinkdb`` layer (being built)."""

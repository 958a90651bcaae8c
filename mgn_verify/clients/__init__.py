"""Typed clients for the GuildNet components: the Host App, Kubernetes, RethinkDB, tailscaled's
LocalAPI and Headscale. The layers' checks and the lifecycle commands share them.

Each module imports its heavy library (``kubernetes``, ``rethinkdb``, ``httpx``) only when a
client is created, so ``mgn verify system`` never pays for them.
"""

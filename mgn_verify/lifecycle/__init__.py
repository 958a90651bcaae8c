"""The lifecycle commands' machinery: act on GuildNet only after a preflight gate passed.

- :mod:`.context`   one command's configuration, loaded once (config file, ``--set``)
- :mod:`.preflight` run a named gate for a target cluster, decide, audit overrides
- :mod:`.output`    data printed as a table, JSON or YAML (``-o``)
- :mod:`.exits`     the lifecycle commands' exit codes

The commands themselves live in :mod:`mgn_verify.cli` (``cluster_cmd``, ``workspace_cmd``,
``install_cmd``, ``federation_cmd``, ``gate_cmd``); nothing here is imported by ``mgn verify``.
"""

"""The GuildNet lab: protocol-faithful simulators of everything ``mgn verify`` talks to.

``Lab`` starts a Kubernetes API server, the GuildNet Host App, RethinkDB, tailscaled's LocalAPI
and Headscale on loopback, and writes an mgn config file pointing at them::

    from mgn_verify.lab import Lab

    with Lab(faults=["tailscale.needs_login"]) as lab:
        print(lab.config_path)

Importing this package starts nothing and imports no client library (kubernetes, rethinkdb):
the simulators are imported when a ``Lab`` is created. See ``mgn_verify.lab.pytest_plugin`` for
the pytest fixtures and ``mgn_verify.lab.cli`` for ``mgn lab up|down|status``.
"""

from __future__ import annotations

from mgn_verify.lab._faults import FaultSet, UnknownFaultError
from mgn_verify.lab._lab import CONFIG_FILENAME, Lab, known_faults

__all__ = ["CONFIG_FILENAME", "FaultSet", "Lab", "UnknownFaultError", "known_faults"]

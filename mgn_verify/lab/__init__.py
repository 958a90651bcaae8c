"""The GuildNet lab: protocol-faithful simulators of everything ``mgn verify`` talks to.

``Lab`` starts a Kubernetes API server, the GuildNet Host App, RethinkDB, tailscaled's LocalAPI
and Headscale on loopback, and writes an mgn config file pointing at them::

    from mgn_verify.lab import Lab

    with Lab(faults=["tailscale.needs_login"]) as lab:
        print(lab.config_path)

Importing this package starts nothing and imports nothing: its public names are imported when
first used (PEP 562), since pytest imports ``mgn_verify.lab.pytest_plugin`` (and so this package)
into every pytest run once mgn-verify is installed. See ``mgn_verify.lab.pytest_plugin`` for the
pytest fixtures and ``mgn_verify.lab.cli`` for ``mgn lab up|down|status``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mgn_verify.lab._faults import FaultSet, UnknownFaultError
    from mgn_verify.lab._lab import CONFIG_FILENAME, Lab, known_faults

__all__ = ["CONFIG_FILENAME", "FaultSet", "Lab", "UnknownFaultError", "known_faults"]

#: Public name -> the submodule defining it.
_HOMES = {"CONFIG_FILENAME": "_lab", "FaultSet": "_faults", "Lab": "_lab", "UnknownFaultError": "_faults",
          "known_faults": "_lab"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""One lifecycle command's configuration: the same sources as ``mgn verify`` (defaults < file <
``MGN_*`` < ``--set``), loaded once per selection and shared by its preflight and its clients.

::

    ctx = CommandContext(config_path, overrides, argv=sys.argv)
    with ctx.hostapp() as api:
        ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mgn_verify._loaded import LoadedSession
    from mgn_verify.clients.hostapp import HostAppClient
    from mgn_verify.config import Config

__all__ = ["CommandContext"]

#: What the settings alone are loaded with. An empty selection means every layer to the
#: plugins: the per-cluster ones would ask the Host App for its clusters (a request, and a third
#: of a second) just to print a workspace. The system layer registers its checks contacting nothing.
_SETTINGS_ONLY = ("system",)


class CommandContext:
    """``config_path`` and ``settings`` as ``mgn verify`` takes them (``settings``: what
    ``cli._options.parse_overrides`` returns, ``{key: (value, from_text)}``)."""

    def __init__(self, config_path: str | None, settings: Mapping[str, tuple[Any, bool]], *,
                 argv: Sequence[str], warn: Any = None) -> None:
        self.config_path = config_path
        self.settings = dict(settings)
        self.argv = list(argv)
        self._warn = warn
        self._loaded: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], LoadedSession] = {}

    def load(self, selection: Sequence[str] = (), extra: Mapping[str, tuple[Any, bool]] | None = None
             ) -> LoadedSession:
        """Plugins, settings and checks for ``selection`` (layer names; () for none), with
        ``extra`` settings on top of the command line's; cached per (selection, extra)."""
        from mgn_verify._session import Session
        from mgn_verify.cli._options import warn

        settings = {**self.settings, **(extra or {})}
        key = (tuple(selection), tuple(sorted((k, repr(v)) for k, v in (extra or {}).items())))
        if key not in self._loaded:
            session = Session(os.environ, self._warn or warn)
            self._loaded[key] = session.load(plugins=[], checks_dirs=[], config_path=self.config_path,
                                             settings=settings, selection=list(selection))
        return self._loaded[key]

    @property
    def config(self) -> Config:
        """The resolved settings (those of the first load, else loaded without contacting anything)."""
        if self._loaded:
            return next(iter(self._loaded.values())).config
        return self.load(_SETTINGS_ONLY).config

    def hostapp(self, **overrides: Any) -> HostAppClient:
        """A Host App client from ``api.*`` (TLS verified with ``api.ca_bundle``)."""
        from mgn_verify.clients.hostapp import HostAppClient

        return HostAppClient.from_config(self.config, **overrides)

    def default_cluster(self) -> str:
        """``defaults.cluster``, else the only entry of ``clusters``, else ``""``."""
        config = self.config
        name = str(config["defaults.cluster"] or "")
        if name:
            return name
        entries = config["clusters"] or []
        if len(entries) == 1:
            entry = entries[0]
            return str(entry.get("id", "") if isinstance(entry, dict) else entry)
        return ""

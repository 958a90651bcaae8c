"""What ``mgn verify`` was asked to run, and loading it: shared by a single run, ``--watch`` and
``mgn verify serve``, which load plugins and config once and then run the selection many times.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._loaded import LoadedSession, Selection
from .._report import RunOptions, RunReport
from .._session import Session
from ._options import parse_duration, split_list, warn

__all__ = ["Prepared", "RunRequest", "prepare"]


@dataclass(frozen=True)
class RunRequest:
    """The parsed command line of a run (``mgn verify``'s options, minus how it reports)."""

    layers: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    gate: str | None = None
    plugins: tuple[str, ...] = ()
    checks_dirs: tuple[str, ...] = ()
    config_path: str | None = None
    #: ``--set`` and the flags that are settings: key -> (value, value is text to convert).
    settings: dict[str, tuple[Any, bool]] = field(default_factory=dict)
    fail_fast: bool = False
    wait: str | None = None
    ignore: tuple[str, ...] = ()
    verbose: int = 0
    #: What the report says was selected (``all`` when nothing was named).
    selection: tuple[str, ...] = ("all",)
    #: What plugins are told was selected (a gate's layers for ``--gate``).
    load_selection: tuple[str, ...] = ("all",)


@dataclass
class Prepared:
    """A loaded session and the checks it will run; ``run()`` may be called again and again."""

    request: RunRequest
    session: Session
    loaded: LoadedSession
    ids: list[str]
    preset: dict[str, str]
    options: RunOptions

    def run(self, *, live: Sequence[object] = ()) -> RunReport:
        return self.loaded.run(self.ids, self.preset, self.options, ignore=split_list(self.request.ignore),
                               argv=sys.argv, live=live, selection=list(self.request.selection))


def prepare(request: RunRequest, *, config_path: str | None = None, session: Session | None = None,
            before_select: Callable[[LoadedSession], None] | None = None) -> Prepared:
    """Load plugins and config, and select the checks. Raises ``MgnVerifyError`` (one line).
    ``config_path`` overrides the request's (``--lab`` brings its own); ``before_select`` lets
    the caller check what depends on the loaded plugins (report formats) before anything else."""
    session = session or Session(os.environ, warn)
    loaded = session.load(plugins=list(request.plugins), checks_dirs=list(request.checks_dirs),
                          config_path=config_path if config_path is not None else request.config_path,
                          settings=dict(request.settings), selection=list(request.load_selection))
    if before_select is not None:
        before_select(loaded)
    ids, preset = loaded.select(Selection(list(request.layers), list(request.checks), list(request.skips),
                                          list(request.tags), request.gate))
    options = RunOptions.from_config(loaded.config, fail_fast=request.fail_fast,
                                     wait=parse_duration(request.wait) if request.wait else None)
    return Prepared(request, session, loaded, ids, preset, options)

"""The reporter seam (core): the ``Reporter`` protocol, what a reporter factory gets
(``ReporterContext``) and the registry formats are added to through ``mgn_register_reporters``.

The formats themselves (``console``, ``json``, ``junit``) are plugins in ``mgn_verify.reporters``,
loaded through entry points like any third party's; nothing here imports them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from ._exceptions import UsageError
from ._text import did_you_mean

if TYPE_CHECKING:
    from ._report import RunReport
    from .config import Config

__all__ = ["Reporter", "ReporterContext", "ReporterFactory", "ReporterRegistry", "builtin_reporters"]


class Reporter(Protocol):
    def render(self, report: RunReport) -> str: ...


@dataclass(frozen=True, slots=True)
class ReporterContext:
    """What a reporter factory gets: where its text goes and how that stream behaves."""

    config: Config
    stream: TextIO | None     # the stream when writing to stdout, else None (a file)
    is_tty: bool
    color: bool
    verbose: int = 0


ReporterFactory = Callable[[ReporterContext], Reporter]


class ReporterRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, tuple[ReporterFactory, str]] = {}

    def add(self, name: str, factory: ReporterFactory, help: str = "") -> None:
        if name in self._factories:
            raise ValueError(f"reporter {name!r} registered twice")
        self._factories[name] = (factory, help)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, context: ReporterContext) -> Reporter:
        self.check(name)
        return self._factories[name][0](context)

    def check(self, name: str) -> None:
        """Raise ``UsageError`` (with a suggestion) unless a reporter called ``name`` exists."""
        if name not in self._factories:
            known = ", ".join(self.names()) or "none (all reporter plugins blocked)"
            raise UsageError(f"unknown report format {name!r}{did_you_mean(name, self.names())}; available: {known}")


#: The reporter plugins this distribution ships (entry point name → module), for when the
#: package metadata is unavailable (a source checkout that was never installed).
_BUILTIN_REPORTERS = {"console": "mgn_verify.reporters.console", "json": "mgn_verify.reporters.json_report",
                      "junit": "mgn_verify.reporters.junit_report", "html": "mgn_verify.reporters.html_report",
                      "markdown": "mgn_verify.reporters.markdown_report"}


def builtin_reporters(blocked: Iterable[str] = ()) -> ReporterRegistry:
    """A registry with the built-in reporter plugins, registered the normal way (a plugin
    manager calling their ``mgn_register_reporters``): the reports of a run whose plugins never
    finished loading still come from the same code as every other report."""
    import importlib
    from importlib.metadata import entry_points

    import pluggy

    from . import hookspecs

    modules = dict(_BUILTIN_REPORTERS)
    modules.update({ep.name: ep.value for ep in entry_points(group="mgn_verify")
                    if ep.value.startswith("mgn_verify.reporters.")})
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, module in sorted(modules.items()):
        if name not in set(blocked):
            pm.register(importlib.import_module(module), name=name)
    registry = ReporterRegistry()
    pm.hook.mgn_register_reporters(reporters=registry)
    return registry

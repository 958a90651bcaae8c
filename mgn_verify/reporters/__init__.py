"""Reporters turn a finished ``RunReport`` into text; each format is a plugin.

A reporter never runs checks. It is created by the factory its plugin registered through
``mgn_register_reporters``; if it also implements hooks (``mgn_check_start``, ``mgn_result``),
the session registers it for the run so it can show live progress.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from .._exceptions import UsageError

if TYPE_CHECKING:
    from .._report import RunReport
    from ..config import Config

__all__ = ["Reporter", "ReporterContext", "ReporterRegistry"]


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
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(self.names()) or "none (all reporter plugins blocked)"
            raise UsageError(f"unknown report format {name!r}{hint}; available: {known}")

"""(being written by the history helper) Run history in SQLite: record_run, the store, comparing runs."""

from __future__ import annotations

from collections.abc import Callable

from .._report import RunReport
from ..config import Config

__all__ = ["record_run"]


def record_run(report: RunReport, config: Config, warn: Callable[[str], None]) -> None:
    """Record a finished run (redacted) unless ``history.enabled`` is off; never raises."""

"""Run history in SQLite: every ``mgn verify`` run's summary and results (redacted), for
``mgn verify history`` and ``mgn verify diff``; ``compare`` says what changed between two runs.

Importing this package is cheap: ``sqlite3`` is imported only when a run is recorded or read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._report import RunReport
    from ..config import Config

__all__ = ["history_path", "one_line", "record_run"]

DEFAULT_PATH = "~/.metaguildnet/history.db"


def history_path(config: Mapping[str, Any]) -> Path:
    """``history.path``, with ``~`` expanded (relative: to the current directory)."""
    return Path(str(config.get("history.path") or DEFAULT_PATH)).expanduser()


def record_run(report: RunReport, config: Config, warn: Callable[[str], None]) -> None:
    """Record a finished run (redacted) unless ``history.enabled`` is off; never raises: a
    database that is corrupt, locked for too long or unwritable is one warning through ``warn``."""
    if not config.get("history.enabled", True):
        return
    path = history_path(config)
    try:
        from .store import record

        record(path, report, config.redactor.text, keep=int(config.get("history.keep", 500)))
    except Exception as exc:  # whatever went wrong, the run's outcome stands
        warn(config.redactor.text(f"history not recorded: {one_line(exc)} ({path})"))


def one_line(exc: BaseException) -> str:
    """An exception as the text of a one-line message (an OSError without its errno prefix)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror[:1].lower() + exc.strerror[1:]
        return f"{text}: {exc.filename}" if exc.filename else text
    return " ".join(str(exc).split()) or type(exc).__name__

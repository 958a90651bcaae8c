"""The exit-code contract, shared by the CLI, the reports and the docs."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ._model import Result, Severity, Status

__all__ = ["ExitCode", "exit_code_for"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE_ERROR = 2
    CHECK_ERRORS = 3
    WARNINGS = 4
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "nothing failed or errored (warnings allowed)",
    ExitCode.FAILED: "at least one check failed",
    ExitCode.USAGE_ERROR: "usage, configuration, plugin or report-writing error",
    ExitCode.CHECK_ERRORS: "no check failed, but at least one could not verify (error)",
    ExitCode.WARNINGS: "only warnings, and --strict was given",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


def exit_code_for(results: Iterable[Result], *, strict: bool = False, interrupted: bool = False) -> ExitCode:
    """``fail`` dominates ``error``, which dominates warnings; info-severity warnings never count."""
    if interrupted:
        return ExitCode.INTERRUPTED
    statuses = {r.status for r in results if not (r.status is Status.WARN and r.severity is Severity.INFO)}
    if Status.FAIL in statuses:
        return ExitCode.FAILED
    if Status.ERROR in statuses:
        return ExitCode.CHECK_ERRORS
    if strict and Status.WARN in statuses:
        return ExitCode.WARNINGS
    return ExitCode.OK

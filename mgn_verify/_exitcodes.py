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
    ExitCode.USAGE_ERROR: "usage, configuration, plugin or report-writing error, or a framework error "
                          "during the run (summary.errors)",
    ExitCode.CHECK_ERRORS: "no check failed, but at least one could not verify (error)",
    ExitCode.WARNINGS: "only warnings, and --strict was given",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


def exit_code_for(results: Iterable[Result], *, strict: bool = False, interrupted: bool = False,
                  framework_errors: bool = False) -> ExitCode:
    """An interruption dominates; then a framework error (``summary.errors``: the report may
    be incomplete or the environment left dirty, so a run with one never exits 0); then
    ``fail``, ``error`` and warnings. Info-severity warnings never count."""
    if interrupted:
        return ExitCode.INTERRUPTED
    if framework_errors:
        return ExitCode.USAGE_ERROR
    statuses = {r.status for r in results if not (r.status is Status.WARN and r.severity is Severity.INFO)}
    if Status.FAIL in statuses:
        return ExitCode.FAILED
    if Status.ERROR in statuses:
        return ExitCode.CHECK_ERRORS
    if strict and Status.WARN in statuses:
        return ExitCode.WARNINGS
    return ExitCode.OK

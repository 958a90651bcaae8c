"""The exit codes of the lifecycle commands (``mgn install``, ``mgn cluster``, ``mgn workspace``,
``mgn federation``): ``mgn verify``'s codes where the meaning is the same, plus one for an
operation that the Host App or the Kubernetes API refused or could not carry out."""

from __future__ import annotations

import enum

__all__ = ["LifecycleExit", "exit_codes_help"]


class LifecycleExit(enum.IntEnum):
    OK = 0
    #: Refused by its preflight gate (a check failed), or the outcome is negative: a wait timed
    #: out, an HTTP check got another status, a federation left a cluster undeployed.
    FAILED = 1
    USAGE_ERROR = 2
    #: Refused: the preflight could not verify (a check errored, none failed).
    CHECK_ERRORS = 3
    #: The operation itself failed: the Host App or the Kubernetes API answered with an error
    #: or could not be reached while acting.
    OPERATION_FAILED = 5
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    LifecycleExit.OK: "done (or, with --dry-run, the preflight passed)",
    LifecycleExit.FAILED: "refused by the preflight gate (a check failed), or the outcome is negative "
                          "(wait timed out, HTTP check failed, a federation cluster failed)",
    LifecycleExit.USAGE_ERROR: "usage, configuration or plugin error",
    LifecycleExit.CHECK_ERRORS: "refused: the preflight could not verify (a check errored)",
    LifecycleExit.OPERATION_FAILED: "the Host App or the Kubernetes API refused the operation or could not be "
                                    "reached",
    LifecycleExit.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM)",
}


def exit_codes_help() -> str:
    """The exit-code table for a command's ``--help`` epilog."""
    return "\b\nExit codes:\n" + "\n".join(f"  {int(c):>3}  {c.meaning}" for c in LifecycleExit)

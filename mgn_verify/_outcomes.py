"""Outcome signals raised from inside a check body.

``skip(reason)`` and ``warn(message)`` end a check early with that outcome. They derive from
``BaseException`` (as pytest's outcomes do) so that a check's own ``except Exception`` cannot
swallow them by accident. They are not errors of the framework: those live in ``_exceptions``.
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["OutcomeSignal", "Skipped", "Warned", "skip", "warn"]


class OutcomeSignal(BaseException):
    """Base of the signals a check raises to choose its own outcome."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Skipped(OutcomeSignal):
    """The check does not apply here (status ``skip``)."""


class Warned(OutcomeSignal):
    """The check found something below failure level (status ``warn``)."""


def skip(reason: str) -> NoReturn:
    """End the check as not applicable, with ``reason``. Dependents are skipped too."""
    raise Skipped(reason)


def warn(message: str) -> NoReturn:
    """End the check with a finding below failure level (status ``warn``)."""
    raise Warned(message)

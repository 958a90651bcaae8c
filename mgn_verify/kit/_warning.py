"""The warning categories of ``pytest --mgn-verify``."""

from __future__ import annotations

__all__ = ["MgnCheckWarning", "MgnRunWarning"]


class MgnCheckWarning(UserWarning):
    """A check ended ``warn``: the item passes and pytest lists this in its warnings summary
    (``-W error::mgn_verify.testing.MgnCheckWarning`` makes warnings fail the run)."""


class MgnRunWarning(UserWarning):
    """A warning of the mgn run itself (a waiver matching no check, a broken hook), not of one
    check: issued once the session ends, in pytest's warnings summary. An ``error`` filter on it
    (``-W error``) fails the session, not an item."""

"""The warning category a ``warn`` result becomes under ``pytest --mgn-verify``."""

from __future__ import annotations

__all__ = ["MgnCheckWarning"]


class MgnCheckWarning(UserWarning):
    """A check ended ``warn``: the item passes and pytest lists this in its warnings summary
    (``-W error::mgn_verify.testing.MgnCheckWarning`` makes warnings fail the run)."""

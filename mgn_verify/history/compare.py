"""Comparing two runs check by check: shared by ``mgn verify diff``, ``--watch``, serve and viz.

Kept free of sqlite3 and of the run machinery, so anything may import it cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .._report import RunReport

__all__ = ["Change", "ChangeKind", "CheckState", "changes", "states"]

ChangeKind = Literal["changed", "new", "removed"]


@dataclass(frozen=True, slots=True)
class CheckState:
    """One check's outcome in one run: its status (``pass``, ``fail``, ...) and message."""

    status: str
    message: str


@dataclass(frozen=True, slots=True)
class Change:
    """A check whose status differs between two runs, or that exists in only one of them."""

    id: str
    before: CheckState | None
    after: CheckState | None

    @property
    def kind(self) -> ChangeKind:
        if self.before is None:
            return "new"
        if self.after is None:
            return "removed"
        return "changed"


def changes(before: Mapping[str, CheckState], after: Mapping[str, CheckState]) -> list[Change]:
    """Ids whose status differs (a new message alone is no change) and new ones, in the order of
    ``after``; then the removed ones, in the order of ``before``."""
    out: list[Change] = []
    for check_id, now in after.items():
        then = before.get(check_id)
        if then is None or then.status != now.status:
            out.append(Change(check_id, then, now))
    out.extend(Change(check_id, then, None) for check_id, then in before.items() if check_id not in after)
    return out


def states(report: RunReport) -> dict[str, CheckState]:
    """Each result of a (redacted) report by id, in report order. The ids are the report's own:
    a parametrized id may have carried a secret, which the report's redaction already masked."""
    return {r.id: CheckState(str(r.status), r.message) for r in report.results}

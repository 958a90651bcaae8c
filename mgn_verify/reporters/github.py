"""(being written) GitHub Actions workflow commands (::error/::warning) for failures and warnings."""

from __future__ import annotations

from typing import TextIO

from .._report import RunReport

__all__ = ["print_annotations"]


def print_annotations(report: RunReport, stream: TextIO | None) -> None:
    """One workflow command per failed/errored/warned check, after the report."""

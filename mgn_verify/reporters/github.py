"""GitHub Actions workflow commands (``--github-annotations``) for failures and warnings.

One command per check that needs attention, after the reports: ``::error`` for ``fail`` and
``error`` (root causes first, most blocking first: GitHub shows only the first 10 of a kind per
step), ``::warning`` for ``warn``, ``::notice`` for a waived failure and an ``info``-severity
warning; ``::error title=mgn verify`` for each framework error (``summary.errors``). The title is
the check id; the message is the check's message, what it blocks and its remediation. Text is
escaped as the runner expects (``%``, CR, LF; in properties also ``:`` and ``,``), so a message
can never end the command or start another. The report is already redacted (``emit`` runs first).

Where they go is the caller's choice (``cli/verify.py``): stdout after the console report, or
stderr when stdout carries a machine-readable report; the runner reads both.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

from .._model import Result, Severity, Status
from .._report import RunReport

__all__ = ["escape_data", "escape_property", "print_annotations", "workflow_commands"]

#: Characters of one annotation's message (GitHub truncates long ones itself; the reports have all).
MESSAGE_LIMIT = 2000
#: Ids a root cause lists as blocked before "and N more".
BLOCKS_SHOWN = 10


def escape_data(text: str) -> str:
    """The message part of a workflow command (after ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (``title=...``): as data, plus the separators ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def print_annotations(report: RunReport, stream: TextIO | None) -> None:
    """One workflow command per failed/errored/warned/waived check and per framework error."""
    stream = stream or sys.stdout
    try:
        for line in workflow_commands(report):
            stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):  # a closed pipe: the reports, already written, say it all
        pass


def workflow_commands(report: RunReport) -> Iterator[str]:
    """The workflow commands, one a line (without the newline)."""
    blocks = {result.id: blocked for result, blocked in report.root_causes()}
    order = {cid: n for n, cid in enumerate(blocks)}  # root causes first, most blocking first
    loud = sorted((r for r in report.results if r.status in (Status.FAIL, Status.ERROR)),
                  key=lambda r: order.get(r.id, len(order)))
    for result in loud:
        yield _command("error", result, blocks.get(result.id, []))
    for result in report.results:
        if result.status is Status.WARN:
            yield _command("notice" if result.severity is Severity.INFO else "warning", result, [])
    for result in report.results:
        if result.status is Status.WAIVED:
            yield _command("notice", result, [])
    for error in report.errors:
        yield f"::error title={escape_property('mgn verify')}::{escape_data(_cap(error))}"


def _command(level: str, result: Result, blocked: list[str]) -> str:
    return f"::{level} title={escape_property(result.id)}::{escape_data(_cap(_message(result, blocked)))}"


def _message(result: Result, blocked: list[str]) -> str:
    lines = [result.message.strip() or str(result.status)]
    if result.status is Status.ERROR:
        lines[0] = f"could not verify: {lines[0]}"
    if blocked:
        more = f" and {len(blocked) - BLOCKS_SHOWN} more" if len(blocked) > BLOCKS_SHOWN else ""
        lines.append(f"blocks {len(blocked)}: {', '.join(blocked[:BLOCKS_SHOWN])}{more}")
    if result.remediation.strip():
        lines.append(f"fix: {result.remediation.strip()}")
    return "\n".join(lines)


def _cap(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT].rstrip() + "…"

"""The ``markdown`` reporter: a CI job summary (GitHub-flavoured Markdown).

A verdict heading, the counts, framework errors, the root causes (what each blocks, how to fix
it), then one table per layer (check, status, message, duration). Every text from a check is
escaped so it shows literally — ``|`` cannot split a cell, a backtick cannot open code, ``<``
cannot open HTML, a newline becomes ``<br>`` — and capped, so one chatty check cannot push the
summary past GitHub's 1 MiB per step. Written to ``$GITHUB_STEP_SUMMARY``, it is appended (see
``cli._emit.resolve_outputs``).
"""

from __future__ import annotations

import re

from .._exitcodes import ExitCode
from .._model import Result, Severity, Status, layer_sort_key
from .._report import RunReport
from .._reporting import ReporterContext, ReporterRegistry
from .._text import escape_controls
from ..hookspecs import hookimpl

__all__ = ["MarkdownReporter", "escape"]

#: Characters of a check's text that Markdown would read as syntax: shown literally instead.
_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_NEWLINES = re.compile(r"\r\n|\r|\n")
#: Characters of one text shown (message, remediation); the JSON report has all of it.
TEXT_LIMIT = 500
#: Ids a root cause lists as blocked before "and N more".
BLOCKS_SHOWN = 10

_VERDICT = {
    ExitCode.OK: "passed", ExitCode.FAILED: "failed", ExitCode.USAGE_ERROR: "error",
    ExitCode.CHECK_ERRORS: "could not verify", ExitCode.WARNINGS: "warnings", ExitCode.INTERRUPTED: "interrupted",
}
#: Statuses that need attention stand out in the tables.
_LOUD = (Status.FAIL, Status.ERROR)
#: Statuses whose remediation the tables show (as the console does).
_FIXABLE = (Status.FAIL, Status.ERROR, Status.WARN, Status.WAIVED)


def escape(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` as literal inline Markdown, safe in a table cell: capped at ``limit``
    characters, control characters as ``\\xNN``, line breaks as ``<br>``."""
    text = text.strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    lines = (escape_controls(line, keep_tab=True) for line in _NEWLINES.split(text))
    return "<br>".join(_escape_line(line) for line in lines)


def _escape_line(line: str) -> str:
    line = "".join(_ENTITIES.get(char, char) for char in line)
    return _PUNCTUATION.sub(r"\\\1", line)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class MarkdownReporter:
    def __init__(self, context: ReporterContext) -> None:
        self._context = context

    def render(self, report: RunReport) -> str:
        lines = [*_verdict(report)]
        lines += _errors(report)
        lines += _root_causes(report)
        layers: dict[str, list[Result]] = {}
        for result in report.results:
            layers.setdefault(result.layer, []).append(result)
        for layer in sorted(layers, key=layer_sort_key):
            lines += _layer_table(layer, layers[layer])
        return "\n".join(lines).rstrip("\n") + "\n"  # no trailing blank line: appends stay tidy


def _verdict(report: RunReport) -> list[str]:
    code = report.exit_code
    counts = report.counts()
    parts = [f"{counts[str(s)]} {s}" for s in Status if counts[str(s)] or s in (Status.PASS, Status.FAIL)]
    total = len(report.results)
    tally = (f"{total} check{'' if total == 1 else 's'} in {_duration(report.duration_s)}: " + ", ".join(parts)
             if total else "No checks ran.")
    meaning = code.meaning[:1].upper() + code.meaning[1:]
    return [f"## mgn verify: {_VERDICT.get(code, str(int(code)))} (exit {int(code)})", "",
            f"{meaning}. {tally}", ""]


def _errors(report: RunReport) -> list[str]:
    if not report.errors:
        return []
    return ["### Errors", "", *(f"- {escape(error)}" for error in report.errors), ""]


def _root_causes(report: RunReport) -> list[str]:
    causes = report.root_causes()
    if not causes:
        return []
    lines = ["### Root causes", ""]
    for result, blocked in causes:
        message = f": {escape(result.message)}" if result.message.strip() else ""
        lines.append(f"- **{escape(result.id)}** ({result.status}){message}")
        if blocked:
            shown = ", ".join(escape(cid, limit=200) for cid in blocked[:BLOCKS_SHOWN])
            more = f" and {len(blocked) - BLOCKS_SHOWN} more" if len(blocked) > BLOCKS_SHOWN else ""
            lines.append(f"  - blocks {len(blocked)}: {shown}{more}")
        if result.remediation.strip():
            lines.append(f"  - fix: {escape(result.remediation)}")
    return [*lines, ""]


def _layer_table(layer: str, results: list[Result]) -> list[str]:
    lines = [f"### {escape(layer)}", "", "| Check | Status | Message | Duration |", "| --- | --- | --- | --- |"]
    for result in results:
        duration = _duration(result.duration_s) if result.attempts else ""  # never run: no duration
        lines.append(f"| {escape(result.id)} | {_status(result)} | {_message(result)} | {duration} |")
    return [*lines, ""]


def _status(result: Result) -> str:
    status = str(result.status)
    if result.status is Status.WARN and result.severity is Severity.INFO:
        status += " (info)"
    return f"**{status}**" if result.status in _LOUD else status


def _message(result: Result) -> str:
    parts = [escape(result.message)] if result.message.strip() else []
    if result.remediation.strip() and result.status in _FIXABLE:
        parts.append("fix: " + escape(result.remediation))
    return "<br>".join(parts)


@hookimpl
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    reporters.add("markdown", MarkdownReporter, help="Markdown summary (tables per layer), for CI job summaries")

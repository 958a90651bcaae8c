"""The ``console`` reporter: live progress on a terminal, then a doctor-style report.

One line per check grouped by layer (glyph, id, title, duration); details only for results
that did not pass; a summary with the counts, the root causes first, and the exit code's
meaning. Without a terminal, or with ``NO_COLOR``, the same text comes without colour.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .._model import CheckSpec, Result, Status, layer_sort_key
from .._report import RunPlan, RunReport
from .._reporting import ReporterContext, ReporterRegistry
from .._text import escape_controls
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from rich.live import Live

__all__ = ["ConsoleReporter"]

_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "magenta": "35", "cyan": "36"}
_STYLE = {
    Status.PASS: ("✓", "[ok]", "green"), Status.WARN: ("!", "[warn]", "yellow"),
    Status.FAIL: ("✗", "[FAIL]", "bold red"), Status.ERROR: ("E", "[ERROR]", "bold magenta"),
    Status.SKIP: ("-", "[skip]", "dim"), Status.BLOCKED: ("⊘", "[blocked]", "red"),
    Status.WAIVED: ("~", "[waived]", "cyan"),
}


#: Captured output shown under a check that did not pass (the reports carry all of it).
_OUTPUT_LINES = 20
_OUTPUT_WIDTH = 400


def _line(text: str) -> str:
    """One line of a check's text as the terminal will show it: control characters escaped."""
    return escape_controls(text)


def _lines(text: str) -> list[str]:
    """A multi-line text, line by line, control characters escaped (tabs kept)."""
    return [escape_controls(line, keep_tab=True) for line in text.splitlines()]


def _output_lines(output: str) -> list[str]:
    lines = _lines(output.rstrip())
    shown = [line if len(line) <= _OUTPUT_WIDTH else line[:_OUTPUT_WIDTH] + "…" for line in lines[-_OUTPUT_LINES:]]
    hidden = len(lines) - len(shown)
    return ([f"… ({hidden} earlier lines in the JSON report)"] if hidden else []) + shown


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class ConsoleReporter:
    def __init__(self, context: ReporterContext) -> None:
        self._context = context
        stream = context.stream
        encoding = (getattr(stream, "encoding", None) or "utf-8") if stream else "utf-8"
        self._unicode = "utf" in encoding.lower()
        self._live: Live | None = None
        self._running: dict[str, float] = {}
        self._done = 0
        self._total = 0
        self._lock = threading.Lock()

    # -- live progress (registered as a plugin only when writing to a terminal) ---------------

    @hookimpl
    def mgn_run_start(self, plan: RunPlan) -> None:
        if not (self._context.is_tty and self._context.stream):
            return
        from rich.console import Console
        from rich.live import Live

        self._total = plan.total
        console = Console(file=self._context.stream, no_color=not self._context.color, highlight=False)
        self._live = Live(get_renderable=self._progress, console=console, transient=True,
                          refresh_per_second=8)
        self._live.start()

    @hookimpl
    def mgn_check_start(self, spec: CheckSpec) -> None:
        with self._lock:
            self._running[spec.id] = time.monotonic()

    @hookimpl
    def mgn_result(self, result: Result) -> None:
        with self._lock:
            self._running.pop(result.id, None)
            self._done += 1

    @hookimpl
    def mgn_run_finish(self, report: RunReport) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _progress(self) -> Any:
        from rich.text import Text

        with self._lock:
            running = sorted(self._running.items(), key=lambda item: item[1])
            done = self._done
        now = time.monotonic()
        text = self._context.config.redactor.text
        shown = ", ".join(f"{_line(text(cid))} ({now - t:.1f} s)" for cid, t in running[:3])
        more = f" +{len(running) - 3} more" if len(running) > 3 else ""
        return Text(f"[{done}/{self._total}] running: {shown}{more}" if running else f"[{done}/{self._total}]")

    # -- the final report (plain text plus ANSI styles: no rich import on the common path) ------

    def _paint(self, text: str, style: str) -> str:
        if not self._context.color or not style:
            return text
        codes = ";".join(_ANSI[word] for word in style.split())
        return f"\x1b[{codes}m{text}\x1b[0m"

    def render(self, report: RunReport) -> str:
        lines: list[str] = []
        self._write_results(lines, report)
        self._write_summary(lines, report)
        return "\n".join(lines) + "\n"

    def _glyph(self, status: Status) -> str:
        glyph, ascii_glyph, style = _STYLE[status]
        return self._paint(glyph if self._unicode else ascii_glyph, style)

    def _write_results(self, out: list[str], report: RunReport) -> None:
        layers: dict[str, list[Result]] = {}
        for result in report.results:
            layers.setdefault(result.layer, []).append(result)
        ids = {r.id: _line(r.id) for r in report.results}
        titles = {r.id: "" if r.title == r.id else _line(r.title) for r in report.results}
        width = max((len(shown) for shown in ids.values()), default=10)
        title_width = max((len(title) for title in titles.values()), default=0)
        for layer in sorted(layers, key=layer_sort_key):
            out.append(self._paint(layer, "bold"))
            for r in layers[layer]:
                duration = _duration(r.duration_s) if r.attempts else ""
                tries = f" ({r.attempts} attempts)" if r.attempts > 1 else ""
                out.append(f"  {self._glyph(r.status)} {ids[r.id].ljust(width)}  {titles[r.id].ljust(title_width)}  "
                           f"{self._paint(duration + tries, 'dim')}".rstrip())
                if r.status is not Status.PASS or (self._context.verbose and r.message):
                    self._write_details(out, r)

    def _write_details(self, out: list[str], r: Result) -> None:
        out.extend(f"      {line}" for line in _lines(r.message))
        if r.remediation and r.status in (Status.FAIL, Status.WARN, Status.ERROR, Status.WAIVED):
            out.append(f"      {self._paint('fix:', 'cyan')} {_line(r.remediation)}")
        if r.output.strip() and r.status is not Status.PASS:
            out.append(f"      {self._paint('output:', 'dim')}")
            out.extend(f"        {line}" for line in _output_lines(r.output))

    def _write_summary(self, out: list[str], report: RunReport) -> None:
        counts = report.counts()
        parts = [f"{counts[str(s)]} {s}" for s in Status if counts[str(s)] or s in (Status.PASS, Status.FAIL)]
        out.append("")
        total = len(report.results)
        out.append(f"{self._paint('Summary:', 'bold')} {total} check{'' if total == 1 else 's'} in "
                   f"{_duration(report.duration_s)}: " + ", ".join(parts))
        causes = report.root_causes()
        if causes:
            out.append(self._paint("Root causes", "bold") + " (fix these first):")
            for result, blocked in causes:
                blocks = f" blocks {len(blocked)}: {_line(', '.join(blocked))}" if blocked else ""
                out.append(f"  {self._glyph(result.status)} {_line(result.id)} ({result.status}){blocks}")
        fixtures: dict[str, list[str]] = {}
        for r in report.results:
            if "fixture_error" in r.details:
                fixtures.setdefault(str(r.details["fixture_error"]), []).append(r.id)
        for name, ids in sorted(fixtures.items()):
            out.append(f"  {self._paint(f'fixture {_line(name)!r}', 'magenta')} failed for {len(ids)}: "
                       f"{_line(', '.join(ids))}")
        for error in report.errors:
            out.append(f"{self._paint('error:', 'bold red')} {_line(error)}")
        code = report.exit_code
        out.append(f"{self._paint(f'Exit {int(code)}:', 'bold')} {code.meaning}")


@hookimpl
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    reporters.add("console", ConsoleReporter, help="human-readable report (the default on stdout)")

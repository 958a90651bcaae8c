"""The ``console`` reporter: live progress on a terminal, then a doctor-style report.

One line per check grouped by layer (glyph, id, title, duration); details only for results
that did not pass; a summary with the counts, the root causes first, and the exit code's
meaning. Without a terminal, or with ``NO_COLOR``, the same text comes without colour.
"""

from __future__ import annotations

import threading
import time
from io import StringIO
from typing import TYPE_CHECKING, Any

from .._model import LAYERS, CheckSpec, Result, Status
from .._report import RunPlan, RunReport
from ..hookspecs import hookimpl
from . import ReporterContext, ReporterRegistry

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

__all__ = ["ConsoleReporter"]

_STYLE = {
    Status.PASS: ("✓", "[ok]", "green"), Status.WARN: ("!", "[warn]", "yellow"),
    Status.FAIL: ("✗", "[FAIL]", "bold red"), Status.ERROR: ("E", "[ERROR]", "bold magenta"),
    Status.SKIP: ("-", "[skip]", "dim"), Status.BLOCKED: ("⊘", "[blocked]", "red"),
    Status.WAIVED: ("~", "[waived]", "cyan"),
}


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
        shown = ", ".join(f"{cid} ({now - t:.1f} s)" for cid, t in running[:3])
        more = f" +{len(running) - 3} more" if len(running) > 3 else ""
        return Text(f"[{done}/{self._total}] running: {shown}{more}" if running else f"[{done}/{self._total}]")

    # -- the final report ---------------------------------------------------------------------

    def render(self, report: RunReport) -> str:
        from rich.console import Console
        from rich.markup import escape

        buffer = StringIO()
        console = Console(file=buffer, force_terminal=self._context.color, no_color=not self._context.color,
                          color_system="standard" if self._context.color else None, highlight=False,
                          width=10_000, soft_wrap=True)
        self._write_results(console, report, escape)
        self._write_summary(console, report, escape)
        return buffer.getvalue()

    def _glyph(self, status: Status) -> tuple[str, str]:
        glyph, ascii_glyph, style = _STYLE[status]
        return (glyph if self._unicode else ascii_glyph), style

    def _write_results(self, console: Console, report: RunReport, escape: Any) -> None:
        layers: dict[str, list[Result]] = {}
        for result in report.results:
            layers.setdefault(result.layer, []).append(result)
        width = max((len(r.id) for r in report.results), default=10)
        title_width = max((len(r.title) for r in report.results if r.title != r.id), default=0)
        for layer in sorted(layers, key=lambda n: (LAYERS.index(n) if n in LAYERS else 99, n)):
            console.print(f"[bold]{escape(layer)}[/]")
            for r in layers[layer]:
                glyph, style = self._glyph(r.status)
                duration = _duration(r.duration_s) if r.attempts else ""
                tries = f" ({r.attempts} attempts)" if r.attempts > 1 else ""
                title = "" if r.title == r.id else r.title
                console.print(f"  [{style}]{escape(glyph)}[/] {escape(r.id.ljust(width))}  "
                              f"{escape(title.ljust(title_width))}  [dim]{duration}{tries}[/]".rstrip())
                if r.status is not Status.PASS or (self._context.verbose and r.message):
                    if r.message:
                        console.print(f"      {escape(r.message)}")
                    if r.remediation and r.status in (Status.FAIL, Status.WARN, Status.ERROR, Status.WAIVED):
                        console.print(f"      [cyan]fix:[/] {escape(r.remediation)}")

    def _write_summary(self, console: Console, report: RunReport, escape: Any) -> None:
        counts = report.counts()
        parts = [f"{counts[str(s)]} {s}" for s in Status if counts[str(s)] or s in (Status.PASS, Status.FAIL)]
        console.print()
        console.print(f"[bold]Summary:[/] {len(report.results)} checks in {_duration(report.duration_s)}: "
                      + ", ".join(parts))
        causes = report.root_causes()
        if causes:
            console.print("[bold]Root causes[/] (fix these first):")
            for result, blocked in causes:
                glyph, style = self._glyph(result.status)
                console.print(f"  [{style}]{escape(glyph)}[/] {escape(result.id)} ({result.status}) blocks "
                              f"{len(blocked)}: {escape(', '.join(blocked))}")
        fixtures: dict[str, list[str]] = {}
        for r in report.results:
            if "fixture_error" in r.details:
                fixtures.setdefault(str(r.details["fixture_error"]), []).append(r.id)
        for name, ids in sorted(fixtures.items()):
            console.print(f"  [magenta]fixture {escape(name)!r}[/] failed for {len(ids)}: {escape(', '.join(ids))}")
        for error in report.errors:
            console.print(f"[bold red]error:[/] {escape(error)}")
        code = report.exit_code
        console.print(f"[bold]Exit {int(code)}:[/] {code.meaning}")


@hookimpl
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    reporters.add("console", ConsoleReporter, help="human-readable report (the default on stdout)")

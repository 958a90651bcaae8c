"""``mgn verify --watch INTERVAL``: load once, re-run the selection every INTERVAL, print only
what changed (transitions, new and removed checks, flapping), and on Ctrl-C or SIGTERM a summary.

Runs are timed start to start and never overlap: a run longer than the interval is followed
at once by the next. A signal only sets a flag (``SignalScope``): mid-run it stops the run (its
partial results are neither compared nor recorded), while waiting it ends the wait. Output is
plain lines, flushed one by one (it is often piped or logged); colour only on a terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from .._exceptions import UsageError
from .._exitcodes import ExitCode
from .._report import RunReport
from .._text import escape_controls
from ..history.compare import CheckState, states
from ._emit import HUMAN_FORMAT, Output
from ._options import parse_duration, warn
from ._request import Prepared, RunRequest, prepare
from ._signals import SignalScope
from ._watch_track import Event, Tracker, describe_window

__all__ = ["watch_interval", "watch_runs"]

#: Statuses shown as the current failures in the first run's verdict and the summary.
_FAILING = ("fail", "error")
_STYLES = {"pass": "32", "warn": "33", "fail": "1;31", "error": "1;35", "skip": "2", "blocked": "31",
           "waived": "36", "new": "36", "removed": "2", "flapping": "33", "time": "2"}
#: How often a wait between runs looks whether a signal came.
_POLL_S = 0.05


def watch_interval(text: str, outputs: Sequence[Output], github_annotations: bool) -> float:
    """The interval of ``--watch TEXT`` in seconds, or a ``UsageError``: an invalid or zero
    interval, or report options (watch prints transitions, not reports)."""
    if any(o.path is not None or o.format != HUMAN_FORMAT for o in outputs) or github_annotations:
        raise UsageError("--watch prints transitions; report options (--json, --junit, --html, --markdown, -o, "
                         "--github-annotations) are not supported with it")
    try:
        interval = parse_duration(text)
    except UsageError:
        interval = 0.0
    if interval <= 0:
        raise UsageError(f"invalid --watch interval {text!r}: use a duration above 0, e.g. 30s, 5m, 1h30m")
    return interval


def watch_runs(request: RunRequest, interval: float, config_path: str | None, *,
               record_history: bool = True) -> int:
    """Run ``request`` every ``interval`` seconds until Ctrl-C or SIGTERM; then exit 130."""
    stream = sys.stdout
    with SignalScope() as signals:
        try:
            with signals.raising():  # a plugin stuck while importing must still end
                prepared = prepare(request, config_path=config_path)
        except KeyboardInterrupt:
            warn("interrupted while loading plugins and configuration")
            return int(ExitCode.INTERRUPTED)
        watcher = _Watcher(prepared, interval, _Printer(stream), record_history)
        try:
            watcher.loop(signals)
        except BrokenPipeError:  # `mgn verify --watch 1m | head`: whoever read the lines is gone
            _silence(stream)
            warn("stdout was closed: watching stopped")
    return int(ExitCode.INTERRUPTED)


class _Printer:
    """Plain lines, each flushed; ANSI colour only on a terminal without ``NO_COLOR``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        tty = stream.isatty()
        self.color = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        encoding = getattr(stream, "encoding", None) or "utf-8"
        self.arrow = "→" if "utf" in encoding.lower() else "->"

    def paint(self, text: str, style: str) -> str:
        code = _STYLES.get(style)
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and code else text

    def line(self, text: str, *, stamped: bool = True) -> None:
        if stamped:
            text = f"{self.paint(datetime.now().strftime('%H:%M:%S'), 'time')}  {text}"
        self.stream.write(text + "\n")
        self.stream.flush()


class _Watcher:
    def __init__(self, prepared: Prepared, interval: float, printer: _Printer, record_history: bool) -> None:
        self.prepared = prepared
        self.interval = interval
        self.out = printer
        self.record_history = record_history
        config = prepared.loaded.config
        self.tracker = Tracker(int(config["watch.flap_changes"]), float(config["watch.flap_window"]))
        self.started = time.monotonic()
        self.cut_off = False  # the last run was interrupted before it finished
        self.errors: list[str] = []

    def loop(self, signals: SignalScope) -> None:
        count = len(self.prepared.ids)
        every = describe_window(self.interval) + ("" if self.record_history else ", not recorded in history")
        self.out.line(f"Watching {count} check{'' if count == 1 else 's'} every {every}: "
                      "only changes are shown (Ctrl-C to stop)", stamped=False)
        while not signals.pending():
            run_started = time.monotonic()
            report = self.prepared.run(live=[signals.redeliverer()])
            if report.interrupted or signals.pending():
                self.cut_off = True  # partial results: not compared, not recorded
                break
            self._record(report)
            self._show(report, time.monotonic())
            _wait_until(run_started + self.interval, signals)
        self._summary()

    def _record(self, report: RunReport) -> None:
        if self.record_history:
            from ..history import record_run

            record_run(report, self.prepared.loaded.config, warn)  # never raises: a warning at worst

    def _show(self, report: RunReport, now: float) -> None:
        events = self.tracker.observe(states(report), now)
        if self.tracker.runs == 1:
            self._show_first(report)
        for event in events:
            self._show_event(event)
        for error in report.errors:  # framework errors (a run deadline, a hook): once until they change
            if error not in self.errors:
                self.out.line(f"{self.out.paint('error:', 'fail')} {_one_line(error)}")
        self.errors = list(report.errors)

    def _show_first(self, report: RunReport) -> None:
        counts = ", ".join(f"{n} {status}" for status, n in report.counts().items()
                           if n or status in ("pass", "fail"))
        self.out.line(f"run 1: {len(report.results)} checks in {_seconds(report.duration_s)}: {counts}")
        for check_id, state in self.tracker.current.items():
            if state.status in _FAILING:
                self.out.line(self._state_line(check_id, state))

    def _show_event(self, event: Event) -> None:
        change = event.change
        if event.started_flapping:
            window = describe_window(self.tracker.flap_window)
            self.out.line(f"{_one_line(change.id)} is {self.out.paint('flapping', 'flapping')} "
                          f"({self.tracker.changes_in_window(change.id)} changes in {window})")
        before = self._status(change.before, "new")
        after = self._status(change.after, "removed")
        mark = f"  {self.out.paint('[flapping]', 'flapping')}" if event.flapping else ""
        message = _one_line(change.after.message) if change.after is not None else ""
        self.out.line(f"{_one_line(change.id)}  {before} {self.out.arrow} {after}{mark}"
                      f"{'  ' + message if message else ''}")

    def _status(self, state: CheckState | None, absent: str) -> str:
        status = state.status if state is not None else absent
        return self.out.paint(status, status)

    def _state_line(self, check_id: str, state: CheckState) -> str:
        message = _one_line(state.message)
        return f"{_one_line(check_id)}  {self._status(state, '')}{'  ' + message if message else ''}"

    def _summary(self) -> None:
        tracker, out = self.tracker, self.out
        runs = tracker.runs
        cut = " (the run under way was stopped and is not counted)" if self.cut_off else ""
        out.line(f"Stopped after {runs} run{'' if runs == 1 else 's'} in "
                 f"{_seconds(time.monotonic() - self.started)}{cut}")
        if runs == 0:
            return
        changed = [f"{_one_line(cid)} ({_times(n)}{', flapped' if cid in tracker.flapped else ''})"
                   for cid, n in tracker.counts.most_common()]
        out.line(f"Changed: {', '.join(changed) if changed else 'nothing'}", stamped=False)
        if tracker.flapped:
            out.line(f"Flapped: {', '.join(map(_one_line, tracker.flapped))}", stamped=False)
        failing = [(cid, s) for cid, s in tracker.current.items() if s.status in _FAILING]
        out.line(f"Failing now: {len(failing) if failing else 'none'}", stamped=False)
        for check_id, state in failing:
            out.line("  " + self._state_line(check_id, state), stamped=False)


def _wait_until(deadline: float, signals: SignalScope) -> None:
    """Sleep until ``deadline`` (monotonic) or a signal, whichever comes first."""
    while not signals.pending():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, _POLL_S))


def _silence(stream: TextIO) -> None:
    """Point a closed pipe's descriptor at /dev/null, so the exit's final flush cannot fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _one_line(text: str) -> str:
    """The first line of a check's text, control characters escaped (it is shown on one line)."""
    lines = text.strip().splitlines()
    first = escape_controls(lines[0]) if lines else ""
    return first + " …" if len(lines) > 1 else first


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


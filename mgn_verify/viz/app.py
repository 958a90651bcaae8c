"""``mgn viz``'s two ways to run: the live dashboard (stdout is a terminal) and the one-shot
snapshot (it is not).

Live: the snapshot and the preflight are refreshed by two daemon threads; the main thread only
reads keys and redraws, and only when something changed (or the terminal was resized), through
rich's ``Live`` on the alternate screen with auto-refresh off: no flicker, no scroll-back
spam. Keys are read in cbreak mode (plain keys, no mouse: fine over SSH); the terminal's mode
and screen are restored however the dashboard ends (``q``, Ctrl-C, SIGTERM, an error).
While it runs, nothing else may write to the terminal: stderr is captured and logging's
last-resort handler silenced (a client library's warning would tear the screen).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import select
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from .collect import Collector, Snapshot
from .plain import render_text
from .preflight import PreflightLoop
from .summary import Clean, problems

__all__ = ["EXIT_CODES", "HOSTAPP_DOWN", "one_shot", "run_live"]

#: The one-shot exit code when the Host App does not answer (the snapshot is printed anyway).
HOSTAPP_DOWN = 5
EXIT_CODES = (
    "\b\nExit codes:\n"
    "    0  everything healthy (one-shot), or the dashboard was quit with q\n"
    "    1  something failing: a cluster, node, workspace or preflight check (one-shot)\n"
    "    2  usage, configuration or plugin error\n"
    f"    {HOSTAPP_DOWN}  the Host App does not answer (one-shot; the snapshot is still printed)\n"
    "  130  interrupted (Ctrl-C or SIGTERM)"
)
#: How long the main thread waits for a key before looking for new data.
_TICK = 0.1
_QUIT = frozenset("qQ")


def one_shot(collector: Collector, preflight: PreflightLoop, clean: Clean, stream: TextIO) -> int:
    """One snapshot and one preflight run (side by side), printed as text; the exit code."""
    snapshots: list[Snapshot] = []
    thread = threading.Thread(target=lambda: snapshots.append(collector.collect()), name="mgn-viz-collect",
                              daemon=True)
    thread.start()
    view = preflight.run_once()
    thread.join()
    snapshot = snapshots[0]
    stream.write(render_text(snapshot, view, clean))
    stream.flush()
    if not snapshot.hostapp.ok:
        from ..cli._options import error

        error(f"the Host App at {clean(snapshot.hostapp.url)} does not answer: {clean(snapshot.hostapp.error or '')}")
        return HOSTAPP_DOWN
    return 1 if problems(snapshot, view) else 0


class _Feed:
    """The latest snapshot, refreshed every ``refresh`` seconds on a daemon thread."""

    def __init__(self, collector: Collector, refresh: float, dirty: threading.Event) -> None:
        self.collector = collector
        self.refresh = refresh
        self.snapshot: Snapshot | None = None
        self._dirty = dirty
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mgn-viz-collect", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the loop; a request under way is abandoned (a daemon thread: ``q`` quits now)."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.snapshot = self.collector.collect()
            self._dirty.set()
            self._stop.wait(self.refresh)


def run_live(collector: Collector, preflight: PreflightLoop, dirty: threading.Event, clean: Clean,
             refresh: float) -> int:
    """The dashboard until ``q`` (exit 0); Ctrl-C and SIGTERM raise ``KeyboardInterrupt``."""
    from rich.console import Console
    from rich.live import Live

    from .screen import render_screen

    keys = sys.stdin.isatty()
    console = Console()
    feed = _Feed(collector, refresh, dirty)

    def draw() -> object:
        return render_screen(feed.snapshot, preflight.view(), clean, refresh=refresh, keys=keys,
                             width=console.size.width)

    with _cbreak(sys.stdin if keys else None), _quiet(), \
            Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False,
                 redirect_stderr=False, transient=True) as live:
        live.update(draw(), refresh=True)  # type: ignore[arg-type]
        feed.start()
        preflight.start()
        try:
            size = console.size
            while not _quit_pressed(sys.stdin if keys else None):
                if dirty.is_set() or console.size != size:
                    dirty.clear()
                    size = console.size
                    live.update(draw(), refresh=True)  # type: ignore[arg-type]
        finally:
            preflight.stop()
            feed.stop()
    return 0


def _quit_pressed(stdin: TextIO | None) -> bool:
    """Wait up to one tick for input; whether it held ``q``."""
    if stdin is None:
        threading.Event().wait(_TICK)
        return False
    ready, _, _ = select.select([stdin.fileno()], [], [], _TICK)
    if not ready:
        return False
    data = os.read(stdin.fileno(), 64)
    if not data:  # end of input (the terminal went away): nothing more will come
        raise KeyboardInterrupt("end of input")
    return any(chr(b) in _QUIT for b in data)


@contextlib.contextmanager
def _cbreak(stdin: TextIO | None) -> Iterator[None]:
    """Keys without Enter and without echo; the saved mode is put back however this ends."""
    if stdin is None:
        yield
        return
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)  # Ctrl-C still sends SIGINT (ISIG stays on)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No stray write reaches the screen: stderr captured, logging's last resort silenced."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        root.removeHandler(handler)

"""The preflight behind ``mgn viz``: the GuildNet layers' checks, run again and again in the
background (never two runs at once), each run compared with the one before it
(``history.compare``) so the dashboard can highlight what changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._exceptions import MgnVerifyError
from ..history.compare import Change, CheckState, changes, states

if TYPE_CHECKING:
    from .._report import RunReport
    from ..cli._request import Prepared

__all__ = ["LAYERS", "PreflightLoop", "PreflightView", "layer_results"]

#: What the dashboard watches: every layer of a GuildNet installation but the local host's.
LAYERS = ("kubernetes", "rethinkdb", "tailscale", "guildnet")
#: Runs with transitions kept for the "recent changes" list.
_RECENT = 8
_BAD = frozenset({"fail", "error"})


@dataclass(frozen=True)
class PreflightView:
    """What the dashboard shows of the preflight: the latest report (None before the first run
    ends), whether a run is under way, the changes of the latest run against the one before and
    the recent ones with the time each was seen."""

    report: RunReport | None = None
    running: bool = False
    error: str | None = None
    changed: tuple[Change, ...] = ()
    #: The latest runs that changed something, newest first: (when the run started, its changes).
    recent: tuple[tuple[float, tuple[Change, ...]], ...] = ()
    runs: int = 0
    finished_at: float | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def failing(self) -> list[str]:
        """The ids of the latest run's failed and errored checks."""
        if self.report is None:
            return []
        return [r.id for r in self.report.results if str(r.status) in _BAD]


def layer_results(report: RunReport | None, layer: str, cluster: str | None = None) -> dict[str, int]:
    """Status -> count of ``layer``'s results (only ``cluster``'s when given)."""
    counts: dict[str, int] = {}
    for result in report.results if report is not None else ():
        if result.layer == layer and (cluster is None or result.target == cluster):
            counts[str(result.status)] = counts.get(str(result.status), 0) + 1
    return counts


class PreflightLoop:
    """Runs ``prepared`` now and then every ``interval`` seconds after the previous run ended,
    on a daemon thread (a run cannot be cut short; the process may end under it).
    ``on_update`` is called (from that thread) whenever the view changes."""

    def __init__(self, prepared: Prepared, interval: float, on_update: Callable[[], None] = lambda: None,
                 warnings: Sequence[str] = ()) -> None:
        self._prepared = prepared
        self.interval = interval
        self._on_update = on_update
        #: The session's warnings (a list it appends to): the latest few are shown.
        self._warnings = warnings
        self._lock = threading.Lock()
        self._view = PreflightView()
        self._previous: dict[str, CheckState] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def view(self) -> PreflightView:
        with self._lock:
            return self._view

    def run_once(self) -> PreflightView:
        """One run on the calling thread; the view after it."""
        self._set(running=True)
        started = time.time()
        try:
            report = self._prepared.run()
        except MgnVerifyError as exc:
            self._set(running=False, error=" ".join(str(exc).split()), finished_at=time.time())
        except Exception as exc:  # a broken plugin must not end the dashboard: it says so
            self._set(running=False, error=f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                      finished_at=time.time())
        else:
            self._finished(report, started)
        return self.view()

    def _finished(self, report: RunReport, started: float) -> None:
        now = states(report)
        found = tuple(changes(self._previous, now)) if self._previous is not None else ()
        self._previous = now
        with self._lock:
            recent = ((started, found), *self._view.recent)[:_RECENT] if found else self._view.recent
            runs = self._view.runs + 1
        self._set(report=report, running=False, error=None, changed=found, recent=recent, runs=runs,
                  finished_at=time.time())

    def _set(self, **values: object) -> None:
        from dataclasses import replace

        values["warnings"] = tuple(self._warnings[-3:])
        with self._lock:
            self._view = replace(self._view, **values)  # type: ignore[arg-type]
        self._on_update()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mgn-viz-preflight", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

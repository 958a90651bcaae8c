"""The latest completed run, as the endpoints show it. The runner publishes a new ``Snapshot``
after each run; request threads only ever read whole snapshots, so they never wait for a run
and never see half of one."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .._exitcodes import ExitCode
from .._model import Status
from .._report import RunReport

__all__ = ["NO_RUN_YET", "ServeState", "Snapshot", "verdict"]

NO_RUN_YET = "no run finished yet"
#: Exit codes of a run in which nothing failed or errored (warnings allowed, even under --strict).
_HEALTHY = (ExitCode.OK, ExitCode.WARNINGS)


@dataclass(frozen=True)
class Snapshot:
    report: RunReport
    #: The JSON report, rendered once by the ``json`` reporter (what ``--json`` writes).
    report_json: str
    verdict: str
    healthy: bool
    #: Unix time at which the run finished.
    finished_at: float
    #: Runs completed so far, this one included.
    runs: int


def verdict(report: RunReport) -> str:
    """One line: healthy or not, the counts, the exit code and what it means."""
    counts = report.counts()
    parts = ", ".join(f"{counts[str(s)]} {s}" for s in Status if counts[str(s)]) or "no checks"
    word = "healthy" if report.exit_code in _HEALTHY else "unhealthy"
    code = report.exit_code
    return f"{word}: {parts} (exit {int(code)}: {code.meaning})"


class ServeState:
    """Shared by the runner (writes) and the request threads (read)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._running_since: float | None = None

    def run_started(self) -> None:
        with self._lock:
            self._running_since = time.time()

    def publish(self, report: RunReport, report_json: str) -> Snapshot:
        with self._lock:
            runs = self._latest.runs + 1 if self._latest is not None else 1
            snapshot = Snapshot(report, report_json, verdict(report), report.exit_code in _HEALTHY,
                                time.time(), runs)
            self._latest, self._running_since = snapshot, None
        return snapshot

    def run_abandoned(self) -> None:
        with self._lock:
            self._running_since = None

    def view(self) -> tuple[Snapshot | None, float | None]:
        """The latest snapshot (``None`` before the first run) and since when a run is going."""
        with self._lock:
            return self._latest, self._running_since

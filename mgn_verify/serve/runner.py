"""The loop of ``mgn verify serve``: run the selection, publish the report, wait, again.

The runs happen on the main thread, exactly as a single ``mgn verify`` run does (its signal
handling, run deadline watchdog and stray-process cleanup are main-thread things), and the HTTP
server answers on threads of its own from the latest published snapshot. So a run never
overlaps the previous one (there is one loop), and a slow run never blocks an endpoint.

Ctrl-C or SIGTERM, whenever it comes, ends the command: a run in progress is stopped as any
interrupted run is (its partial report is not published), the server is shut down, exit 130.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .._exitcodes import ExitCode
from .._reporting import ReporterContext
from ..cli._request import Prepared
from ..cli._signals import SignalScope
from ..reporters.json_report import JsonReporter
from .server import ServeServer
from .state import ServeState

__all__ = ["serve_runs"]

#: How often the wait between runs looks for a signal (the handler only sets a flag).
_POLL = 0.1


def serve_runs(prepared: Prepared, server: ServeServer, state: ServeState, signals: SignalScope,
               say: Callable[[str], None]) -> int:
    """Run every ``state.interval`` seconds (start to start; a run longer than that is followed
    at once by the next) until a signal; the exit code (130)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="mgn-serve-http", daemon=True)
    thread.start()
    json_reporter = JsonReporter(ReporterContext(prepared.loaded.config, None, is_tty=False, color=False))
    healthy: bool | None = None
    try:
        while not signals.pending():
            started = time.monotonic()
            state.run_started()
            report = prepared.run(live=[signals.redeliverer()])
            if report.interrupted or signals.pending():
                state.run_abandoned()  # an interrupted run's results are partial: not published
                break
            snapshot = state.publish(report, json_reporter.render(report))
            if snapshot.healthy != healthy:  # the log says when health changed, not every run
                say(snapshot.verdict)
                healthy = snapshot.healthy
            _wait(started + state.interval, signals)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    say("stopped (interrupted)")
    return int(ExitCode.INTERRUPTED)


def _wait(until: float, signals: SignalScope) -> None:
    while not signals.pending() and (left := until - time.monotonic()) > 0:
        time.sleep(min(_POLL, left))


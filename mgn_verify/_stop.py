"""Why a run is stopping early (Ctrl-C, SIGTERM, the run deadline), visible to every thread.

The supervisor (main thread) requests the stop; each event loop the run uses subscribes a
callback that runs on that loop, so the scheduler cancels its checks and a teardown stops
waiting, whichever loop they happen to be on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from time import perf_counter

__all__ = ["INTERRUPTED", "Stop"]

#: The stop reason of Ctrl-C and SIGTERM (exit 130).
INTERRUPTED = "interrupted"


class Stop:
    def __init__(self) -> None:
        self.reason: str | None = None
        #: ``perf_counter()`` when the stop was requested.
        self.at = 0.0
        self._lock = threading.Lock()
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []

    @property
    def requested(self) -> bool:
        return self.reason is not None

    @property
    def interrupted(self) -> bool:
        return self.reason == INTERRUPTED

    def request(self, reason: str) -> bool:
        """Stop the run (from any thread, never from a signal handler); the first reason wins."""
        with self._lock:
            if self.reason is not None:
                return False
            self.reason, self.at = reason, perf_counter()
            subscribers = list(self._subscribers)
        for loop, callback in subscribers:
            _call_on(loop, callback)
        return True

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the running loop when the stop is requested (soon, if it was)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._subscribers.append((loop, callback))
            already = self.reason is not None
        if already:
            loop.call_soon(callback)

    def event(self) -> asyncio.Event:
        """An event of the running loop that is set when the stop is requested."""
        event = asyncio.Event()
        self.subscribe(event.set)
        return event

    def elapsed(self) -> float:
        """Seconds since the stop was requested (0 when it was not)."""
        return perf_counter() - self.at if self.reason is not None else 0.0


def _call_on(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # an abandoned loop that has closed since
        loop.call_soon_threadsafe(callback)

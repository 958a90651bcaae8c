"""A bounded pool of daemon worker threads for sync checks, tolerant of hung checks.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one check
stuck in a blocking call would hold the process open forever. Here every worker is a daemon,
and when the scheduler gives up on a task (timeout, Ctrl-C) it calls ``abandon()``: a
replacement worker starts so capacity stays the same, and the stuck thread retires quietly
whenever its call returns.

Finished jobs are delivered to the loop that submitted them through that loop's own mailbox:
when the run abandons a stuck event loop for a fresh one, results meant for the old loop
can never starve the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["WorkerPool"]



class _Mailbox:
    """Finished jobs of one loop; one loop wake-up delivers all of them (not one per job)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._finished: deque[tuple[asyncio.Future[Any], Any]] = deque()
        self._lock = threading.Lock()

    def post(self, future: asyncio.Future[Any], value: Any) -> None:
        with self._lock:
            first = not self._finished
            self._finished.append((future, value))
        if first:
            # A closed loop: the run (or this loop) ended without us.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            batch = list(self._finished)
            self._finished.clear()
        for future, value in batch:
            if not future.done():  # cancelled by a timeout: nobody is waiting any more
                future.set_result(value)


_Job = tuple[Callable[[], Any], _Mailbox, "asyncio.Future[Any]"]


class WorkerPool:
    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live = 0      # workers started and not retired
        self._idle = 0      # workers waiting for a job
        self._queued = 0    # jobs submitted and not yet taken by a worker
        self._excess = 0    # stuck workers that must retire once free
        self._closed = False
        self._mailbox: _Mailbox | None = None   # of the loop that submits (one at a time)

    def run(self, func: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run ``func`` on a worker; the future gets its return value (``func`` must not raise)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        mailbox = self._mailbox
        if mailbox is None or mailbox.loop is not loop:
            mailbox = self._mailbox = _Mailbox(loop)
        with self._lock:
            self._queued += 1
            # An idle worker may already be promised to an earlier queued job: count those.
            if self._queued > self._idle and self._live - self._excess < self._size:
                self._start_worker()
            self._jobs.put((func, mailbox, future))
        return future

    def abandon(self) -> None:
        """A running job will not be waited for: replace its worker."""
        with self._lock:
            if not self._closed:
                self._excess += 1
                self._start_worker()

    def shutdown(self) -> None:
        """Stop idle workers; never waits for busy (possibly stuck) ones."""
        with self._lock:
            self._closed = True
            live = self._live
        for _ in range(live):
            self._jobs.put(None)

    def _start_worker(self) -> None:
        self._live += 1
        threading.Thread(target=self._work, name="mgn-check-worker", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is not None:
                    self._queued -= 1
            if job is None:
                break
            func, mailbox, future = job
            mailbox.post(future, func())
            with self._lock:
                if self._excess:
                    self._excess -= 1
                    break
        with self._lock:
            self._live -= 1

"""A bounded pool of daemon worker threads for sync checks, tolerant of hung checks.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one check
stuck in a blocking call would hold the process open forever. Here every worker is a daemon,
and a job that is given up (a timeout, Ctrl-C) is abandoned (``abandon``), as are the jobs of an
event loop the run abandons (``abandon_loop``). A running abandoned job's worker is replaced at once,
so the pool keeps ``size`` workers able to take a job however many are stuck, and the stuck
thread retires quietly whenever its call returns; a queued abandoned job never runs at all.

Each ``Job`` records when a worker started it (``started``): a check's timeout measures its own
execution, never the time it waited for a worker.

Finished jobs are delivered to the loop that submitted them through that loop's own mailbox:
when the run abandons a stuck event loop for a fresh one, results meant for the old loop
can never starve the new one.

A job that raises anyway (even ``SystemExit``) never kills its worker: the future gets a
``RuntimeError`` describing it, and the worker takes the next job.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any

from ._text import describe_exception

__all__ = ["Job", "WorkerPool"]


class _Mailbox:
    """Finished jobs of one loop; one loop wake-up delivers all of them (not one per job)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.abandoned = False   # its loop was abandoned: its queued jobs never run
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
            if future.done():  # cancelled by a timeout: nobody is waiting any more
                continue
            if isinstance(value, _Raised):
                future.set_exception(RuntimeError(f"a worker job raised {value.description}"))
            else:
                future.set_result(value)


class _Raised:
    """What a job raised, described (the exception itself, a SystemExit, must not reach the loop)."""

    __slots__ = ("description",)

    def __init__(self, exc: BaseException) -> None:
        self.description = describe_exception(exc)


class Job:
    """One submitted call: its ``future`` (on the submitting loop) and when it ``started``."""

    __slots__ = ("_abandoned", "_done", "_func", "_mailbox", "future", "started")

    def __init__(self, func: Callable[[], Any], mailbox: _Mailbox, future: asyncio.Future[Any]) -> None:
        self._func = func
        self._mailbox = mailbox
        self.future = future
        #: ``perf_counter()`` when a worker started it; ``None`` while it is queued.
        self.started: float | None = None
        self._abandoned = False
        self._done = False


class WorkerPool:
    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live = 0      # workers started and not retired
        self._idle = 0      # workers waiting for a job
        self._queued = 0    # jobs submitted and not yet taken by a worker
        self._stuck = 0     # workers running an abandoned job: not able to take another
        self._running: set[Job] = set()
        self._closed = False
        self._mailbox: _Mailbox | None = None   # of the loop that submits (one at a time)

    @property
    def live(self) -> int:
        """Worker threads alive, stuck ones included."""
        return self._live

    def run(self, func: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run ``func`` on a worker; the future gets its return value (``func`` should not raise:
        if it does, the future gets a ``RuntimeError`` naming what it raised)."""
        return self.submit(func).future

    def submit(self, func: Callable[[], Any]) -> Job:
        """As ``run``, returning the ``Job``: its start time bounds a check's timeout, and a job
        given up must be ``abandon``-ed (its worker may be stuck)."""
        loop = asyncio.get_running_loop()
        mailbox = self._mailbox
        if mailbox is None or mailbox.loop is not loop:
            mailbox = self._mailbox = _Mailbox(loop)
        job = Job(func, mailbox, loop.create_future())
        with self._lock:
            self._queued += 1
            # An idle worker may already be promised to an earlier queued job: count those.
            if self._queued > self._idle and self._able() < self._size:
                self._start_worker()
            self._jobs.put(job)
        return job

    def abandon_loop(self, loop: asyncio.AbstractEventLoop) -> int:
        """Nobody will wait for the jobs of ``loop`` (it was abandoned, from another thread):
        its running jobs' workers are replaced, its queued jobs never run.

        :returns: how many running jobs were abandoned."""
        mailbox = self._mailbox
        if mailbox is not None and mailbox.loop is loop:
            mailbox.abandoned = True
        with self._lock:
            running = [job for job in self._running if job._mailbox.loop is loop]
        for job in running:
            self.abandon(job)
        return len(running)

    def shutdown(self) -> None:
        """Stop idle workers; never waits for busy (possibly stuck) ones."""
        with self._lock:
            self._closed = True
            live = self._live
        for _ in range(live):
            self._jobs.put(None)

    def _able(self) -> int:
        """Workers able to take a job (under the lock)."""
        return self._live - self._stuck

    def abandon(self, job: Job) -> None:
        """Nobody waits for ``job`` any more: if it runs, its worker is replaced at once (and
        retires when the call returns); if it is queued, it never runs."""
        with self._lock:
            if job._abandoned or job._done:
                return
            job._abandoned = True
            if job.started is None:  # still queued: the worker that takes it skips it
                return
            self._stuck += 1
            if not self._closed and self._able() < self._size:
                self._start_worker()   # its capacity, replaced at once

    def _finished(self, job: Job) -> bool:
        """Account for a job that returned; ``True`` when its worker must retire (a replacement
        took its place while it was stuck: the pool has one too many now)."""
        with self._lock:
            job._done = True
            self._running.discard(job)
            if job._abandoned:
                self._stuck -= 1
            return self._able() > self._size

    def _start_worker(self) -> None:
        self._live += 1
        threading.Thread(target=self._work, name="mgn-check-worker", daemon=True).start()

    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    self._idle += 1
                job = self._jobs.get()
                with self._lock:
                    self._idle -= 1
                    if job is None:
                        break
                    self._queued -= 1
                    if job._abandoned or job._mailbox.abandoned:
                        job._abandoned = True
                        continue
                    job.started = perf_counter()
                    self._running.add(job)
                job._mailbox.post(job.future, _call(job._func))
                if self._finished(job):
                    break
        finally:  # however the worker ends, capacity is accounted for
            with self._lock:
                self._live -= 1


def _call(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except BaseException as exc:  # a job must not raise; if it does, it is reported
        return _Raised(exc)

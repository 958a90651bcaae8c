"""An event loop on a daemon thread, watched from outside through a heartbeat.

The run's event loop does not live on the main thread: an async check that calls blocking
code (``time.sleep``, a lock, a busy loop) would freeze it, and with it Ctrl-C handling and
every other check. Here the loop beats every ``BEAT`` seconds; the supervisor on the main
thread sees a stale beat, asks which task holds the loop (the scheduler knows which check
that is), and may abandon the whole loop thread (a daemon: it never holds the process open)
for a fresh one. Nothing here costs anything per check.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any

__all__ = ["BEAT", "LoopThread", "waits_on"]

#: Seconds between heartbeats: a loop silent for longer is running something that blocks.
BEAT = 0.05
#: Bounded clean-up of a finished loop: its leftovers never delay the run's end.
_CLEANUP_S = 1.0
_MAX_DEPTH = 32
#: Loops left with a task that would not end (their garbage collection would log noise).
_STRANDED: list[asyncio.AbstractEventLoop] = []


class LoopThread:
    def __init__(self, main: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.last_beat = perf_counter()
        self._main = main
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> LoopThread:
        self.last_beat = perf_counter()
        self._thread.start()
        return self

    def silent_for(self, now: float) -> float:
        """Seconds since the loop last got to run its callbacks."""
        return now - self.last_beat

    def current_task(self) -> asyncio.Task[Any] | None:
        """The task the loop runs right now (it holds the loop when the beat is stale)."""
        return asyncio.current_task(self.loop)  # a plain dict read: safe from another thread

    def _beat(self) -> None:
        self.last_beat = perf_counter()
        self.loop.call_later(BEAT, self._beat)

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.call_soon(self._beat)
            driver = _Driver(self._main(), loop=loop, name="mgn-driver")
            driver.add_done_callback(lambda _: loop.stop())
            while not driver.done():  # a check calling loop.stop() only pauses the run
                loop.run_forever()
            driver.result()
        except BaseException as exc:  # handed to the supervisor, which re-raises it
            self.error = exc
        finally:
            self.done.set()   # the supervisor never waits for the clean-up below
            _close(loop)


class _Driver(asyncio.Task[None]):
    """The task that runs the scheduler: a check cancelling "every other task" must not end
    the run (the checks it cancels end as ``error``; the run has its own ways to stop)."""

    def cancel(self, msg: Any = None) -> bool:
        return False


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left (a check that outlived an interrupt), briefly let it unwind, close."""
    try:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.wait(leftovers, timeout=_CLEANUP_S))
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), _CLEANUP_S))
    except BaseException:  # an abandoned loop's leftovers are nobody's business any more
        pass
    finally:
        if any(not task.done() for task in asyncio.all_tasks(loop)):
            _STRANDED.append(loop)  # a task that ignores cancellation: keep it quiet, not GC'd
        else:
            loop.close()


def waits_on(root: Any, target: asyncio.Task[Any], depth: int = 0) -> bool:
    """Whether ``root`` (a check's task) waits, through its await chain, on ``target``: a
    sub-task it made with ``asyncio.gather``, ``wait_for``, ``create_task`` or a ``TaskGroup``.

    Only called when a loop is stuck (never per check), so blocking code in a sub-task is
    charged to its check. Reads suspended coroutines' frames: best effort, bounded depth.
    """
    if root is target:
        return True
    if depth > _MAX_DEPTH:
        return False
    if isinstance(root, asyncio.Future):
        children = getattr(root, "_children", None) or ()   # gather's future
        if any(waits_on(child, target, depth + 1) for child in children):
            return True
        if not isinstance(root, asyncio.Task):
            return False
        waiter = getattr(root, "_fut_waiter", None)   # what the task awaits right now
        if waiter is not None and waits_on(waiter, target, depth + 1):
            return True
        return waits_on(root.get_coro(), target, depth + 1)
    frame = getattr(root, "cr_frame", None) or getattr(root, "gi_frame", None)
    if frame is not None and any(_holds(value, target) for value in list(frame.f_locals.values())):
        return True
    inner = getattr(root, "cr_await", None) or getattr(root, "gi_yieldfrom", None)
    return inner is not None and waits_on(inner, target, depth + 1)


def _holds(value: Any, target: asyncio.Task[Any]) -> bool:
    if value is target:
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return any(item is target for item in value)
    tasks = getattr(value, "_tasks", None)   # an asyncio.TaskGroup
    return isinstance(tasks, set) and target in tasks

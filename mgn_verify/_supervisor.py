"""The supervisor: runs the run on an event loop thread and watches it from the main thread.

The main thread stays free, so Ctrl-C and SIGTERM are always handled, whatever a check does.
Every ``TICK`` it looks at the loop thread's heartbeat (see ``_loopthread``) and decides:

- an async check has held the loop for its whole timeout (blocking code): the loop is
  abandoned, as the pool abandons a stuck worker; the check is ``error``, the checks in flight
  on that loop run again on a fresh loop thread, and the run goes on. An async fixture holding
  the loop is charged to the running checks that need it (``error`` at the shortest of their
  timeouts; the fixture counts as failed, so no later check creates it again). The time the
  loop was held moves the run deadline (and the watchdog) that much later: the checks that had
  to start again on the fresh loop still get their turn;
- the run must stop (a signal, the run deadline): the scheduler cancels what runs; a loop that
  does not answer within ``UNRESPONSIVE`` is replaced by a fresh one that winds the run down
  (not-run results, teardown); and ``FORCE_AFTER`` seconds after the stop the run ends
  regardless, settling every check and teardown left ("interrupted").

Once every check has a result (``Scheduler.finished``) no loop is abandoned or started any
more: the loop that finished tears the fixtures down (once), and if it hangs (a hook that
blocks) a stopping run still ends at ``FORCE_AFTER``. However the run ends, processes that
checks started and left running are stopped and named in a warning (``_leftovers``).

Async fixture values belong to the loop that created them: after a loop is abandoned, one
created there (a client bound to that loop) may not work on the fresh loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._fixtures import FixtureManager
from ._leftovers import Children
from ._loopthread import LoopThread
from ._pool import WorkerPool
from ._scheduler import BLOCKED_FIXTURE, BLOCKED_LOOP, Scheduler
from ._stop import INTERRUPTED, Stop
from .config import Redactor

if TYPE_CHECKING:
    import asyncio

__all__ = ["FORCE_AFTER", "Supervisor"]

TICK = 0.05
#: A stopping run whose loop has been silent this long gets a fresh loop to wind down on.
UNRESPONSIVE = 0.3
#: Seconds after a stop at which the run ends whatever still runs.
FORCE_AFTER = 1.5


#: What holds a stuck loop: the checks to blame (id -> message), the fixture, after how long.
_Holder = tuple[dict[str, str], str | None, float]
_NOBODY: _Holder = ({}, None, 0.0)


class Supervisor:
    def __init__(self, *, stop: Stop, pool: WorkerPool, errors: list[str], redactor: Redactor,
                 run_deadline: float, teardown_timeout: float,
                 warn: Callable[[str], None] | None = None) -> None:
        # Children there before the run are not a check's. Only a run on the main thread (as a
        # CLI run is, like the watchdog) owns the process's children: an embedding one does not.
        self._children = Children() if threading.current_thread() is threading.main_thread() else None
        self._warn = warn
        self._stop = stop
        self._pool = pool
        self._errors = errors
        self._redactor = redactor
        self._run_deadline = run_deadline
        self._teardown_timeout = teardown_timeout
        self._signalled = False
        self._started_run = False
        self._tearing_down = False
        self._loops = 0
        # The task holding the loop, and who is to blame for it.
        self._holder: tuple[asyncio.Task[Any] | None, _Holder] = (None, _NOBODY)
        self._deadline_at = 0.0
        self._lost = 0.0   # seconds of blocked loops the run deadline was moved by
        self._thread = self._new_loop_thread()

    @property
    def loop_thread(self) -> LoopThread:
        """The loop the run starts on (fixtures need it before the run starts)."""
        return self._thread

    def on_signal(self) -> None:
        """Safe in a signal handler: only sets a flag that the next tick acts on."""
        self._signalled = True

    def run(self, scheduler: Scheduler, fixtures: FixtureManager, on_run_start: Callable[[], None]) -> None:
        """Run to the end (main thread); returns within ``FORCE_AFTER`` (+ ``_leftovers.GRACE``)
        of any stop."""
        self._scheduler, self._fixtures, self._on_run_start = scheduler, fixtures, on_run_start
        fixtures.watch(self._stop)   # workers waiting for a fixture give up when the run stops
        self._deadline_at = perf_counter() + self._run_deadline
        try:
            self._supervise()
        finally:
            self._stop_leftover_processes()

    def _supervise(self) -> None:
        self._thread.start()
        while not self._thread.done.wait(TICK):
            now = perf_counter()
            if self._signalled and not self._stop.requested:
                self._stop.request(INTERRUPTED)
            if now >= self._deadline_at and not self._stop.requested:
                self._deadline_passed()
            if self._stop.requested:
                if self._stop.elapsed() >= FORCE_AFTER:
                    self._force_end()
                    return
                if not self._tearing_down and self._thread.silent_for(now) >= UNRESPONSIVE:
                    self._replace_loop(_NOBODY, 0.0)
            else:
                self._watch_for_a_blocked_loop(now)
            self._scheduler.refresh_board()
        if self._thread.error is not None:
            raise self._thread.error

    async def _drive(self, generation: int) -> None:
        """What each loop thread runs; a fresh loop carries on from the shared state."""
        import asyncio

        if generation == self._scheduler.generation:
            self._fixtures.use_loop(asyncio.get_running_loop())
        if not self._started_run:
            self._started_run = True
            self._on_run_start()
        if not await self._scheduler.run(generation):
            return  # this loop was abandoned: a fresh one carries on
        self._tearing_down = True
        await self._fixtures.teardown(self._pool, self._teardown_timeout, self._stop, self._errors)

    def _watch_for_a_blocked_loop(self, now: float) -> None:
        silent = self._thread.silent_for(now)
        if silent < TICK:
            return
        task = self._thread.current_task()
        if task is not self._holder[0]:  # one look per holding task, not one per tick
            self._holder = (task, self._blame(task))
        holder = self._holder[1]
        if holder[0] and silent >= holder[2]:
            self._replace_loop(holder, silent)

    def _blame(self, task: asyncio.Task[Any] | None) -> _Holder:
        """Who holds the loop: a check (its task or a sub-task), or an async fixture being
        created (charged to the running checks that need it)."""
        scheduler = self._scheduler
        cid = scheduler.check_holding(task)
        if cid is not None:
            timeout = scheduler.timeout_of(cid)
            return {cid: BLOCKED_LOOP.format(timeout=timeout)}, None, timeout
        fixture = self._fixtures.making(task)
        if fixture is None:
            return _NOBODY
        waiting = scheduler.running_that(lambda spec: self._fixtures.needs(spec.argnames, fixture))
        limit = min((scheduler.timeout_of(c) for c in waiting), default=self._teardown_timeout)
        message = BLOCKED_FIXTURE.format(fixture=fixture, timeout=limit)
        return dict.fromkeys(waiting, message), fixture, limit

    def _replace_loop(self, holder: _Holder, lost: float) -> None:
        blocked, fixture, limit = holder
        old = self._thread.loop
        if not self._scheduler.abandon_loop(blocked, fixture):
            return  # the run finished: its loop winds down (or FORCE_AFTER ends it)
        if fixture is not None:  # no later check blocks the loop again creating it
            self._fixtures.fail(fixture, f"it blocked the event loop for {limit:.1f} s "
                                         "(an async fixture called blocking code)")
        self._pool.abandon_loop(old)   # its jobs' workers may be stuck: replaced at once
        if blocked:  # the checks that start again on the fresh loop get the time back
            self._lost += lost
            self._deadline_at += lost
            self._scheduler.postpone(lost)
        self._thread = self._new_loop_thread().start()

    def _new_loop_thread(self) -> LoopThread:
        self._loops += 1
        generation = self._scheduler.generation if self._loops > 1 else 0
        return LoopThread(partial(self._drive, generation), name=f"mgn-event-loop-{self._loops}")

    def _deadline_passed(self) -> None:
        running = sorted(self._scheduler.running())
        moved = f" (moved by {self._lost:.1f} s of blocked event loops)" if self._lost else ""
        reason = f"the run deadline of {self._run_deadline:g} s{moved} passed"
        self._stop.request(reason)
        if running:
            verb = "was" if len(running) == 1 else "were"
            reason += f" while {', '.join(running)} {verb} running"
        self._errors.append(self._redactor.text(reason + "; the run was stopped"))

    def _stop_leftover_processes(self) -> None:
        stopped = self._children.stop_new() if self._children is not None else []
        if stopped and self._warn is not None:
            count = len(stopped)
            what = "1 process a check" if count == 1 else f"{count} processes checks"
            self._warn(self._redactor.text(f"stopped {what} left running: {', '.join(stopped)}"))

    def _force_end(self) -> None:
        self._scheduler.finish_now()
        cut = "interrupted" if self._stop.interrupted else f"interrupted: {self._stop.reason}"
        self._errors.extend(f"fixture {name!r} teardown {cut}" for name in self._fixtures.abandon_teardowns())

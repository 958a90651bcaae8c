"""The supervisor: runs the run on an event loop thread and watches it from the main thread.

The main thread stays free, so Ctrl-C and SIGTERM are always handled, whatever a check does.
Every ``TICK`` it looks at the loop thread's heartbeat (see ``_loopthread``) and decides:

- an async check has held the loop for its whole timeout (blocking code): the loop is
  abandoned, as the pool abandons a stuck worker; the check is ``error``, the checks in flight
  on that loop run again on a fresh loop thread, and the run goes on;
- the run must stop (a signal, the run deadline): the scheduler cancels what runs; a loop that
  does not answer within ``UNRESPONSIVE`` is replaced by a fresh one that winds the run down
  (not-run results, teardown); and ``FORCE_AFTER`` seconds after the stop the run ends
  regardless, settling every check and teardown left ("interrupted").

Async fixture values belong to the loop that created them: after a loop is abandoned, one
created there (a client bound to that loop) may not work on the fresh loop.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from time import perf_counter

from ._fixtures import FixtureManager
from ._loopthread import LoopThread
from ._pool import WorkerPool
from ._scheduler import Scheduler
from ._stop import INTERRUPTED, Stop
from .config import Redactor

__all__ = ["FORCE_AFTER", "Supervisor"]

TICK = 0.05
#: A stopping run whose loop has been silent this long gets a fresh loop to wind down on.
UNRESPONSIVE = 0.3
#: Seconds after a stop at which the run ends whatever still runs.
FORCE_AFTER = 1.5


class Supervisor:
    def __init__(self, *, stop: Stop, pool: WorkerPool, errors: list[str], redactor: Redactor,
                 run_deadline: float, teardown_timeout: float) -> None:
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
        self._holder: tuple[object, str | None] = (None, None)   # task holding the loop, its check
        self._thread = self._new_loop_thread()

    @property
    def loop_thread(self) -> LoopThread:
        """The loop the run starts on (fixtures need it before the run starts)."""
        return self._thread

    def on_signal(self) -> None:
        """Safe in a signal handler: only sets a flag that the next tick acts on."""
        self._signalled = True

    def run(self, scheduler: Scheduler, fixtures: FixtureManager, on_run_start: Callable[[], None]) -> None:
        """Run to the end (main thread); returns within ``FORCE_AFTER`` of any stop."""
        self._scheduler, self._fixtures, self._on_run_start = scheduler, fixtures, on_run_start
        deadline = perf_counter() + self._run_deadline
        self._thread.start()
        while not self._thread.done.wait(TICK):
            now = perf_counter()
            if self._signalled and not self._stop.requested:
                self._stop.request(INTERRUPTED)
            if now >= deadline and not self._stop.requested:
                self._deadline_passed()
            if self._stop.requested:
                if self._stop.elapsed() >= FORCE_AFTER:
                    self._force_end()
                    return
                if not self._tearing_down and self._thread.silent_for(now) >= UNRESPONSIVE:
                    self._replace_loop(None)
            else:
                self._watch_for_a_blocked_loop(now)
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
            self._holder = (task, self._scheduler.check_holding(task))
        culprit = self._holder[1]
        if culprit is not None and silent >= self._scheduler.timeout_of(culprit):
            self._replace_loop(culprit)

    def _replace_loop(self, culprit: str | None) -> None:
        for _ in range(self._scheduler.abandon_loop(culprit)):
            self._pool.abandon()   # their workers may be stuck on the old loop
        self._thread = self._new_loop_thread().start()

    def _new_loop_thread(self) -> LoopThread:
        self._loops += 1
        generation = self._scheduler.generation if self._loops > 1 else 0
        return LoopThread(partial(self._drive, generation), name=f"mgn-event-loop-{self._loops}")

    def _deadline_passed(self) -> None:
        running = sorted(self._scheduler.running())
        reason = f"the run deadline of {self._run_deadline:g} s passed"
        self._stop.request(reason)
        if running:
            verb = "was" if len(running) == 1 else "were"
            reason += f" while {', '.join(running)} {verb} running"
        self._errors.append(self._redactor.text(reason + "; the run was stopped"))

    def _force_end(self) -> None:
        self._scheduler.finish_now()
        cut = "interrupted" if self._stop.interrupted else f"interrupted: {self._stop.reason}"
        self._errors.extend(f"fixture {name!r} teardown {cut}" for name in self._fixtures.abandon_teardowns())

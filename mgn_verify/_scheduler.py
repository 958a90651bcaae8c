"""The topological scheduler: a ready set fed to a bounded number of concurrent checks.

A check becomes ready when every check it requires has a final result. If one of them did
not pass (``fail``, ``error`` or ``blocked``) it is ``blocked`` without running, and its
``blocked_by`` names the root causes (never the intermediate blocked checks). If one was
skipped, it is skipped too: "not applicable" propagates.

``--fail-fast`` stops scheduling after the first unwaived ``fail``/``error`` and lets the
running checks finish; a ``Stop`` (Ctrl-C, SIGTERM, the run deadline) cancels the running ones
as well. Either way every selected check ends with a result, so every report is complete; an
exception escaping a check's task (a bug of ours) is an ``error`` of that check, never the end
of the run.

The state lives on the object, not in the coroutine: when an async check blocks the event
loop, the supervisor abandons that loop (``abandon_loop``) and calls ``run`` again on a fresh
one, which carries on from here. A lock, the current ``_Epoch`` and the ``generation`` fence
the abandoned loop off: whatever it does when (if ever) it wakes up, it can no longer touch
the results nor fire a hook. Settled results wait in an outbox that the current loop
publishes (hooks run outside the lock). Once every check has a result the run is
``finished``: no loop is abandoned or started any more.

The ``RunningBoard`` (the watchdog) is shown what really executes (``_board``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import Any

from ._board import Executing, RunningBoard
from ._graph import Graph
from ._loopthread import waits_on
from ._model import CheckSpec, Result, Status
from ._runner import CheckRunner, apply_waiver, finished, redact
from ._stop import INTERRUPTED, Stop
from ._text import describe_exception
from ._waivers import WaiverBook
from .config import Redactor

__all__ = ["BLOCKED_FIXTURE", "BLOCKED_LOOP", "RunningBoard", "Scheduler"]

BLOCKED_LOOP = "blocked the event loop for {timeout:.1f} s: an async check called blocking code"
BLOCKED_FIXTURE = ("fixture {fixture!r} blocked the event loop for {timeout:.1f} s: "
                   "an async fixture called blocking code")


class _Epoch:
    """What one event loop's pass owns: its check tasks and their completions."""

    __slots__ = ("completed", "tasks", "wake")

    def __init__(self) -> None:
        self.tasks: dict[asyncio.Task[Result], str] = {}
        self.completed: deque[asyncio.Task[Result]] = deque()
        self.wake = asyncio.Event()

    def on_done(self, task: asyncio.Task[Result]) -> None:
        # O(1) per completion, however many checks run at once.
        self.completed.append(task)
        self.wake.set()


class Scheduler:
    def __init__(self, graph: Graph, selected: list[str], runner: CheckRunner, *,
                 concurrency: int, fail_fast: bool, preset: Mapping[str, str],
                 on_start: Callable[[CheckSpec], None], on_result: Callable[[Result], None],
                 redactor: Redactor, waivers: WaiverBook, stop: Stop, default_timeout: float,
                 board: RunningBoard | None = None) -> None:
        self._graph = graph
        self._selected = selected          # report order
        self._runner = runner
        self._concurrency = max(1, concurrency)
        self._fail_fast = fail_fast
        self._preset = preset              # id -> reason: skipped without running (--skip)
        self._on_start = on_start
        self._on_result = on_result
        self._redactor = redactor
        self._waivers = waivers
        self._stop = stop
        self._default_timeout = default_timeout
        self._board = Executing(board)
        chosen = set(selected)
        self._requires = {cid: tuple(d for d in graph.requires[cid] if d in chosen) for cid in selected}
        dependents = graph.dependents()
        self._dependents = {cid: [c for c in dependents[cid] if c in chosen] for cid in selected}
        self.results: dict[str, Result] = {}
        self._waiting = {cid: len(self._requires[cid]) for cid in selected}
        self._ready: deque[str] = deque(cid for cid in selected if self._waiting[cid] == 0)
        self._started: dict[str, float] = {}   # running check -> perf_counter() at its start
        self._requeued: set[str] = set()       # in flight on an abandoned loop: to run again
        self._outbox: deque[Result] = deque()  # settled, their mgn_result not fired yet
        self._halted: str | None = None        # --fail-fast's reason
        self._finished = False
        self._lock = threading.Lock()
        self._epoch: _Epoch | None = None
        #: Bumped when a loop is abandoned: only a ``run`` of the current generation may schedule.
        self.generation = 0
        if board is not None:
            runner.watch(self._body_runs)

    @property
    def interrupted(self) -> bool:
        return self._stop.interrupted

    @property
    def finished(self) -> bool:
        """Every selected check has a result (the loop that got there tears down)."""
        return self._finished

    @property
    def _stop_reason(self) -> str | None:
        return self._stop.reason or self._halted

    def running(self) -> list[str]:
        """The running checks, oldest first."""
        with self._lock:
            return list(self._started)

    def timeout_of(self, cid: str) -> float:
        return self._spec(cid).timeout or self._default_timeout

    def running_that(self, needs: Callable[[CheckSpec], bool]) -> list[str]:
        """The running checks whose spec ``needs`` says yes to (those waiting on a fixture)."""
        with self._lock:
            running = list(self._started)
        return [cid for cid in running if needs(self._spec(cid))]

    def postpone(self, seconds: float) -> None:
        """The run deadline moved ``seconds`` later: the watchdog's firing time moves with it."""
        self._board.postpone(seconds)

    def check_holding(self, task: asyncio.Task[Any] | None) -> str | None:
        """The running check whose task is ``task`` or waits on it (a sub-task), if any."""
        if task is None:
            return None
        with self._lock:
            tasks: dict[asyncio.Task[Any], str] = dict(self._epoch.tasks) if self._epoch is not None else {}
        if task in tasks:
            return tasks[task]
        return next((cid for owner, cid in tasks.items() if waits_on(owner, task)), None)

    async def run(self, generation: int) -> bool:
        """Schedule on the running loop until every selected check has a result.

        :param generation: ``self.generation`` when this loop was started.
        :returns: ``False`` when this loop was abandoned (meanwhile or before): another one
            carries on.
        """
        epoch = _Epoch()
        with self._lock:
            if generation != self.generation or self._finished:
                return False
            self._epoch = epoch
        self._stop.subscribe(lambda: self._cancel_running(epoch))
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._epoch is not epoch:
                    return False
                collected = self._collect(epoch)
                launched = self._launch(epoch, loop)
                done = not epoch.tasks and (not self._ready or self._stop_reason is not None)
                if done:
                    self._mark_not_run()
                    self._epoch = None
                    self._finished = True
                if collected or launched:
                    self._board.show()
            self._publish(generation, launched)
            if done:
                return True
            if not epoch.completed:
                epoch.wake.clear()
                await epoch.wake.wait()

    def abandon_loop(self, blocked: Mapping[str, str] | None = None, fixture: str | None = None) -> bool:
        """The current loop is stuck: forget it (called from the supervisor's thread).

        Checks that finished keep their result; those in ``blocked`` (check id -> message: the
        check holding the loop, or those waiting on the ``fixture`` holding it) are an ``error``;
        the others in flight are cut when the run is stopping (a signal, the run deadline), else
        they go back to the front of the queue, to run again on the next loop (also after
        ``--fail-fast``: running checks finish). Their results wait in the outbox for the next
        loop to publish: a slow hook never holds the supervisor.

        :returns: ``False`` when the run had already finished: nothing was abandoned and no
            loop may start (the finishing one tears down, or the run ends).
        """
        blocked = blocked or {}
        with self._lock:
            if self._finished:
                return False
            epoch, self._epoch = self._epoch, None
            self.generation += 1
            if epoch is None:
                return True
            requeue = []
            for task, cid in list(epoch.tasks.items()):
                started = self._started.pop(cid)
                self._not_executing(cid)
                if task.done():
                    self._record(self._outcome(task, cid, started))
                elif cid in blocked:
                    self._record(self._blocked(cid, started, blocked[cid], fixture))
                elif self._stop.reason is not None:
                    self._record(self._cut(cid, started))
                else:
                    requeue.append(cid)
            epoch.tasks.clear()
            self._ready.extendleft(reversed(requeue))
            self._requeued.update(requeue)
            self._board.show()
        return True

    def finish_now(self) -> None:
        """The run must end now: fence every loop off (none fires a hook any more), settle every
        check left, and publish what is waiting (on the caller's thread)."""
        self.abandon_loop()
        with self._lock:
            self.generation += 1   # also a loop that finished and is still publishing
            self._epoch = None
            self._mark_not_run()
            self._finished = True
            generation = self.generation
        self._publish(generation, ())

    # -- on the loop ----------------------------------------------------------------------

    def _launch(self, epoch: _Epoch, loop: asyncio.AbstractEventLoop) -> list[CheckSpec]:
        """Start ready checks; returns those starting for the first time (a re-queued one is
        announced once: ``mgn_check_start`` fired on the loop it first ran on)."""
        launched: list[CheckSpec] = []
        requeued = self._requeued
        while self._ready and len(epoch.tasks) < self._concurrency and self._stop.reason is None:
            cid = self._ready[0]
            again = bool(requeued) and cid in requeued
            if self._halted is not None and not again:  # --fail-fast: only running checks go on
                break
            self._ready.popleft()
            if cid in self._preset:  # settling it may ready others: the loop goes on
                self._settle(finished(self._spec(cid), Status.SKIP, self._preset[cid], self._requires[cid],
                                      redactor=self._redactor))
                continue
            spec = self._spec(cid)
            task = loop.create_task(self._runner.run(spec, self._requires[cid]))
            task.add_done_callback(epoch.on_done)
            epoch.tasks[task] = cid
            self._started[cid] = perf_counter()
            if spec.is_async:
                self._board.start(cid)
            if again:
                requeued.discard(cid)
            else:
                launched.append(spec)
        return launched

    def _collect(self, epoch: _Epoch) -> bool:
        collected = bool(epoch.completed)
        while epoch.completed:
            task = epoch.completed.popleft()
            cid = epoch.tasks.pop(task)
            self._not_executing(cid)
            self._record(self._outcome(task, cid, self._started.pop(cid)))
        return collected

    def _outcome(self, task: asyncio.Task[Result], cid: str, started: float) -> Result:
        """A finished task's result: cut if cancelled, an ``error`` if it raised (a bug of ours
        must cost one check its result, never the run its report)."""
        if task.cancelled():
            return self._cut(cid, started)
        exc = task.exception()
        if exc is None:
            return task.result()
        result = finished(self._spec(cid), Status.ERROR,
                          f"internal error while finishing the check: {describe_exception(exc)}",
                          self._requires[cid])
        result.duration_s, result.attempts = perf_counter() - started, 1
        return redact(result, self._redactor)

    def _body_runs(self, cid: str, running: bool) -> None:
        """A worker starts or ends a sync check's body (on the worker's thread)."""
        with self._lock:
            if running:
                self._board.start(cid, show=True)
            else:
                self._board.end(cid)

    def refresh_board(self) -> None:
        """Show the board as it is now (the supervisor's tick)."""
        with self._lock:
            self._board.show()

    def _not_executing(self, cid: str) -> None:
        """(Under the lock.) An async check's result came (a sync check's body is followed by
        its worker, which may still run it)."""
        if self._spec(cid).is_async:
            self._board.end(cid)

    def _cancel_running(self, epoch: _Epoch) -> None:
        with self._lock:
            tasks = list(epoch.tasks) if self._epoch is epoch else []
        for task in tasks:
            task.cancel()
        epoch.wake.set()

    # -- results ----------------------------------------------------------------------------

    def _publish(self, generation: int, launched: Iterable[CheckSpec]) -> None:
        """Fire the hooks, outside the lock (a slow hook never holds it), as long as the caller's
        loop is current: an abandoned loop that wakes up never fires one, even mid-batch."""
        outbox = self._outbox
        while outbox and self.generation == generation:
            try:
                result = outbox.popleft()
            except IndexError:  # the next loop took it meanwhile
                break
            self._on_result(result)
        for spec in launched:
            if self.generation != generation:
                break
            self._on_start(spec)

    def _record(self, result: Result) -> None:
        self._settle(result)
        if self._fail_fast and result.status in (Status.FAIL, Status.ERROR) and self._stop_reason is None:
            self._halted = f"--fail-fast stopped the run after {result.id} {result.status}"

    def _cut(self, cid: str, started: float) -> Result:
        """A check the stop cancelled: it found nothing."""
        elapsed = perf_counter() - started
        reason = self._stop.reason
        if reason is None:  # nothing of ours stopped the run: another check cancelled its task
            message = f"cancelled after {elapsed:.1f} s by code outside mgn (another check cancelled its task?)"
        elif reason == INTERRUPTED:
            message = f"interrupted after {elapsed:.1f} s"
        else:
            message = f"{reason} ({elapsed:.1f} s into the check)"
        result = finished(self._spec(cid), Status.ERROR, message, self._requires[cid])
        result.duration_s = elapsed
        return self._with_output(result)

    def _blocked(self, cid: str, started: float, message: str, fixture: str | None) -> Result:
        spec = self._spec(cid)
        result = finished(spec, Status.ERROR, message, self._requires[cid])
        result.duration_s, result.attempts = perf_counter() - started, 1
        if fixture is not None:
            result.details = {"fixture_error": fixture}
        apply_waiver(result, spec, self._waivers)
        return self._with_output(result)

    def _with_output(self, result: Result) -> Result:
        """Redacted, with what the check printed before the scheduler settled it."""
        result.output = self._runner.output_of(result.id)
        return redact(result, self._redactor)

    def _spec(self, cid: str) -> CheckSpec:
        return self._graph.specs[cid]

    def _settle(self, result: Result) -> None:
        """Record a final result and decide every dependent that became decidable."""
        queue = [result]
        while queue:
            current = queue.pop()
            self.results[current.id] = current
            self._outbox.append(current)
            if self._stop.requested:  # after a stop nothing is decided by propagation: "not run"
                continue
            for child in self._dependents[current.id]:
                self._waiting[child] -= 1
                if self._waiting[child] == 0:
                    decided = self._decide(child)
                    if decided is None:
                        self._ready.append(child)
                    else:
                        queue.append(decided)

    def _decide(self, cid: str) -> Result | None:
        """Blocked or skipped by its requirements, or ``None`` when it may run."""
        deps = [self.results[d] for d in self._requires[cid]]
        roots: list[str] = []
        for dep in deps:
            if dep.status.blocks_dependents:
                for root in dep.blocked_by or (dep.id,):
                    if root not in roots:
                        roots.append(root)
        spec = self._spec(cid)
        if roots:
            message = "blocked by " + ", ".join(f"{r} ({self.results[r].status})" for r in roots)
            return redact(finished(spec, Status.BLOCKED, message, self._requires[cid], tuple(roots)),
                          self._redactor)
        skipped = [d.id for d in deps if d.status is Status.SKIP]
        if skipped:
            return finished(spec, Status.SKIP, "not applicable: requires " + ", ".join(skipped)
                            + " which was skipped", self._requires[cid], redactor=self._redactor)
        return None

    def _mark_not_run(self) -> None:
        reason = f"not run: {self._stop_reason or INTERRUPTED}"
        for cid in self._selected:
            if cid not in self.results:
                result = finished(self._spec(cid), Status.SKIP, reason, self._requires[cid], redactor=self._redactor)
                self.results[cid] = result
                self._outbox.append(result)

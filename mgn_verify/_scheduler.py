"""The topological scheduler: a ready set fed to a bounded number of concurrent checks.

A check becomes ready when every check it requires has a final result. If one of them did
not pass (``fail``, ``error`` or ``blocked``) it is ``blocked`` without running, and its
``blocked_by`` names the root causes (never the intermediate blocked checks). If one was
skipped, it is skipped too: "not applicable" propagates.

``--fail-fast`` stops scheduling after the first unwaived ``fail``/``error`` and lets the
running checks finish; a ``Stop`` (Ctrl-C, SIGTERM, the run deadline) cancels the running ones
as well. Either way every selected check ends with a result, so every report is complete.

The state lives on the object, not in the coroutine: when an async check blocks the event
loop, the supervisor abandons that loop (``abandon_loop``) and calls ``run`` again on a fresh
one, which carries on from here. A lock and the current ``_Epoch`` fence the abandoned loop
off: whatever it does when (if ever) it wakes up, it can no longer touch the results.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, Protocol

from ._graph import Graph
from ._loopthread import waits_on
from ._model import CheckSpec, Result, Status
from ._runner import CheckRunner, apply_waiver, finished, redact
from ._stop import INTERRUPTED, Stop
from ._waivers import WaiverBook
from .config import Redactor

__all__ = ["BLOCKED_LOOP", "RunningBoard", "Scheduler"]

BLOCKED_LOOP = "blocked the event loop for {timeout:.1f} s: an async check called blocking code"


class RunningBoard(Protocol):
    """Told which checks are running, oldest first (the watchdog names them if it must fire)."""

    def show(self, running: list[str]) -> None: ...


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
        self._board = board
        chosen = set(selected)
        self._requires = {cid: tuple(d for d in graph.requires[cid] if d in chosen) for cid in selected}
        self._dependents: dict[str, list[str]] = {cid: [] for cid in selected}
        for cid in selected:
            for dep in self._requires[cid]:
                self._dependents[dep].append(cid)
        self.results: dict[str, Result] = {}
        self._waiting = {cid: len(self._requires[cid]) for cid in selected}
        self._ready: deque[str] = deque(cid for cid in selected if self._waiting[cid] == 0)
        self._started: dict[str, float] = {}   # running check -> perf_counter() at its start
        self._halted: str | None = None        # --fail-fast's reason
        self._lock = threading.Lock()
        self._epoch: _Epoch | None = None
        #: Bumped when a loop is abandoned: only a ``run`` of the current generation may schedule.
        self.generation = 0

    @property
    def interrupted(self) -> bool:
        return self._stop.interrupted

    @property
    def _stop_reason(self) -> str | None:
        return self._stop.reason or self._halted

    def running(self) -> list[str]:
        """The running checks, oldest first."""
        with self._lock:
            return list(self._started)

    def timeout_of(self, cid: str) -> float:
        return self._spec(cid).timeout or self._default_timeout

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
            if generation != self.generation:
                return False
            self._epoch = epoch
        self._stop.subscribe(lambda: self._cancel_running(epoch))
        loop = asyncio.get_running_loop()
        while True:
            settled: list[Result] = []
            with self._lock:
                if self._epoch is not epoch:
                    return False
                self._collect(epoch, settled)
                launched = self._launch(epoch, loop, settled)
                done = not epoch.tasks and (not self._ready or self._stop_reason is not None)
                if done:
                    self._mark_not_run(settled)
                    self._epoch = None
                running = list(self._started) if self._board is not None and (settled or launched) else None
            self._publish(settled, running)
            for spec in launched:
                self._on_start(spec)
            if done:
                return True
            if not epoch.completed:
                epoch.wake.clear()
                await epoch.wake.wait()

    def abandon_loop(self, culprit: str | None = None) -> int:
        """The current loop is stuck: forget it (called from the supervisor's thread).

        Checks that finished keep their result; ``culprit``, the check blocking the loop, is an
        ``error``; the others in flight are cut when the run is stopping, else they go back to
        the front of the queue, to run again on the next loop.

        :returns: how many sync checks (or fixture resolutions) were in flight: their workers
            may be stuck too.
        """
        settled: list[Result] = []
        with self._lock:
            epoch, self._epoch = self._epoch, None
            self.generation += 1
            if epoch is None:
                return 0
            in_flight, requeue = 0, []
            for task, cid in list(epoch.tasks.items()):
                started = self._started.pop(cid)
                spec = self._spec(cid)
                in_flight += bool(not spec.is_async or spec.argnames)
                if task.done() and not task.cancelled() and task.exception() is None:
                    self._record(task.result(), settled)
                elif cid == culprit:
                    self._record(self._blocked(cid, started), settled)
                elif self._stop_reason is not None:
                    self._record(self._cut(cid, started), settled)
                else:
                    requeue.append(cid)
            epoch.tasks.clear()
            self._ready.extendleft(reversed(requeue))
        self._publish(settled, None)
        return in_flight

    def finish_now(self) -> None:
        """The run is stopping and its loop did not wind down in time: settle everything now."""
        self.abandon_loop()
        settled: list[Result] = []
        with self._lock:
            self._mark_not_run(settled)
        self._publish(settled, None)

    # -- on the loop ----------------------------------------------------------------------

    def _launch(self, epoch: _Epoch, loop: asyncio.AbstractEventLoop, settled: list[Result]) -> list[CheckSpec]:
        launched: list[CheckSpec] = []
        while self._ready and len(epoch.tasks) < self._concurrency and self._stop_reason is None:
            cid = self._ready.popleft()
            if cid in self._preset:  # settling it may ready others: the loop goes on
                self._settle(finished(self._spec(cid), Status.SKIP, self._preset[cid], self._requires[cid]),
                             settled)
                continue
            spec = self._spec(cid)
            task = loop.create_task(self._runner.run(spec, self._requires[cid]))
            task.add_done_callback(epoch.on_done)
            epoch.tasks[task] = cid
            self._started[cid] = perf_counter()
            launched.append(spec)
        return launched

    def _collect(self, epoch: _Epoch, settled: list[Result]) -> None:
        while epoch.completed:
            task = epoch.completed.popleft()
            cid = epoch.tasks.pop(task)
            started = self._started.pop(cid)
            self._record(self._cut(cid, started) if task.cancelled() else task.result(), settled)

    def _cancel_running(self, epoch: _Epoch) -> None:
        with self._lock:
            tasks = list(epoch.tasks) if self._epoch is epoch else []
        for task in tasks:
            task.cancel()
        epoch.wake.set()

    # -- results ----------------------------------------------------------------------------

    def _publish(self, settled: list[Result], running: list[str] | None) -> None:
        """Hooks and the watchdog board, outside the lock (a slow hook never holds it)."""
        if running is not None and self._board is not None:
            self._board.show(running)
        for result in settled:
            self._on_result(result)

    def _record(self, result: Result, settled: list[Result]) -> None:
        self._settle(result, settled)
        if self._fail_fast and result.status in (Status.FAIL, Status.ERROR) and self._stop_reason is None:
            self._halted = f"--fail-fast stopped the run after {result.id} {result.status}"

    def _cut(self, cid: str, started: float) -> Result:
        """A check the stop cancelled: it found nothing."""
        elapsed = perf_counter() - started
        reason = self._stop.reason or INTERRUPTED
        message = (f"interrupted after {elapsed:.1f} s" if reason == INTERRUPTED
                   else f"{reason} ({elapsed:.1f} s into the check)")
        result = finished(self._spec(cid), Status.ERROR, message, self._requires[cid])
        result.duration_s = elapsed
        return result

    def _blocked(self, cid: str, started: float) -> Result:
        spec = self._spec(cid)
        result = finished(spec, Status.ERROR, BLOCKED_LOOP.format(timeout=self.timeout_of(cid)),
                          self._requires[cid])
        result.duration_s, result.attempts = perf_counter() - started, 1
        apply_waiver(result, spec, self._waivers)
        return redact(result, self._redactor)

    def _spec(self, cid: str) -> CheckSpec:
        return self._graph.specs[cid]

    def _settle(self, result: Result, settled: list[Result]) -> None:
        """Record a final result and decide every dependent that became decidable."""
        queue = [result]
        while queue:
            current = queue.pop()
            self.results[current.id] = current
            settled.append(current)
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
                            + " which was skipped", self._requires[cid])
        return None

    def _mark_not_run(self, settled: list[Result]) -> None:
        reason = f"not run: {self._stop_reason or INTERRUPTED}"
        for cid in self._selected:
            if cid not in self.results:
                result = finished(self._spec(cid), Status.SKIP, reason, self._requires[cid])
                self.results[cid] = result
                settled.append(result)

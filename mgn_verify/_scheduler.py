"""The topological scheduler: a ready set fed to a bounded number of concurrent checks.

A check becomes ready when every check it requires has a final result. If one of them did
not pass (``fail``, ``error`` or ``blocked``) it is ``blocked`` without running, and its
``blocked_by`` names the root causes (never the intermediate blocked checks). If one was
skipped, it is skipped too: "not applicable" propagates.

``--fail-fast`` stops scheduling after the first unwaived ``fail``/``error`` and lets the
running checks finish; ``interrupt()`` (Ctrl-C) cancels the running ones as well. Either way
every selected check ends with a result, so every report is complete.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping

from ._graph import Graph
from ._model import CheckSpec, Result, Status
from ._runner import CheckRunner, finished, redact
from .config import Redactor

__all__ = ["Scheduler"]


class Scheduler:
    def __init__(self, graph: Graph, selected: list[str], runner: CheckRunner, *,
                 concurrency: int, fail_fast: bool, preset: Mapping[str, str],
                 on_start: Callable[[CheckSpec], None], on_result: Callable[[Result], None],
                 redactor: Redactor) -> None:
        self._graph = graph
        self._selected = selected          # report order
        self._runner = runner
        self._concurrency = max(1, concurrency)
        self._fail_fast = fail_fast
        self._preset = preset              # id -> reason: skipped without running (--skip)
        self._on_start = on_start
        self._on_result = on_result
        self._redactor = redactor
        chosen = set(selected)
        self._requires = {cid: tuple(d for d in graph.requires[cid] if d in chosen) for cid in selected}
        self._dependents: dict[str, list[str]] = {cid: [] for cid in selected}
        for cid in selected:
            for dep in self._requires[cid]:
                self._dependents[dep].append(cid)
        self.results: dict[str, Result] = {}
        self._stop_reason: str | None = None
        self._running: dict[asyncio.Task[Result], str] = {}
        self._wake = asyncio.Event()

    @property
    def interrupted(self) -> bool:
        return self._stop_reason == "interrupted"

    def interrupt(self) -> None:
        """Ctrl-C: stop scheduling and cancel what runs; the run then ends promptly."""
        if self._stop_reason != "interrupted":
            self._stop_reason = "interrupted"
            for task in self._running:
                task.cancel()
            self._wake.set()

    async def run(self) -> dict[str, Result]:
        waiting = {cid: len(self._requires[cid]) for cid in self._selected}
        ready: deque[str] = deque(cid for cid in self._selected if waiting[cid] == 0)
        started: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        # Done callbacks feed this queue: O(1) per completion, however many checks run at once.
        completed: deque[asyncio.Task[Result]] = deque()

        def on_done(task: asyncio.Task[Result]) -> None:
            completed.append(task)
            self._wake.set()

        while ready or self._running:
            while ready and len(self._running) < self._concurrency and self._stop_reason is None:
                cid = ready.popleft()
                if cid in self._preset:
                    self._settle(finished(self._spec(cid), Status.SKIP, self._preset[cid], self._requires[cid]),
                                 waiting, ready)
                    continue
                spec = self._spec(cid)
                self._on_start(spec)
                started[cid] = loop.time()
                task = asyncio.ensure_future(self._runner.run(spec, self._requires[cid]))
                self._running[task] = cid
                task.add_done_callback(on_done)
            if not self._running:
                if self._stop_reason is not None or not ready:
                    break
                continue  # only presets were ready: settling them may have readied others
            if not completed:
                self._wake.clear()
                await self._wake.wait()
            while completed:
                task = completed.popleft()
                cid = self._running.pop(task)
                if task.cancelled():
                    elapsed = loop.time() - started[cid]
                    result = finished(self._spec(cid), Status.ERROR,
                                      f"interrupted after {elapsed:.1f} s", self._requires[cid])
                    result.duration_s = elapsed
                else:
                    result = task.result()
                self._settle(result, waiting, ready)
                if self._fail_fast and result.status in (Status.FAIL, Status.ERROR) \
                        and self._stop_reason is None:
                    self._stop_reason = f"--fail-fast stopped the run after {cid} {result.status}"
        self._mark_not_run()
        return self.results

    def _spec(self, cid: str) -> CheckSpec:
        return self._graph.specs[cid]

    def _settle(self, result: Result, waiting: dict[str, int], ready: deque[str]) -> None:
        """Record a final result and decide every dependent that became decidable."""
        queue = [result]
        while queue:
            current = queue.pop()
            self.results[current.id] = current
            self._on_result(current)
            if self.interrupted:  # after Ctrl-C nothing is decided by propagation: "not run"
                continue
            for child in self._dependents[current.id]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    decided = self._decide(child)
                    if decided is None:
                        ready.append(child)
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

    def _mark_not_run(self) -> None:
        reason = f"not run: {self._stop_reason}"
        for cid in self._selected:
            if cid not in self.results:
                result = finished(self._spec(cid), Status.SKIP, reason, self._requires[cid])
                self.results[cid] = result
                self._on_result(result)

"""Fixture values for one run: created lazily and once, shared, torn down at the end.

Resolution (``FixtureManager.resolve``) runs on a worker thread, never on the event loop:
fixtures may block (opening a connection). Each fixture has its own lock, so two checks that
need it at the same time create it once. A failure is cached too: every check that needs the
fixture gets the same ``FixtureFailed`` (one root cause, not N), without retrying it N times.
Anything a fixture raises is its failure, ``SystemExit`` and ``KeyboardInterrupt`` included
(Ctrl-C never raises inside: the run's signal handlers only set a flag).

Waiting is bounded: for another check creating the fixture, or for an async fixture on the
event loop, a worker waits at most until the check's deadline, the run's stop, or the loop being
abandoned; then it gives up (``GaveUp``, not cached: a later check may create it) and is free.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Awaitable, Iterable, Mapping
from time import perf_counter
from typing import Any

from ._collect import FixtureDef
from ._loopthread import waits_on
from ._pool import WorkerPool
from ._stop import Stop
from ._text import describe_exception

__all__ = ["STOP_GRACE", "FixtureFailed", "FixtureManager", "GaveUp"]

#: Once the run stops, the teardowns still to run share this many seconds.
STOP_GRACE = 1.0
#: How often a waiting worker looks whether it should give up (only while it waits).
_SLICE = 0.05


class FixtureFailed(Exception):
    """A fixture raised while being created; ``str()`` names the fixture and the cause."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(f"fixture {name!r} failed: {cause}")
        self.fixture = name


class GaveUp(FixtureFailed):
    """Waiting for a fixture was given up (deadline, stop, abandoned loop): not cached."""


class FixtureManager:
    def __init__(self, defs: Mapping[str, FixtureDef], values: Mapping[str, Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._defs = defs
        self._values: dict[str, Any] = dict(values)   # built-ins (``config``) and created ones
        self._failed: dict[str, FixtureFailed] = {}
        self._locks = {name: threading.Lock() for name in defs}
        self._finalizers: list[tuple[str, Any]] = []   # (name, generator) in creation order
        self._loop = loop
        self._guard = threading.Lock()
        self._stop: Stop | None = None
        self._tearing_down = False
        self._making = _Making()

    def watch(self, stop: Stop) -> None:
        """Waiting workers give up once ``stop`` is requested."""
        self._stop = stop

    def resolve(self, names: Iterable[str], deadline: float | None = None,
                _stack: tuple[str, ...] = ()) -> dict[str, Any]:
        """The values of ``names``; raises ``FixtureFailed`` for the first one that fails.

        :param deadline: ``perf_counter()`` instant (the check's timeout) after which waiting
            for a fixture is given up.
        """
        return {name: self._get(name, _stack, deadline) for name in names}

    def _get(self, name: str, stack: tuple[str, ...], deadline: float | None) -> Any:
        if name in self._values:
            return self._values[name]
        if name in stack:
            raise FixtureFailed(name, "fixture dependency cycle: " + " -> ".join((*stack, name)))
        lock = self._locks[name]
        while not lock.acquire(timeout=_SLICE):  # another check is creating it
            self._give_up_if_due(name, None, deadline)
        try:
            if name in self._values:
                return self._values[name]
            if name in self._failed:
                raise self._failed[name]
            fixture = self._defs[name]
            try:
                kwargs = self.resolve(fixture.argnames, deadline, (*stack, name))
                value = self._create(fixture, kwargs, deadline)
            except GaveUp:
                raise
            except FixtureFailed as exc:  # a fixture this one needs failed: that is the root cause
                self._failed[name] = exc
                raise
            except BaseException as exc:  # even sys.exit() is the fixture's failure
                self._failed[name] = FixtureFailed(name, describe_exception(exc))
                raise self._failed[name] from None
            self._values[name] = value
            return value
        finally:
            lock.release()

    def _create(self, fixture: FixtureDef, kwargs: dict[str, Any], deadline: float | None) -> Any:
        func = fixture.func
        if inspect.isasyncgenfunction(func):
            agen = func(**kwargs)
            value = self._on_loop(fixture.name, agen.__anext__(), deadline)
            self._remember(fixture.name, agen)
            return value
        if inspect.iscoroutinefunction(func):
            return self._on_loop(fixture.name, func(**kwargs), deadline)
        if inspect.isgeneratorfunction(func):
            gen = func(**kwargs)
            value = next(gen)
            self._remember(fixture.name, gen)
            return value
        return func(**kwargs)

    def _remember(self, name: str, gen: Any) -> None:
        with self._guard:
            self._finalizers.append((name, gen))

    def _on_loop(self, name: str, awaitable: Awaitable[Any], deadline: float | None) -> Any:
        """Run ``awaitable`` on the run's loop; what it raises is raised here, on the worker
        (a SystemExit raised on the loop would end the loop, and with it the run)."""
        loop = self._loop
        wrapped = _settled(awaitable, self._making, name)
        try:
            future = asyncio.run_coroutine_threadsafe(wrapped, loop)
        except RuntimeError:  # the loop closed meanwhile (the run moved on without it)
            wrapped.close()
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise GaveUp(name, "its event loop ended before it was created") from None
        while True:
            try:
                value, exc = future.result(timeout=_SLICE)
            except concurrent.futures.TimeoutError:
                try:
                    self._give_up_if_due(name, loop, deadline)
                except GaveUp:
                    future.cancel()
                    raise
                continue
            except concurrent.futures.CancelledError:  # its loop was closed under it
                raise GaveUp(name, "its event loop ended before it was created") from None
            if exc is not None:
                raise exc
            return value

    def _give_up_if_due(self, name: str, loop: asyncio.AbstractEventLoop | None, deadline: float | None) -> None:
        if loop is not None and self._loop is not loop:
            raise GaveUp(name, "its event loop was abandoned (an async check blocked it)")
        if self._stop is not None and self._stop.requested:
            raise GaveUp(name, "the run is stopping")
        if deadline is not None and perf_counter() >= deadline:
            raise GaveUp(name, "not ready within the check's timeout")

    def making(self, task: asyncio.Task[Any] | None) -> str | None:
        """The async fixture that ``task`` (or a task it waits on) is creating, if any: an async
        fixture holding the loop is charged to the checks that need it. Called from the
        supervisor's thread when the loop is stuck, never per check."""
        if task is None:
            return None
        making = self._making.snapshot()
        if task in making:
            return making[task]
        return next((name for owner, name in making.items() if waits_on(owner, task)), None)

    def needs(self, argnames: Iterable[str], name: str) -> bool:
        """Whether resolving ``argnames`` creates fixture ``name`` (directly or through others)."""
        seen: set[str] = set()
        todo = [n for n in argnames if n in self._defs]
        while todo:
            current = todo.pop()
            if current == name:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(n for n in self._defs[current].argnames if n in self._defs)
        return False

    def fail(self, name: str, cause: str) -> None:
        """``name`` failed (it blocked the loop): every check that needs it gets this failure,
        none tries to create it again."""
        self._failed.setdefault(name, FixtureFailed(name, cause))

    def use_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Async fixtures are created on this loop from now on (the run moved to a fresh loop)."""
        self._loop = loop

    async def teardown(self, pool: WorkerPool, timeout: float, stop: Stop, errors: list[str]) -> None:
        """Finish every generator fixture, newest first; one failure does not stop the others.

        Each teardown is bounded by ``timeout``. Once the run stops (Ctrl-C, SIGTERM, the run
        deadline) the one in progress is abandoned at once (its worker too) and the rest get
        what is left of ``STOP_GRACE``. A problem is appended to ``errors``, one message per
        fixture, unless the supervisor took the fixture over (``abandon_teardowns``).
        """
        with self._guard:
            if self._tearing_down:  # claimed once: a second caller (another loop) has nothing to do
                return
            self._tearing_down = True
        stopped = stop.event()
        while True:
            with self._guard:
                if not self._finalizers:
                    return
                entry = self._finalizers[-1]
            name, gen = entry
            if stop.requested:
                problem = await _finish(gen, pool, min(timeout, max(0.0, STOP_GRACE - stop.elapsed())), stop, None)
            else:
                problem = await _finish(gen, pool, timeout, stop, stopped)
            with self._guard:
                if not self._finalizers or self._finalizers[-1] is not entry:
                    return  # the run ended without waiting for it
                self._finalizers.pop()
            if problem is not None:
                errors.append(f"fixture {name!r} teardown {problem}")

    def abandon_teardowns(self) -> list[str]:
        """The run must end now: the fixtures not torn down yet (newest first) are left as they are."""
        with self._guard:
            entries, self._finalizers = self._finalizers[::-1], []
        return [name for name, _ in entries]


async def _finish(gen: Any, pool: WorkerPool, limit: float, stop: Stop, stopped: asyncio.Event | None) -> str | None:
    """One teardown: ``None``, or what went wrong ("failed: ...", "timed out ...", "interrupted")."""
    pooled = None if inspect.isasyncgen(gen) else pool.submit(lambda: _finish_sync(gen))
    job: asyncio.Future[str | None] = (asyncio.ensure_future(_finish_async(gen)) if pooled is None
                                       else pooled.future)
    waiting: set[asyncio.Future[Any]] = {job}
    if stopped is not None:
        waiting.add(asyncio.ensure_future(stopped.wait()))
    try:
        await asyncio.wait(waiting, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in waiting - {job}:
            future.cancel()
    if job.done():
        problem = job.result()
        return None if problem is None else f"failed: {problem}"
    job.cancel()
    if pooled is not None:
        pool.abandon(pooled)  # its worker may never come back: replaced at once
    if stop.requested:
        return "interrupted" if stop.interrupted else f"interrupted: {stop.reason}"
    return f"timed out after {limit:.1f} s"


def _finish_sync(gen: Any) -> str | None:
    try:
        next(gen)
    except StopIteration:
        return None
    except BaseException as exc:  # a pool job must not raise, not even SystemExit
        return describe_exception(exc)
    return "the generator yielded more than once"


async def _finish_async(agen: Any) -> str | None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return None
    except asyncio.CancelledError as exc:
        if _cancelling():
            raise
        return describe_exception(exc)  # the teardown's own, not ours
    except BaseException as exc:  # raised on the loop, SystemExit would end it
        return describe_exception(exc)
    return "the async generator yielded more than once"


async def _settled(awaitable: Awaitable[Any], making: _Making, name: str) -> tuple[Any, BaseException | None]:
    """``(value, None)`` or ``(None, exception)``: a fixture's exception never reaches the loop.
    While it runs, ``making`` knows this task creates ``name`` (a blocked loop is charged to it)."""
    task = asyncio.current_task()
    making.add(task, name)
    try:
        return await awaitable, None
    except asyncio.CancelledError as exc:
        if _cancelling():
            raise
        return None, exc   # the fixture's own CancelledError: its failure
    except BaseException as exc:
        return None, exc
    finally:
        making.discard(task)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _Making:
    """The tasks creating async fixtures right now, by the fixture they create (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[asyncio.Task[Any] | None, str] = {}

    def add(self, task: asyncio.Task[Any] | None, name: str) -> None:
        with self._lock:
            self._tasks[task] = name

    def discard(self, task: asyncio.Task[Any] | None) -> None:
        with self._lock:
            self._tasks.pop(task, None)

    def snapshot(self) -> dict[asyncio.Task[Any], str]:
        with self._lock:
            return {task: name for task, name in self._tasks.items() if task is not None}

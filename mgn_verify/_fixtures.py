"""Fixture values for one run: created lazily and once, shared, torn down at the end.

Resolution (``FixtureManager.resolve``) runs on a worker thread, never on the event loop:
fixtures may block (opening a connection). Each fixture has its own lock, so two checks that
need it at the same time create it once. A failure is cached too: every check that needs the
fixture gets the same ``FixtureFailed`` (one root cause, not N), without retrying it N times.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ._collect import FixtureDef
from ._pool import WorkerPool
from ._stop import Stop

__all__ = ["STOP_GRACE", "FixtureFailed", "FixtureManager"]

#: Once the run stops, the teardowns still to run share this many seconds.
STOP_GRACE = 1.0


class FixtureFailed(Exception):
    """A fixture raised while being created; ``str()`` names the fixture and the cause."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(f"fixture {name!r} failed: {cause}")
        self.fixture = name


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

    def resolve(self, names: Iterable[str], _stack: tuple[str, ...] = ()) -> dict[str, Any]:
        """The values of ``names``; raises ``FixtureFailed`` for the first one that fails."""
        return {name: self._get(name, _stack) for name in names}

    def _get(self, name: str, stack: tuple[str, ...]) -> Any:
        if name in self._values:
            return self._values[name]
        if name in stack:
            raise FixtureFailed(name, "fixture dependency cycle: " + " -> ".join((*stack, name)))
        with self._locks[name]:
            if name in self._values:
                return self._values[name]
            if name in self._failed:
                raise self._failed[name]
            fixture = self._defs[name]
            try:
                kwargs = self.resolve(fixture.argnames, (*stack, name))
                value = self._create(fixture, kwargs)
            except FixtureFailed as exc:  # a fixture this one needs failed: that is the root cause
                self._failed[name] = exc
                raise
            except Exception as exc:
                self._failed[name] = FixtureFailed(name, f"{type(exc).__name__}: {exc}")
                raise self._failed[name] from None
            self._values[name] = value
            return value

    def _create(self, fixture: FixtureDef, kwargs: dict[str, Any]) -> Any:
        func = fixture.func
        if inspect.isasyncgenfunction(func):
            agen = func(**kwargs)
            value = self._on_loop(agen.__anext__())
            self._remember(fixture.name, agen)
            return value
        if inspect.iscoroutinefunction(func):
            return self._on_loop(func(**kwargs))
        if inspect.isgeneratorfunction(func):
            gen = func(**kwargs)
            value = next(gen)
            self._remember(fixture.name, gen)
            return value
        return func(**kwargs)

    def _remember(self, name: str, gen: Any) -> None:
        with self._guard:
            self._finalizers.append((name, gen))

    def _on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

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
    job: asyncio.Future[str | None] = (asyncio.ensure_future(_finish_async(gen)) if inspect.isasyncgen(gen)
                                       else pool.run(lambda: _finish_sync(gen)))
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
    if not inspect.isasyncgen(gen):
        pool.abandon()  # its worker may never come back
    if stop.requested:
        return "interrupted" if stop.interrupted else f"interrupted: {stop.reason}"
    return f"timed out after {limit:.1f} s"


def _finish_sync(gen: Any) -> str | None:
    try:
        next(gen)
    except StopIteration:
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "the generator yielded more than once"


async def _finish_async(agen: Any) -> str | None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "the async generator yielded more than once"

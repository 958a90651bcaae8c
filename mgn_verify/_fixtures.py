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

__all__ = ["FixtureFailed", "FixtureManager"]


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

    async def teardown(self, run_sync: Any, timeout: float) -> list[str]:
        """Finish every generator fixture, newest first; one failure does not stop the others.

        :param run_sync: ``WorkerPool.run``-like callable that runs a function off the loop.
        :returns: one message per teardown that failed or timed out.
        """
        errors: list[str] = []
        with self._guard:
            finalizers, self._finalizers = self._finalizers[::-1], []
        for name, gen in finalizers:
            try:
                if inspect.isasyncgen(gen):
                    await asyncio.wait_for(_finish_async(gen), timeout)
                else:
                    problem = await asyncio.wait_for(run_sync(lambda g=gen: _finish_sync(g)), timeout)
                    if problem:
                        errors.append(f"fixture {name!r} teardown failed: {problem}")
            except TimeoutError:
                errors.append(f"fixture {name!r} teardown timed out after {timeout:.1f} s")
            except Exception as exc:
                errors.append(f"fixture {name!r} teardown failed: {type(exc).__name__}: {exc}")
        return errors


def _finish_sync(gen: Any) -> str | None:
    try:
        next(gen)
    except StopIteration:
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "the generator yielded more than once"


async def _finish_async(agen: Any) -> None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    raise RuntimeError("the async generator yielded more than once")

"""Running one check to its final ``Result``: attempts, timeouts, retries, waivers, redaction.

Sync checks run on the ``WorkerPool``; async checks run on the event loop. Either way the
attempt is bounded by ``asyncio.wait_for``: at the deadline the check is reported ``error``
("timed out after 5.0 s") and a stuck thread is abandoned, never waited for.
"""

from __future__ import annotations

import asyncio
from time import perf_counter  # bound at import: checks that patch time cannot skew durations
from typing import Any

from ._fixtures import FixtureManager
from ._model import CheckSpec, Result, Status
from ._outcome import CallOutcome, classify
from ._pool import WorkerPool
from ._report import RunOptions
from ._waivers import WaiverBook
from .config import Redactor

__all__ = ["CheckRunner"]

_RETRYABLE = (Status.FAIL, Status.ERROR)
_WAIT_BACKOFF_CAP = 5.0


class CheckRunner:
    def __init__(self, *, pool: WorkerPool, fixtures: FixtureManager, waivers: WaiverBook,
                 redactor: Redactor, options: RunOptions, deadline: float | None) -> None:
        self._pool = pool
        self._fixtures = fixtures
        self._waivers = waivers
        self._redactor = redactor
        self._options = options
        #: ``--wait``: keep re-running failing checks until this ``perf_counter`` instant.
        self._deadline = deadline

    async def run(self, spec: CheckSpec, requires: tuple[str, ...]) -> Result:
        started = perf_counter()
        attempts = 0
        delay = spec.retry_delay
        while True:
            attempts += 1
            outcome = await self._attempt(spec)
            if outcome.status not in _RETRYABLE:
                break
            if attempts <= spec.retries:
                await asyncio.sleep(delay * 2 ** (attempts - 1))
                continue
            if self._deadline is not None:
                backoff = min(max(delay, 0.5) * 2 ** min(attempts - 1, 8), _WAIT_BACKOFF_CAP)
                if perf_counter() + backoff < self._deadline:
                    await asyncio.sleep(backoff)
                    continue
            break
        return self._finish(spec, outcome, requires, attempts, perf_counter() - started)

    async def _attempt(self, spec: CheckSpec) -> CallOutcome:
        timeout = spec.timeout or self._options.default_timeout
        try:
            # asyncio.timeout wraps the awaited call in place: no extra Task per attempt.
            async with asyncio.timeout(timeout):
                if spec.is_async:
                    return await self._call_async(spec)
                return await self._pool.run(lambda: _call_sync(spec, self._fixtures))  # type: ignore[no-any-return]
        except TimeoutError:
            if not spec.is_async:
                self._pool.abandon()
            return CallOutcome(Status.ERROR, f"timed out after {timeout:.1f} s", {"timeout_s": timeout})
        except asyncio.CancelledError:
            if not spec.is_async:
                self._pool.abandon()
            raise

    async def _call_async(self, spec: CheckSpec) -> CallOutcome:
        try:
            kwargs = dict(spec.params)
            if spec.argnames:
                resolved = await self._pool.run(lambda: _resolve(spec, self._fixtures))
                if isinstance(resolved, BaseException):
                    return classify(spec, exc=resolved)
                kwargs.update(resolved)
            return classify(spec, await spec.func(**kwargs))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            return classify(spec, exc=exc)

    def _finish(self, spec: CheckSpec, outcome: CallOutcome, requires: tuple[str, ...],
                attempts: int, duration: float) -> Result:
        result = Result(
            id=spec.id, title=spec.title, layer=spec.layer, status=outcome.status,
            severity=spec.severity, message=outcome.message, details=outcome.details,
            remediation=spec.remediation, duration_s=duration, attempts=attempts,
            requires=requires, tags=spec.tags, target=spec.target,
        )
        apply_waiver(result, spec, self._waivers)
        return redact(result, self._redactor)


def _resolve(spec: CheckSpec, fixtures: FixtureManager) -> dict[str, Any] | BaseException:
    try:
        return fixtures.resolve(spec.argnames)
    except Exception as exc:
        return exc


def _call_sync(spec: CheckSpec, fixtures: FixtureManager) -> CallOutcome:
    try:
        kwargs = dict(spec.params)
        if spec.argnames:
            kwargs.update(fixtures.resolve(spec.argnames))
        return classify(spec, spec.func(**kwargs))
    except BaseException as exc:
        return classify(spec, exc=exc)


def apply_waiver(result: Result, spec: CheckSpec, waivers: WaiverBook) -> None:
    if result.status not in _RETRYABLE:
        return
    waiver = waivers.find(spec)
    if waiver is None:
        return
    result.waiver = waiver
    if waiver.expired:
        result.message = f"{result.message} (waiver expired on {waiver.expires})".strip()
    else:
        reason = f"; waived: {waiver.reason}" if waiver.reason else ""
        result.message = f"would be {result.status}: {result.message}{reason}"
        result.status = Status.WAIVED


def redact(result: Result, redactor: Redactor) -> Result:
    if redactor:
        result.message = redactor.text(result.message)
        result.remediation = redactor.text(result.remediation)
        result.details = redactor.data(result.details)
    return result


def finished(spec: CheckSpec, status: Status, message: str, requires: tuple[str, ...],
             blocked_by: tuple[str, ...] = ()) -> Result:
    """A result decided without running the check (blocked, skipped, not run)."""
    return Result(id=spec.id, title=spec.title, layer=spec.layer, status=status,
                  severity=spec.severity, message=message, remediation=spec.remediation,
                  requires=requires, blocked_by=blocked_by, tags=spec.tags, target=spec.target)

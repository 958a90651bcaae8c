"""Running one check to its final ``Result``: attempts, timeouts, retries, waivers, redaction.

Sync checks run on the ``WorkerPool``; async checks run on the event loop. Either way the
attempt is bounded by ``asyncio.wait_for``: at the deadline the check is reported ``error``
("timed out after 5.0 s") and a stuck thread is abandoned, never waited for. A pass is earned:
an awaitable a sync check returns is awaited within the same deadline, and any return value
other than ``None`` or a dict is an ``error``. What an attempt prints is captured (``_capture``)
and becomes the result's ``output``.
"""

from __future__ import annotations

import asyncio
import inspect
from time import perf_counter  # bound at import: checks that patch time cannot skew durations
from typing import Any

from ._capture import CURRENT, Capture, CapturingPool
from ._classify import CallOutcome, classify, describe_return
from ._fixtures import FixtureManager
from ._isolate import ISOLATION_GRACE, IsolatedCall
from ._model import CheckSpec, Result, Status
from ._pool import WorkerPool
from ._report import RunOptions
from ._safejson import to_safe_json
from ._waivers import WaiverBook
from .config import Redactor

__all__ = ["CheckRunner"]

_RETRYABLE = (Status.FAIL, Status.ERROR)
_WAIT_BACKOFF_CAP = 5.0


class CheckRunner:
    def __init__(self, *, pool: WorkerPool, fixtures: FixtureManager, waivers: WaiverBook,
                 redactor: Redactor, options: RunOptions, deadline: float | None) -> None:
        # Jobs handed to the pool carry the check's output capture to the worker thread.
        self._pool = CapturingPool(pool)
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
        last_call = False  # --wait: the attempt at the deadline is the last one
        while True:
            attempts += 1
            capture = Capture()  # per attempt: an abandoned thread cannot write into the next one
            token = CURRENT.set(capture)
            try:
                attempt_started = perf_counter()
                outcome = await self._attempt(spec)
                if outcome.returned is not None:
                    outcome = await self._settle(spec, outcome.returned, attempt_started)
            finally:
                CURRENT.reset(token)
            if outcome.status not in _RETRYABLE:
                break
            if attempts <= spec.retries:
                await asyncio.sleep(delay * 2 ** (attempts - 1))
                continue
            if self._deadline is None or last_call:
                break
            remaining = self._deadline - perf_counter()
            if remaining <= 0:
                break
            # Use the whole deadline: the last sleep is cut short, and one last attempt runs at it.
            backoff = min(max(delay, 0.5) * 2 ** min(attempts - 1, 8), _WAIT_BACKOFF_CAP)
            last_call = backoff >= remaining
            await asyncio.sleep(min(backoff, remaining))
        return self._finish(spec, outcome, requires, attempts, perf_counter() - started,
                            capture.render(self._redactor.text))

    async def _settle(self, spec: CheckSpec, value: Any, attempt_started: float) -> CallOutcome:
        """A value other than ``None`` or a dict. An awaitable from a sync check (a sync wrapper of
        an async function) is run here, on the loop, within what is left of the attempt's
        deadline; anything else is an ``error`` saying what was returned."""
        if not spec.is_async and inspect.isawaitable(value):
            timeout = spec.timeout or self._options.default_timeout
            deadline = asyncio.timeout(timeout - (perf_counter() - attempt_started))
            try:
                async with deadline:
                    value = await value
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                if isinstance(exc, TimeoutError) and deadline.expired():
                    return CallOutcome(Status.ERROR, f"timed out after {timeout:.1f} s", {"timeout_s": timeout})
                return classify(spec, exc=exc)
            outcome = classify(spec, value)
            if outcome.returned is None:
                return outcome
            value = outcome.returned
        return describe_return(value, self._redactor.text)

    async def _attempt(self, spec: CheckSpec) -> CallOutcome:
        timeout = spec.timeout or self._options.default_timeout
        # --isolate: a sync check runs in a child process that the worker kills at ``timeout``;
        # the loop's deadline below is only the backstop (see _isolate).
        isolated = (IsolatedCall(spec, self._fixtures, timeout, self._redactor)
                    if self._options.isolate and not spec.is_async else None)
        try:
            # asyncio.timeout wraps the awaited call in place: no extra Task per attempt.
            async with asyncio.timeout(timeout + ISOLATION_GRACE if isolated else timeout):
                if spec.is_async:
                    return await self._call_async(spec)
                call = isolated.run if isolated else lambda: _call_sync(spec, self._fixtures)
                return await self._pool.run(call)  # type: ignore[no-any-return]
        except TimeoutError:
            self._give_up(spec, isolated)
            return CallOutcome(Status.ERROR, f"timed out after {timeout:.1f} s", {"timeout_s": timeout})
        except asyncio.CancelledError:
            self._give_up(spec, isolated)
            raise

    def _give_up(self, spec: CheckSpec, isolated: IsolatedCall | None) -> None:
        if isolated is not None:
            isolated.kill()
        if not spec.is_async:
            self._pool.abandon()

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
                attempts: int, duration: float, output: str = "") -> Result:
        result = Result(
            id=spec.id, title=spec.title, layer=spec.layer, status=outcome.status,
            severity=spec.severity, message=outcome.message, details=outcome.details,
            remediation=spec.remediation, duration_s=duration, attempts=attempts,
            requires=requires, tags=spec.tags, target=spec.target, output=output,
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
    """Every text a check or its parameters produced, redacted (URL passwords even without
    registered secrets); ``details`` made strict-JSON-safe and bounded (``to_safe_json``).
    Ids stay as they are here (the scheduler's keys): ``RunReport.redact`` masks them before
    any report is rendered."""
    text = redactor.text
    result.title = text(result.title)
    result.message = text(result.message)
    result.remediation = text(result.remediation)
    result.output = text(result.output)
    result.target = text(result.target) if result.target is not None else None
    result.details = to_safe_json(result.details, redactor) if result.details else {}
    return result


def finished(spec: CheckSpec, status: Status, message: str, requires: tuple[str, ...],
             blocked_by: tuple[str, ...] = ()) -> Result:
    """A result decided without running the check (blocked, skipped, not run)."""
    return Result(id=spec.id, title=spec.title, layer=spec.layer, status=status,
                  severity=spec.severity, message=message, remediation=spec.remediation,
                  requires=requires, blocked_by=blocked_by, tags=spec.tags, target=spec.target)

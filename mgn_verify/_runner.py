"""Running one check to its final ``Result``: attempts, timeouts, retries, waivers, redaction.

Sync checks run on the ``WorkerPool``; async checks run on the event loop. Either way the
attempt is bounded by its timeout: at the deadline the check is reported ``error`` ("timed out
after 5.0 s") and a stuck thread is abandoned, never waited for. A sync check's clock starts when
a worker starts it (its own execution, never a wait for a worker). A ``CancelledError`` the
check raises itself (not a cancellation by the run) is its ``error`` like any exception, and a
message is bounded (``bounded_text``: redacted, then cut). A pass is earned:
an awaitable a sync check returns is awaited within the same deadline, and any return value
other than ``None`` or a dict is an ``error``. What an attempt prints is captured (``_capture``)
and becomes the result's ``output``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from functools import partial
from time import perf_counter  # bound at import: checks that patch time cannot skew durations
from typing import Any

from ._capture import CURRENT, Capture, CapturingPool
from ._classify import CallOutcome, classify, describe_return
from ._fixtures import FixtureManager
from ._isolate import ISOLATION_GRACE, IsolatedCall
from ._model import CheckSpec, Result, Status
from ._pool import Job, WorkerPool
from ._report import RunOptions
from ._safejson import MAX_STR, bounded_text, to_safe_json
from ._waivers import WaiverBook, not_waivable
from .config import Redactor

__all__ = ["CheckRunner", "uses_worker"]

_RETRYABLE = (Status.FAIL, Status.ERROR)
_WAIT_BACKOFF_CAP = 5.0
#: How often the clock of a sync attempt looks whether a worker has started it yet (rarely
#: needed: the pool replaces stuck workers at once).
_QUEUED_POLL = 0.05

#: Told on the worker thread when a sync check's body starts (``True``) and ends (``False``).
Executing = Callable[[str, bool], None]


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
        self._executing: Executing | None = None
        #: The capture of each check's current attempt, for a result the scheduler makes
        #: (interrupted, blocked the loop): what the check printed is not lost.
        self._captures: dict[str, Capture] = {}

    def watch(self, executing: Executing) -> None:
        """``executing(check_id, running)`` is called on the worker thread around each sync
        attempt's body: the watchdog learns what runs even when the loop cannot (the GIL)."""
        self._executing = executing

    async def run(self, spec: CheckSpec, requires: tuple[str, ...]) -> Result:
        started = perf_counter()
        attempts = 0
        delay = spec.retry_delay
        last_call = False  # --wait: the attempt at the deadline is the last one
        while True:
            attempts += 1
            capture = self._captures[spec.id] = Capture()  # per attempt: an abandoned thread
            token = CURRENT.set(capture)                        # cannot write into the next one
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
        self._captures.pop(spec.id, None)
        return self._finish(spec, outcome, requires, attempts, perf_counter() - started,
                            capture.render(self._redactor.text))

    def output_of(self, cid: str) -> str:
        """What ``cid``'s unfinished attempt printed so far, redacted and bounded (any thread)."""
        capture = self._captures.pop(cid, None)
        return capture.render(self._redactor.text) if capture is not None else ""

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
            except asyncio.CancelledError as exc:
                if _cancelled_by_the_run():
                    raise
                return classify(spec, exc=exc)
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
        limit = timeout + ISOLATION_GRACE if isolated else timeout
        try:
            # asyncio.timeout wraps the awaited call in place: no extra Task per attempt.
            async with asyncio.timeout(limit if spec.is_async else None) as bound:
                if spec.is_async:  # waiting for fixtures gives up at the deadline (worker freed)
                    return await self._call_async(spec, perf_counter() + timeout)
                call: Callable[[], CallOutcome] = (isolated.run if isolated
                                                   else partial(_call_sync, spec, self._fixtures, timeout))
                if self._executing is not None:
                    call = partial(_announced, self._executing, spec.id, call)
                job = self._pool.submit(call)
                clock = _ExecutionClock(job, limit, bound)
                try:
                    return await job.future  # type: ignore[no-any-return]
                finally:
                    clock.cancel()
                    self._release(job)
        except TimeoutError:
            self._give_up(spec, isolated)
            return CallOutcome(Status.ERROR, f"timed out after {timeout:.1f} s", {"timeout_s": timeout})
        except asyncio.CancelledError:
            self._give_up(spec, isolated)
            raise

    def _give_up(self, spec: CheckSpec, isolated: IsolatedCall | None) -> None:
        """The attempt is over without its result (its pool job was abandoned: ``_release``);
        an isolated child is killed."""
        if isolated is not None:
            isolated.kill()

    def _release(self, job: Job) -> None:
        """A job given up (the awaiting task was cancelled: timeout, stop) is abandoned: its
        worker, maybe stuck, is replaced at once."""
        if job.future.cancelled():
            self._pool.abandon(job)

    async def _call_async(self, spec: CheckSpec, deadline: float) -> CallOutcome:
        try:
            kwargs = dict(spec.params)
            if spec.argnames:
                job = self._pool.submit(lambda: _resolve(spec, self._fixtures, deadline))
                try:
                    resolved = await job.future
                finally:
                    self._release(job)
                if isinstance(resolved, BaseException):
                    return classify(spec, exc=resolved)
                kwargs.update(resolved)
            return classify(spec, await spec.func(**kwargs))
        except asyncio.CancelledError as exc:
            if _cancelled_by_the_run():
                raise
            return classify(spec, exc=exc)  # the check's own: an error like any other
        except BaseException as exc:
            return classify(spec, exc=exc)

    def _finish(self, spec: CheckSpec, outcome: CallOutcome, requires: tuple[str, ...],
                attempts: int, duration: float, output: str = "") -> Result:
        result = Result(
            id=spec.id, title=spec.title, layer=spec.layer, status=outcome.status,
            severity=spec.severity, message=_bounded(outcome.message, self._redactor),
            details=outcome.details,
            remediation=spec.remediation, duration_s=duration, attempts=attempts,
            requires=requires, tags=spec.tags, target=spec.target, output=output,
        )
        apply_waiver(result, spec, self._waivers)
        return redact(result, self._redactor)


def uses_worker(spec: CheckSpec) -> bool:
    """Whether an attempt of ``spec`` may occupy a pool worker (a sync check, or an async check
    resolving its fixtures)."""
    return not spec.is_async or bool(spec.argnames)


def _bounded(message: str, redactor: Redactor) -> str:
    """At most ``MAX_STR`` characters, redacted before it is cut (``redact`` redacts the rest)."""
    return message if len(message) <= MAX_STR else bounded_text(message, redactor)


def _cancelled_by_the_run() -> bool:
    """Whether the running task is being cancelled (a timeout, the run's stop), as opposed to a
    ``CancelledError`` the check raised or leaked itself."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _ExecutionClock:
    """Expires ``bound`` once ``job`` has *run* for ``limit`` seconds: time the job waited for a
    worker is not the check's. One timer per attempt, as ``asyncio.timeout`` would use."""

    __slots__ = ("_bound", "_handle", "_job", "_limit", "_loop")

    def __init__(self, job: Job, limit: float, bound: asyncio.Timeout) -> None:
        self._job, self._limit, self._bound = job, limit, bound
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(limit, self._check)

    def _check(self) -> None:
        started = self._job.started
        if started is None:  # still waiting for a worker
            self._handle = self._loop.call_later(min(_QUEUED_POLL, self._limit), self._check)
            return
        left = started + self._limit - perf_counter()
        if left > 0:
            self._handle = self._loop.call_later(left, self._check)
        else:
            self._bound.reschedule(self._loop.time())  # expires now: TimeoutError in the attempt

    def cancel(self) -> None:
        self._handle.cancel()


def _announced(executing: Executing, cid: str, call: Callable[[], CallOutcome]) -> CallOutcome:
    executing(cid, True)
    try:
        return call()
    finally:
        executing(cid, False)


def _resolve(spec: CheckSpec, fixtures: FixtureManager, deadline: float) -> dict[str, Any] | BaseException:
    try:
        return fixtures.resolve(spec.argnames, deadline)
    except BaseException as exc:  # a pool job must not raise, not even SystemExit
        return exc


def _call_sync(spec: CheckSpec, fixtures: FixtureManager, timeout: float) -> CallOutcome:
    deadline = perf_counter() + timeout  # waiting for fixtures gives up here (worker freed)
    try:
        kwargs = dict(spec.params)
        if spec.argnames:
            kwargs.update(fixtures.resolve(spec.argnames, deadline))
        return classify(spec, spec.func(**kwargs))
    except BaseException as exc:
        return classify(spec, exc=exc)


def apply_waiver(result: Result, spec: CheckSpec, waivers: WaiverBook) -> None:
    if result.status not in _RETRYABLE:
        return
    waiver = waivers.find(spec)
    if waiver is None:
        return
    if not spec.waivable:  # stays fail/error: an override could only lead to a failed operation
        result.message = not_waivable(result.message, waiver)
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
             blocked_by: tuple[str, ...] = (), *, redactor: Redactor | None = None) -> Result:
    """A result decided without running the check (blocked, skipped, not run, interrupted);
    redacted as ``redact`` does when ``redactor`` is given (hooks see it next)."""
    result = Result(id=spec.id, title=spec.title, layer=spec.layer, status=status,
                    severity=spec.severity, message=message, remediation=spec.remediation,
                    requires=requires, blocked_by=blocked_by, tags=spec.tags, target=spec.target)
    return redact(result, redactor) if redactor is not None else result

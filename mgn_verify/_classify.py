"""Classifying what a check's call produced into a status and a message.

This is the only place that decides what a check's outcome *means*: ``AssertionError`` is a
failed check (its severity picks ``fail`` or ``warn``), ``skip``/``warn`` signals choose their
own status, anything else is an ``error`` — the check could not decide. A check returns
``None`` or a dict (``{"message": ..., **details}``); any other value is an ``error`` too:
a pass must be earned, never inferred from a value nobody looked at.
"""

from __future__ import annotations

import asyncio
import inspect
import reprlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._fixtures import FixtureFailed
from ._model import CheckSpec, Severity, Status
from ._outcomes import Skipped, Warned
from ._text import describe_exception

__all__ = ["ALLOWED_RETURNS", "UNAWAITED", "CallOutcome", "classify", "describe_return", "discard"]

ALLOWED_RETURNS = "a check returns None or a dict ({'message': ..., **details})"
UNAWAITED = "returned an un-awaited coroutine: did you forget `await`?"
_SHOWN = 100  # characters of a returned value's repr shown in the message

# Generous limits: the repr is redacted *before* it is cut to _SHOWN, so a secret is never cut in
# half (a half secret would escape redaction); reprlib only keeps the cost bounded.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 2000
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 8


@dataclass(slots=True)
class CallOutcome:
    status: Status
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: A value the check returned that is neither ``None`` nor a dict; the runner awaits it (an
    #: awaitable from a sync check) or describes it with the run's redactor. The status is
    #: already ``error``, so an outcome nobody settles never becomes a pass.
    returned: Any = None


def _assert_message(exc: AssertionError) -> str:
    """A rewritten assert's message is pytest's explanation (``only 2 nodes\\nassert 2 >= 3``,
    ``+  where`` lines); a plain one's is its own message, or else the failing expression."""
    if exc.args and str(exc):
        message = str(exc)
        # `assert False, "why"` / `assert ok, "why"`: "assert False" under the message adds nothing
        custom, newline, explanation = message.rpartition("\n")
        return custom if newline and custom and explanation == "assert False" else message
    frames = traceback.extract_tb(exc.__traceback__)
    line = (frames[-1].line or "").strip() if frames else ""
    expression = line[len("assert"):].strip() if line.startswith("assert") else line
    return f"assertion failed: {expression}" if expression else "assertion failed"


def classify(spec: CheckSpec, returned: Any = None, exc: BaseException | None = None) -> CallOutcome:
    if exc is None:
        if returned is None:
            return CallOutcome(Status.PASS)
        if isinstance(returned, dict):
            details = dict(returned)
            message = details.pop("message", "")
            return CallOutcome(Status.PASS, message if isinstance(message, str) else str(message), details)
        return CallOutcome(Status.ERROR, f"returned {_a(type(returned).__name__)}", returned=returned)
    if isinstance(exc, Skipped):
        return CallOutcome(Status.SKIP, exc.message)
    if isinstance(exc, Warned):
        return CallOutcome(Status.WARN, exc.message)
    if isinstance(exc, AssertionError):
        status = Status.FAIL if spec.severity is Severity.CRITICAL else Status.WARN
        return CallOutcome(status, _assert_message(exc))
    if isinstance(exc, FixtureFailed):
        return CallOutcome(Status.ERROR, str(exc), {"fixture_error": exc.fixture})
    if isinstance(exc, asyncio.CancelledError):  # the run's own cancellations never get here
        name, colon, text = describe_exception(exc).partition(": ")
        return CallOutcome(Status.ERROR, f"{name} raised by the check{colon}{text}")
    return CallOutcome(Status.ERROR, describe_exception(exc))


def describe_return(value: Any, redact: Callable[[str], str]) -> CallOutcome:
    """The ``error`` for a value a check may not return: what it was, and what is allowed.

    An un-awaited coroutine (from an async check) is closed, so it never warns "never awaited".
    """
    if inspect.iscoroutine(value):
        discard(value)
        return CallOutcome(Status.ERROR, UNAWAITED)
    if inspect.isawaitable(value):
        discard(value)
        return CallOutcome(Status.ERROR, f"returned an un-awaited {type(value).__name__}: did you forget `await`?")
    discard(value)
    try:
        shown = redact(_REPR.repr(value))
    except Exception:  # a broken __repr__ must not hide what happened
        shown = f"<{type(value).__name__} object>"
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN - 3] + "..."
    return CallOutcome(Status.ERROR, f"returned {_a(type(value).__name__)} {shown}: {ALLOWED_RETURNS}")


def discard(value: Any) -> None:
    """Close a coroutine or generator nobody will run; cancel a future nobody will wait for."""
    if inspect.iscoroutine(value) or inspect.isgenerator(value):
        value.close()
    elif inspect.isasyncgen(value):
        value.aclose().close()  # the aclose() awaitable itself is never run: close it too
    elif isinstance(value, asyncio.Future):
        value.cancel()


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"

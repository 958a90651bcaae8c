"""Classifying what a check's call produced into a status and a message.

This is the only place that decides what an exception *means*: ``AssertionError`` is a failed
check (its severity picks ``fail`` or ``warn``), ``skip``/``warn`` signals choose their own
status, anything else is an ``error`` — the check could not decide.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from ._fixtures import FixtureFailed
from ._model import CheckSpec, Severity, Status
from ._outcomes import Skipped, Warned

__all__ = ["CallOutcome", "classify"]


@dataclass(slots=True)
class CallOutcome:
    status: Status
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _assert_message(exc: AssertionError) -> str:
    if exc.args and str(exc):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    line = (frames[-1].line or "").strip() if frames else ""
    expression = line[len("assert"):].strip() if line.startswith("assert") else line
    return f"assertion failed: {expression}" if expression else "assertion failed"


def classify(spec: CheckSpec, returned: Any = None, exc: BaseException | None = None) -> CallOutcome:
    if exc is None:
        if isinstance(returned, str):
            return CallOutcome(Status.PASS, returned)
        if isinstance(returned, dict):
            details = dict(returned)
            return CallOutcome(Status.PASS, str(details.pop("message", "")), details)
        return CallOutcome(Status.PASS)
    if isinstance(exc, Skipped):
        return CallOutcome(Status.SKIP, exc.message)
    if isinstance(exc, Warned):
        return CallOutcome(Status.WARN, exc.message)
    if isinstance(exc, AssertionError):
        status = Status.FAIL if spec.severity is Severity.CRITICAL else Status.WARN
        return CallOutcome(status, _assert_message(exc))
    if isinstance(exc, FixtureFailed):
        return CallOutcome(Status.ERROR, str(exc), {"fixture_error": exc.fixture})
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return CallOutcome(Status.ERROR, f"{name}: {message}" if message else name)

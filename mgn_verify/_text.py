"""Text the user reads, made the same way everywhere: one-line descriptions of exceptions,
"did you mean" hints, and control characters made visible."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["describe_exception", "did_you_mean", "escape_controls", "first_line"]

# C0 and C1 controls and DEL; newline is escaped too (a message is one line), tab optionally.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_KEEP_TAB = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped ("" for blank text)."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe_exception(exc: BaseException) -> str:
    """``Type: first line of the message`` (a SyntaxError with its file and line); never raises,
    even for an exception whose ``__str__`` does."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    try:
        text = first_line(str(exc))
    except Exception:  # an exception class of a plugin with a broken __str__
        text = "(its message could not be read)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or "" when none is close."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def escape_controls(text: str, *, keep_tab: bool = False) -> str:
    """``text`` with control characters shown as ``\\xNN`` escapes (``\\x1b``, ``\\x00``)."""
    pattern = _CONTROLS_KEEP_TAB if keep_tab else _CONTROLS
    return pattern.sub(lambda match: f"\\x{ord(match[0]):02x}", text)

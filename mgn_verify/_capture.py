"""Per-check capture of what checks write to ``sys.stdout`` and ``sys.stderr``.

For the duration of a run (``capture_output()``) both streams are proxies. A write looks up
the current check's ``Capture`` in a context variable: the runner sets it around each attempt
(each check runs in its own asyncio task, so async checks have their own context), and
``CapturingPool`` carries it to the worker thread that runs a sync check or creates its
fixtures. Inside a check the text goes to that check's capture; anywhere else (the framework,
the live console) it passes through to the real stream. So a check's ``print()`` never reaches
stdout, where it would corrupt ``-o json``.

Not captured: writes to the file descriptors themselves (a subprocess that inherits them,
``os.write(1, ...)``) and prints from threads a check starts with ``threading.Thread`` (which do
not inherit context; ``asyncio.to_thread`` does).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio is imported by the engine, not by whoever imports this module
    import asyncio

    from ._pool import Job, WorkerPool

__all__ = ["CURRENT", "Capture", "CapturingPool", "capture_output"]

#: Shown in a result: the first and the last this many characters of a check's output.
HEAD = TAIL = 8 * 1024
# Kept per end before redaction: a secret is redacted before the text around it is cut, and this
# margin makes sure a secret near a cut is whole when the redactor sees it.
_RAW = 64 * 1024
# Writes to one capture may come from several threads (asyncio.to_thread in a check): rare and
# short, so one lock for every capture is enough.
_LOCK = threading.Lock()


def _fresh_lock_after_fork() -> None:
    """A forked child (``--isolate``) gets its own lock: another thread of the parent may have
    held this one at the fork, and that thread does not exist in the child to release it."""
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_after_fork)

#: The capture of the check whose code runs in this context; ``None`` outside any check.
CURRENT: ContextVar[Capture | None] = ContextVar("mgn_verify_capture", default=None)


class Capture:
    """One attempt's output: the first and last ``_RAW`` characters, and how many were dropped.

    Nothing is allocated until the check writes something.
    """

    __slots__ = ("_dropped", "_head", "_head_size", "_tail", "_tail_size")

    def __init__(self) -> None:
        self._head: list[str] | None = None
        self._head_size = 0
        self._tail: deque[str] | None = None
        self._tail_size = 0
        self._dropped = 0

    def write(self, text: str) -> None:
        if not text:
            return
        with _LOCK:
            if self._head_size < _RAW:
                room = _RAW - self._head_size
                if self._head is None:
                    self._head = []
                self._head.append(text[:room])
                self._head_size += min(room, len(text))
                if len(text) <= room:
                    return
                text = text[room:]
            self._add_tail(text)

    def _add_tail(self, text: str) -> None:
        tail = self._tail
        if tail is None:
            tail = self._tail = deque()
        tail.append(text)
        self._tail_size += len(text)
        excess = self._tail_size - _RAW
        while excess > 0:  # drop from the front of the tail: the middle of the output
            first = tail[0]
            if len(first) <= excess:
                tail.popleft()
                cut = len(first)
            else:
                tail[0] = first[excess:]
                cut = excess
            self._dropped += cut
            self._tail_size -= cut
            excess -= cut

    def render(self, redact: Callable[[str], str]) -> str:
        """The output, redacted, then cut to ``HEAD`` + ``TAIL`` characters around a marker."""
        if self._head is None:  # the common case: the check printed nothing
            return ""
        with _LOCK:
            head, tail, dropped = "".join(self._head), "".join(self._tail or ()), self._dropped
        if not dropped:  # contiguous: redact it as one text (a secret may span head and tail)
            text = redact(head + tail)
            if len(text) <= HEAD + TAIL:
                return text
            return _cut(text[:HEAD], len(text) - HEAD - TAIL, text[-TAIL:])
        head, tail = redact(head), redact(tail)
        cut = dropped + max(0, len(head) - HEAD) + max(0, len(tail) - TAIL)
        return _cut(head[:HEAD], cut, tail[-TAIL:])


def _cut(head: str, count: int, tail: str) -> str:
    return f"{head}\n[... {count} characters cut ...]\n{tail}"


class _Stream:
    """Stands in for ``sys.stdout``/``sys.stderr``: a check's writes go to its capture."""

    def __init__(self, real: IO[str]) -> None:
        self._real = real
        self._binary = _BinaryStream(self)

    def write(self, text: str) -> int:
        capture = CURRENT.get()
        if capture is None:
            return self._real.write(text)
        if not isinstance(text, str):  # as a real text stream says, not later when rendering
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        capture.write(str.__str__(text))  # a str subclass's own slicing never runs in here
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if CURRENT.get() is None:
            self._real.flush()

    @property
    def buffer(self) -> _BinaryStream:
        return self._binary

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...: the real stream's
        return getattr(self._real, name)


class _BinaryStream:
    """``sys.stdout.buffer`` of the proxy: bytes a check writes are decoded into its capture."""

    def __init__(self, text: _Stream) -> None:
        self._text = text

    def write(self, data: bytes) -> int:
        capture = CURRENT.get()
        real = self._text._real
        if capture is None:
            return int(real.buffer.write(data))  # type: ignore[attr-defined]
        capture.write(bytes(data).decode(getattr(real, "encoding", None) or "utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        if CURRENT.get() is None:
            self._text._real.buffer.flush()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._text._real.buffer, name)  # type: ignore[attr-defined]


@contextmanager
def capture_output() -> Iterator[None]:
    """Route checks' writes to their captures while the block runs; always restore the streams."""
    saved = sys.stdout, sys.stderr
    try:
        if saved[0] is not None:
            sys.stdout = _Stream(saved[0])
        if saved[1] is not None:
            sys.stderr = _Stream(saved[1])
        yield
    finally:
        sys.stdout, sys.stderr = saved


class CapturingPool:
    """A ``WorkerPool`` front whose jobs run with the submitting check's capture."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def run(self, func: Callable[[], Any]) -> asyncio.Future[Any]:
        return self.submit(func).future

    def submit(self, func: Callable[[], Any]) -> Job:
        capture = CURRENT.get()
        if capture is None:
            return self._pool.submit(func)
        return self._pool.submit(partial(_run_captured, capture, func))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def _run_captured(capture: Capture, func: Callable[[], Any]) -> Any:
    token = CURRENT.set(capture)
    try:
        return func()
    finally:
        CURRENT.reset(token)

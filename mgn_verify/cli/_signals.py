"""Ctrl-C and SIGTERM in ``mgn verify``: whenever they come, the command ends with exit 130 and
every requested report complete, never a traceback nor death by signal.

``SignalScope`` covers the whole command: a signal only sets a flag, which the command turns into
an interruption at safe points (after loading, after the run, while emitting). Two regions differ:
loading plugins (``raising``: a stuck import must still end, so the signal raises
``KeyboardInterrupt`` there) and the run itself, which installs its own flag-setting handlers
inside the scope and restores these when it ends; a signal that came just before the run started
is handed on to it (``redeliverer``), so the run stops at once instead of running in full.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

from .._report import RunPlan
from ..hookspecs import hookimpl

__all__ = ["SignalScope", "interrupting_signals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalScope:
    """SIGINT and SIGTERM set ``received`` while the scope is active (main thread only; elsewhere
    the scope does nothing and ``received`` stays ``None``)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._raising = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalScope:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                with contextlib.suppress(ValueError, OSError):
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._previous.clear()

    def pending(self) -> bool:
        """Whether a signal came (the ``interrupted`` callback ``emit`` polls)."""
        return self.received is not None

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Within: a signal raises ``KeyboardInterrupt`` (as does one that already came)."""
        if self.received is not None:
            raise KeyboardInterrupt(f"signal {self.received}")
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    def redeliverer(self) -> object:
        """A plugin for the run (register it for the run's duration): once the run's own handlers
        are in place (``mgn_run_start``), a signal that came before is sent again, to them."""
        return _Redeliver(self)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._raising:
            raise KeyboardInterrupt(f"signal {signum}")


class _Redeliver:
    def __init__(self, scope: SignalScope) -> None:
        self._scope = scope

    @hookimpl
    def mgn_run_start(self, plan: RunPlan) -> None:
        if self._scope.received is not None:
            signal.raise_signal(signal.SIGINT)  # the run's handler: it only sets its stop flag


@contextlib.contextmanager
def interrupting_signals(*signals: int) -> Iterator[None]:
    """While active, these signals raise ``KeyboardInterrupt`` (as Ctrl-C does) instead of
    killing the process, so ``finally`` blocks run: temp files are removed. Only signals left at
    their default action, and only on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    replaced = [sig for sig in signals if signal.getsignal(sig) == signal.SIG_DFL]
    for sig in replaced:
        signal.signal(sig, _raise_interrupt)
    try:
        yield
    finally:
        for sig in replaced:
            if signal.getsignal(sig) == _raise_interrupt:
                signal.signal(sig, signal.SIG_DFL)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")

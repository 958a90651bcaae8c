"""A thread-safe set of active fault names shared by the lab's simulators.

Simulators ask ``faults.active("kubernetes.slow")`` on every request, so a fault injected
while the lab runs takes effect on the next request without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .._text import did_you_mean

__all__ = ["FaultSet", "UnknownFaultError"]


class UnknownFaultError(ValueError):
    """A fault name that no simulator knows."""


class FaultSet:
    """The faults a lab knows (``known``) and the ones currently injected."""

    def __init__(self, known: Iterable[str], active: Iterable[str] = ()) -> None:
        self.known: frozenset[str] = frozenset(known)
        self._active: set[str] = set()
        self._lock = threading.Lock()
        for name in active:
            self.inject(name)

    def _validate(self, name: str) -> None:
        if name not in self.known:
            raise UnknownFaultError(f"unknown fault {name!r}{did_you_mean(name, self.known)}")

    def inject(self, name: str) -> None:
        self._validate(name)
        with self._lock:
            self._active.add(name)

    def clear(self, name: str) -> None:
        self._validate(name)
        with self._lock:
            self._active.discard(name)

    def active(self, name: str) -> bool:
        # Reading a set is atomic under the GIL; no lock needed on the hot path.
        return name in self._active

    def snapshot(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._active)

"""What the watchdog is shown: the checks that really execute, oldest first.

An async check executes from its start to its result; a sync check while a worker runs its
body, as the worker itself tells (when a check holds the GIL, the loop cannot collect the
checks that finished meanwhile: they must not be named). A start is shown at once (it may be
the check that takes the GIL next); an end with the next start or ``show``. Not thread-safe:
the scheduler calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

__all__ = ["Executing", "RunningBoard"]


class RunningBoard(Protocol):
    """Told which checks are running, oldest first (the watchdog names them if it must fire).

    Called under the scheduler's lock whenever that may have changed: it must be quick, and
    must not keep ``running`` (a live view)."""

    def show(self, running: Collection[str]) -> None: ...

    def postpone(self, seconds: float) -> None:
        """The run deadline moved ``seconds`` later (time lost to a blocked event loop)."""


class Executing:
    def __init__(self, board: RunningBoard | None) -> None:
        self._board = board
        self._bodies: dict[str, int] = {}   # check -> its bodies executing (a re-run may overlap)

    def start(self, cid: str, *, show: bool = False) -> None:
        self._bodies[cid] = self._bodies.get(cid, 0) + 1
        if show:
            self.show()

    def end(self, cid: str) -> None:
        count = self._bodies.get(cid, 0)
        if count > 1:
            self._bodies[cid] = count - 1
        else:
            self._bodies.pop(cid, None)

    def show(self) -> None:
        if self._board is not None:
            self._board.show(self._bodies)

    def postpone(self, seconds: float) -> None:
        if self._board is not None:
            self._board.postpone(seconds)

"""What ``mgn verify --watch`` remembers between runs: the last states, how often each check
changed, and which checks are flapping. Pure bookkeeping (no printing, no clock of its own), so
the rules are easy to follow: the caller passes each finished run's states and the time.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..history.compare import Change, CheckState, changes

__all__ = ["Event", "Tracker", "describe_window"]


@dataclass(frozen=True, slots=True)
class Event:
    """One thing to print after a run: a change (``flapping``: the check was already flapping
    or starts with this change), and ``started_flapping`` on the change that tipped it over."""

    change: Change
    flapping: bool = False
    started_flapping: bool = False


@dataclass
class Tracker:
    """Fed one finished run at a time (``observe``); a check whose status changed ``flap_changes``
    times within the last ``flap_window`` seconds is flapping until its changes in the window
    drop below that again."""

    flap_changes: int
    flap_window: float
    runs: int = 0
    current: dict[str, CheckState] = field(default_factory=dict)
    #: Every change per check id (status changes, and appearing/disappearing after the first run).
    counts: Counter[str] = field(default_factory=Counter)
    flapping: set[str] = field(default_factory=set)
    #: Checks that were flapping at some point, in the order they started.
    flapped: list[str] = field(default_factory=list)
    _times: dict[str, deque[float]] = field(default_factory=dict)

    def observe(self, states: Mapping[str, CheckState], now: float) -> list[Event]:
        """Take a finished run's states; the changes since the previous run (none for the first)."""
        first = self.runs == 0
        self.runs += 1
        found = [] if first else changes(self.current, states)
        self.current = dict(states)
        events = [self._record(change, now) for change in found]
        self._cool_down(now)
        return events

    def _record(self, change: Change, now: float) -> Event:
        self.counts[change.id] += 1
        if change.kind != "changed":  # a check that comes or goes is not flapping between statuses
            return Event(change, flapping=change.id in self.flapping)
        times = self._times.setdefault(change.id, deque())
        times.append(now)
        self._forget_old(times, now)
        if change.id in self.flapping:
            return Event(change, flapping=True)
        if len(times) >= self.flap_changes:
            self.flapping.add(change.id)
            if change.id not in self.flapped:
                self.flapped.append(change.id)
            return Event(change, flapping=True, started_flapping=True)
        return Event(change)

    def _cool_down(self, now: float) -> None:
        """A flapping check whose changes left the window is steady again (it may flap anew)."""
        for check_id in list(self.flapping):
            times = self._times[check_id]
            self._forget_old(times, now)
            if len(times) < self.flap_changes:
                self.flapping.discard(check_id)

    def _forget_old(self, times: deque[float], now: float) -> None:
        while times and now - times[0] > self.flap_window:
            times.popleft()

    def changes_in_window(self, check_id: str) -> int:
        return len(self._times.get(check_id, ()))


def describe_window(seconds: float) -> str:
    """``10 min``, ``90 s``, ``1 h``, ``1.5 h``, ``200 ms``: a period as a person says it."""
    if seconds < 1:
        return f"{seconds * 1000:g} ms"
    if seconds >= 3600 and seconds % 360 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"

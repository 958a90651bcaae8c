"""``record_hooks()``: every hook call of every plugin manager created in this process while active.

It listens on ``mgn_verify._plugins.MANAGER_LISTENERS`` (called with each new plugin manager
before any plugin registers) and watches each manager with pluggy's hook-call monitoring. Only
in-process runs are seen: a ``mgn`` subprocess has plugin managers of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

__all__ = ["HookCall", "HookRecorder", "record_hooks"]


@dataclass(frozen=True, slots=True)
class HookCall:
    """One hook call: its name, its arguments (a shallow copy) and the plugins implementing it,
    by plugin name, in the order pluggy calls them."""

    name: str
    kwargs: dict[str, Any]
    plugins: tuple[str, ...]


class HookRecorder:
    """The hook calls seen while its ``record_hooks()`` block was active (safe to read after)."""

    def __init__(self) -> None:
        self.calls: list[HookCall] = []
        self._lock = threading.Lock()  # hooks such as mgn_result are called from worker threads
        self._active = False

    def __repr__(self) -> str:
        return f"<HookRecorder {len(self.calls)} calls{' (recording)' if self._active else ''}>"

    def names(self) -> list[str]:
        """Hook names in call order."""
        with self._lock:
            return [call.name for call in self.calls]

    def get(self, name: str) -> list[HookCall]:
        """The calls of one hook, in order (empty if it was never called)."""
        with self._lock:
            return [call for call in self.calls if call.name == name]

    def _watch(self, pm: pluggy.PluginManager) -> None:
        # Never undone: undoing pluggy monitors out of order would drop another's (nested
        # recorders, MGN_TRACE_HOOKS); an inactive recorder simply ignores the calls.
        pm.add_hookcall_monitoring(self._before, _after)

    def _before(self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        if not self._active:
            return
        call = HookCall(hook_name, dict(kwargs), tuple(impl.plugin_name for impl in reversed(impls)))
        with self._lock:
            self.calls.append(call)


def _after(*_args: object) -> None:
    """Nothing to record after a call (the result is the hook's business)."""


@contextmanager
def record_hooks() -> Iterator[HookRecorder]:
    """Record hook calls until the block ends: ``with record_hooks() as hooks: ...``."""
    from mgn_verify._plugins import MANAGER_LISTENERS

    recorder = HookRecorder()
    listener = recorder._watch
    recorder._active = True
    MANAGER_LISTENERS.append(listener)
    try:
        yield recorder
    finally:
        recorder._active = False
        MANAGER_LISTENERS.remove(listener)

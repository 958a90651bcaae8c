"""(being written) mgn verify --watch INTERVAL: re-run, print transitions, flapping, Ctrl-C summary."""

from __future__ import annotations

from ._request import RunRequest

__all__ = ["watch_runs"]


def watch_runs(request: RunRequest, interval: float, config_path: str | None) -> int:
    """Run ``request`` every ``interval`` seconds until Ctrl-C; the exit code (130 on Ctrl-C)."""
    raise NotImplementedError

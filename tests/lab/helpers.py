"""Helpers shared by the lab tests (``from tests.lab.helpers import ...``); the fixtures that use
them are in ``tests/lab/conftest.py``.

Delays are short so the operator's status transitions and the slow fault stay fast.
"""

from __future__ import annotations

import os
import socket

from tests.helpers import wait_until

__all__ = ["PENDING_DELAY", "RUNNING_DELAY", "SLOW_DELAY", "TOKEN", "open_fds", "refused", "wait_until"]

PENDING_DELAY = 0.3
RUNNING_DELAY = 0.8
SLOW_DELAY = 1.5
TOKEN = "test-token-0123456789"


def refused(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP connection to ``host:port`` is refused (nothing listens there)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))

"""The control channel of a running lab: ``mgn lab fault add|clear|list`` talk to ``mgn lab up``.

The lab process listens on a Unix socket in its working directory (owner-only, like the rest of
it). One request per connection, one JSON line each way::

    → {"op": "inject", "name": "rethinkdb.down", "cluster": null}
    ← {"ok": true, "faults": ["rethinkdb.down"]}
    ← {"ok": false, "error": "unknown fault 'rethinkdb.dwon' (did you mean 'rethinkdb.down'?)"}

Ops: ``inject``, ``clear``, ``clear_all``, ``list`` (which also returns ``known``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mgn_verify.lab import Lab

__all__ = ["CONTROL_SOCKET", "ControlError", "ControlServer", "request"]

CONTROL_SOCKET = "control.sock"
_MAX_REQUEST = 4096


class ControlError(Exception):
    """The lab refused a request, or could not be reached; ``str()`` is one line."""


def _handle(lab: Lab, message: dict[str, Any]) -> dict[str, Any]:
    op = message.get("op")
    name = message.get("name")
    cluster = message.get("cluster")
    actions: dict[str, Callable[[], None]] = {
        "inject": lambda: _apply(lab.inject, name, cluster),
        "clear": lambda: _apply(lab.clear, name, cluster),
        "clear_all": lab.clear_all,
        "list": lambda: None,
    }
    if op not in actions:
        return {"ok": False, "error": f"unknown op {op!r}"}
    try:
        actions[str(op)]()
    except KeyError as exc:  # str(KeyError) quotes its message
        return {"ok": False, "error": str(exc.args[0]) if exc.args else "KeyError"}
    except (ValueError, TypeError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "faults": sorted(lab.faults), "known": sorted(lab.known_faults)}


def _apply(action: Callable[..., None], name: object, cluster: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("a fault name is required")
    if cluster:
        action(name, cluster=str(cluster))
    else:
        action(name)


class ControlServer:
    """Serves the control socket of ``lab`` on a daemon thread until ``close()``."""

    def __init__(self, lab: Lab, path: Path, on_change: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self._lab = lab
        self._on_change = on_change
        path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)  # owner only: faults change what every check sees
        try:
            self._sock.bind(str(path))
        finally:
            os.umask(old_umask)
        self._sock.listen(8)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="mgn-lab-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(5.0)
                with contextlib.suppress(OSError):
                    self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        raw = conn.makefile("rb").readline(_MAX_REQUEST)
        try:
            message = json.loads(raw)
            reply = _handle(self._lab, message) if isinstance(message, dict) else {
                "ok": False, "error": "a request is a JSON object"}
        except ValueError:
            reply = {"ok": False, "error": "a request is one line of JSON"}
        if reply["ok"] and message.get("op") != "list":
            self._on_change()
        conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=2.0)
        self.path.unlink(missing_ok=True)


def request(path: str | Path, op: str, name: str | None = None, cluster: str | None = None,
            timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to the lab at ``path``; raise ``ControlError`` when it is refused."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps({"op": op, "name": name, "cluster": cluster}).encode() + b"\n")
            raw = sock.makefile("rb").readline(1 << 20)
        except OSError as exc:
            raise ControlError(f"cannot reach the lab's control socket {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(raw)
    except ValueError:
        raise ControlError("the lab sent an unreadable reply") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        raise ControlError(str(reply.get("error") if isinstance(reply, dict) else reply))
    return reply

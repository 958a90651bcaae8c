"""Plumbing shared by the lab's small HTTP simulators (tailscaled and Headscale).

``ReversibleServer`` runs a ``socketserver`` server on a thread and can take it away and bring
it back while the lab runs: that is how a ``*.down`` fault makes the daemon disappear (the
socket file is removed, the TCP port refuses connections) and come back when cleared.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

__all__ = ["PlainHandler", "ReversibleServer"]

# How often the watcher re-reads the fault set. Faults injected through ``Lab.inject`` are
# applied at once (the lab calls ``sync_faults``); the watcher covers direct FaultSet edits.
_WATCH_INTERVAL = 0.05


class PlainHandler(BaseHTTPRequestHandler):
    """A quiet request handler that writes exactly the headers it is given.

    HTTP/1.0 on purpose: every response closes its connection, so stopping a simulator never
    waits on an idle keep-alive client, and a "down" fault cannot be dodged by a pooled
    connection that was opened before the fault.
    """

    protocol_version = "HTTP/1.0"

    def send_response(self, code: int, message: str | None = None) -> None:
        # Go servers send Date but no Server header; http.server would add "BaseHTTP/…".
        self.send_response_only(code, message)
        self.send_header("Date", formatdate(usegmt=True))

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Silence: test output stays readable, and client_address is "" on a Unix socket,
        # which the default implementation cannot format.
        return


class ReversibleServer:
    """A ``socketserver`` server that can be closed and reopened on the same address."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], socketserver.BaseServer],
        is_down: Callable[[], bool],
        after_close: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._factory = factory
        self._is_down = is_down
        self._after_close = after_close
        self._lock = threading.RLock()
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stopping.clear()
            try:
                self.sync()
            except BaseException:
                self._started = False
                raise
            self._watcher = threading.Thread(target=self._watch, name=f"{self._name}-faults", daemon=True)
            self._watcher.start()

    def sync(self) -> None:
        """Open or close the listener so that it matches the fault set right now."""
        with self._lock:
            wanted = self._started and not self._is_down()
            if wanted and self._server is None:
                self._open()
            elif not wanted and self._server is not None:
                self._close()

    def stop(self) -> None:
        with self._lock:
            self._started = False
            self._stopping.set()
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.join()
        with self._lock:
            if self._server is not None:
                self._close()

    def _open(self) -> None:
        server = self._factory()
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _WATCH_INTERVAL},
            name=f"{self._name}-serve",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def _close(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        assert server is not None and thread is not None
        server.shutdown()
        server.server_close()
        thread.join()
        if self._after_close is not None:
            self._after_close()

    def _watch(self) -> None:
        while not self._stopping.wait(_WATCH_INTERVAL):
            self.sync()

"""The HTTP side: a stdlib ``ThreadingHTTPServer`` answering from the latest snapshot. Each
request is served on its own thread from data already rendered or cheap to render, so a run in
progress never delays an answer.

``--silent`` (for addresses others can reach): ``/healthz`` answers with its status code and an
empty body, every other path is a bare 404; nothing about the checks is given away.
"""

from __future__ import annotations

import socket
import socketserver
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .address import Listen
from .metrics import CONTENT_TYPE, Metrics
from .page import render_page
from .state import NO_RUN_YET, ServeState

__all__ = ["ServeServer", "make_server"]

_TEXT = "text/plain; charset=utf-8"
_NOT_FOUND = "not found: try /healthz, /report, /metrics or /\n"
# The page has no script and loads nothing; the browser is told to allow nothing else.
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class ServeServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that stalls never holds up the shutdown

    def __init__(self, listen: Listen, state: ServeState, *, silent: bool) -> None:
        self.address_family = listen.family
        self.state = state
        self.silent = silent
        self.metrics = Metrics(state)
        super().__init__((listen.ip, listen.port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks the address up in reverse DNS (getfqdn), which can hang.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def make_server(listen: Listen, state: ServeState, *, silent: bool) -> ServeServer:
    """Bind ``listen`` (``OSError`` when it cannot: in use, not an address of this machine)."""
    if listen.family == socket.AF_INET6:
        return _V6OnlyServer(listen, state, silent=silent)
    return ServeServer(listen, state, silent=silent)


class _V6OnlyServer(ServeServer):
    def server_bind(self) -> None:
        # ``[::]`` means IPv6 only, as the address says (not IPv4 too, whatever the OS default).
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    server: ServeServer
    timeout = 10  # seconds a connection may idle: a stalled client frees its thread

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        status, content_type, body, headers = self._route(path)
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _route(self, path: str) -> tuple[int, str, str | bytes, dict[str, str]]:
        state = self.server.state
        snapshot, _ = state.view()
        if path == "/healthz":
            healthy = snapshot is not None and snapshot.healthy
            status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
            line = snapshot.verdict if snapshot is not None else NO_RUN_YET
            return status, _TEXT, "" if self.server.silent else line + "\n", {}
        if self.server.silent:
            return HTTPStatus.NOT_FOUND, _TEXT, "", {}
        if path == "/report":
            if snapshot is None:
                return HTTPStatus.SERVICE_UNAVAILABLE, _TEXT, NO_RUN_YET + "\n", {}
            return HTTPStatus.OK, "application/json; charset=utf-8", snapshot.report_json, {}
        if path == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE, self.server.metrics.render(), {}
        if path in ("/", "/index.html"):
            return HTTPStatus.OK, "text/html; charset=utf-8", render_page(state), _PAGE_HEADERS
        return HTTPStatus.NOT_FOUND, _TEXT, _NOT_FOUND, {}

    def send_response(self, code: int, message: str | None = None) -> None:
        # Without the Server header: nothing about the software is given away.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log_message(self, format: str, *args: object) -> None:
        pass  # no access log: stderr is for the verdicts (and would be a check's output mid-run)

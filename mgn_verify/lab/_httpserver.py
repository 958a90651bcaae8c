"""The HTTP(S) layer shared by the lab's HTTP simulators (Kubernetes, Host App, Headscale,
tailscaled's LocalAPI).

The simulators are plain functions ``app(Request) -> Response``; this module parses requests
and writes responses, with TLS chosen *per connection* (so ``tls.expired`` takes effect without
a restart). The socket work (a free port or a Unix socket, the "down" switch that really closes
the listener and reopens it on the same address, a ``stop()`` that joins every thread and
closes every connection, including idle keep-alive ones) is :class:`ReopenableServer`'s.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mgn_verify.lab._serving import ReopenableServer, ServedSimulator

__all__ = [
    "ALL_METHODS",
    "App",
    "DropConnection",
    "HTTPSimulator",
    "LabHTTPServer",
    "Request",
    "Response",
    "empty_response",
    "json_response",
    "text_response",
]

TEXT_PLAIN = "text/plain; charset=utf-8"
ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class Request:
    """One parsed HTTP request as the simulator app sees it."""

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_host: str
    tls: bool

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def query_value(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default


class DropConnection(Exception):
    """Raised by an app to close the connection without answering (e.g. stopped mid-delay)."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: A streamed body (a Kubernetes watch): each item is flushed as one chunk as it comes.
    stream: Iterable[bytes] | None = None


App = Callable[[Request], Response]


def json_response(status: int, obj: Any, *, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(obj).encode("utf-8"), content_type)


def text_response(status: int, text: str, *, content_type: str = TEXT_PLAIN) -> Response:
    return Response(status, text.encode("utf-8"), content_type)


def empty_response(status: int) -> Response:
    return Response(status)


class _Handler(BaseHTTPRequestHandler):
    """Parses one connection's requests and hands each to the owning server's app."""

    timeout = 30  # an idle keep-alive connection ends on its own eventually

    def __init__(
        self, sock: socket.socket, client_address: Any, listener: socketserver.BaseServer, owner: LabHTTPServer
    ) -> None:
        self.owner = owner
        # HTTP/1.1 keeps connections alive like the real servers; HTTP/1.0 closes each one.
        self.protocol_version = "HTTP/1.1" if owner.keep_alive else "HTTP/1.0"
        super().__init__(sock, client_address, listener)  # serves the connection

    def log_message(self, format: str, *args: Any) -> None:
        # The simulators keep their own request logs; and client_address is "" on a Unix
        # socket, which the default implementation cannot format.
        return

    def send_response(self, code: int, message: str | None = None) -> None:
        # Go servers send Date but no Server header; http.server would add "BaseHTTP/...".
        self.log_request(code)
        self.send_response_only(code, message)
        if self.owner.server_header:
            self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())

    def _request(self) -> Request:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        peer = self.client_address
        return Request(
            method=self.command,
            target=self.path,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_host=str(peer[0]) if isinstance(peer, tuple) and peer else "",
            tls=isinstance(self.connection, ssl.SSLSocket),
        )

    def _dispatch(self) -> None:
        if self.command not in self.owner.methods:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        request = self._request()
        try:
            response = self.owner.app(request)
        except DropConnection:
            self.close_connection = True
            return
        except Exception as exc:  # a simulator bug must not kill the connection thread silently
            response = text_response(500, f"simulator error: {type(exc).__name__}: {exc}\n")
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.stream is not None:
            self._stream(response.stream)
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch

    def _stream(self, chunks: Iterable[bytes]) -> None:
        """A body of unknown length: chunked on HTTP/1.1, else written until the close."""
        chunked = self.protocol_version == "HTTP/1.1"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away mid-stream
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()


class LabHTTPServer(ReopenableServer):
    """Serve ``app`` over HTTP(S) on ``host:port`` (port 0 picks a free port, kept across
    down/up cycles) or over plain HTTP on the Unix socket ``unix_path``.

    ``ssl_context`` is asked on every connection (``None``: plain HTTP); ``down`` is the fault
    switch; ``keep_alive=False`` answers HTTP/1.0 and closes every connection after one
    response; ``server_header=False`` leaves out http.server's ``Server`` header (Go servers
    send none); other ``methods`` get http.server's 501.
    """

    def __init__(
        self,
        app: App,
        *,
        ssl_context: Callable[[], ssl.SSLContext | None] | None = None,
        down: Callable[[], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_path: str | None = None,
        unix_mode: int | None = None,
        name: str = "lab-http",
        watch_interval: float = 0.02,
        keep_alive: bool = True,
        server_header: bool = True,
        methods: frozenset[str] = ALL_METHODS,
    ) -> None:
        super().__init__(
            self._serve_http,
            is_down=down,
            host=host,
            port=port,
            unix_path=unix_path,
            unix_mode=unix_mode,
            name=name,
            watch_interval=watch_interval,
        )
        self.app = app
        self.keep_alive = keep_alive
        self.server_header = server_header
        self.methods = methods
        self._ssl_context = ssl_context

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def _serve_http(self, request: socket.socket, client_address: Any, listener: socketserver.BaseServer) -> None:
        sock: socket.socket = request
        try:
            ctx = self._ssl_context() if self._ssl_context is not None else None
            if ctx is not None:
                request.settimeout(10)  # a client that never finishes the handshake
                sock = ctx.wrap_socket(request, server_side=True)
                self.track(sock)
            _Handler(sock, client_address, listener, self)
        finally:
            with contextlib.suppress(OSError):
                sock.close()


class HTTPSimulator(ServedSimulator):
    """The lifecycle facade plus ``url`` for a simulator served by a :class:`LabHTTPServer`."""

    _server: LabHTTPServer

    @property
    def url(self) -> str:
        return self._server.url

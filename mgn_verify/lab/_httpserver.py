"""A threaded HTTP(S) server on 127.0.0.1 for the lab simulators.

The simulators are plain functions ``app(Request) -> Response``; this module does the socket
work: a free port, TLS with a context chosen *per connection* (so ``tls.expired`` takes effect
without a restart), a "down" switch that really closes the listening socket (clients get
connection refused) and reopens it on the same port, and a ``stop()`` that joins every thread
it started and closes every socket, including idle keep-alive connections.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "App",
    "DropConnection",
    "LabHTTPServer",
    "Request",
    "Response",
    "empty_response",
    "json_response",
    "text_response",
]

TEXT_PLAIN = "text/plain; charset=utf-8"


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


App = Callable[[Request], Response]


def json_response(status: int, obj: Any, *, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(obj).encode("utf-8"), content_type)


def text_response(status: int, text: str, *, content_type: str = TEXT_PLAIN) -> Response:
    return Response(status, text.encode("utf-8"), content_type)


def empty_response(status: int) -> Response:
    return Response(status)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real servers
    timeout = 30  # an idle keep-alive connection ends on its own eventually
    server: _Listener

    def log_message(self, format: str, *args: Any) -> None:
        return  # the simulators keep their own request logs

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            target=self.path,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_host=str(self.client_address[0]),
            tls=isinstance(self.connection, ssl.SSLSocket),
        )
        try:
            response = self.server.owner.app(request)
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
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch


class _Listener(socketserver.TCPServer):
    """One listening socket; connection threads are tracked by the owning LabHTTPServer."""

    allow_reuse_address = True  # rebinding the same port right after a "down" must work

    def __init__(self, owner: LabHTTPServer, address: tuple[str, int]) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # e.g. the Host App's extra [::1] listener
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._spawn_connection(request, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # client resets are normal in fault tests


class LabHTTPServer:
    """Serve ``app`` on ``host`` (port 0 picks a free port, kept across down/up cycles)."""

    def __init__(
        self,
        app: App,
        *,
        ssl_context: Callable[[], ssl.SSLContext | None] | None = None,
        down: Callable[[], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "lab-http",
        watch_interval: float = 0.02,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._ssl_context = ssl_context
        self._down = down
        self._watch_interval = watch_interval
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._listener: _Listener | None = None
        self._serve_thread: threading.Thread | None = None
        self._watch_thread: threading.Thread | None = None
        self._connections: dict[threading.Thread, socket.socket] = {}
        # Set while stopping: handlers that sleep (slow faults) wait on this instead.
        self.stopping = threading.Event()
        self._running = False

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def listening(self) -> bool:
        return self._listener is not None

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> None:
        if self._running:
            return
        self.stopping.clear()
        self._open()
        self._running = True
        if self._down is not None:
            self._watch_thread = threading.Thread(target=self._watch, name=f"{self.name}-watch", daemon=True)
            self._watch_thread.start()

    def stop(self) -> None:
        if not self._running:
            return
        with self._sync_lock:
            self._running = False
        self.stopping.set()
        if self._watch_thread is not None:
            self._watch_thread.join()
            self._watch_thread = None
        self._close()

    # -- internals -----------------------------------------------------------------------------

    def _open(self) -> None:
        listener = _Listener(self, (self.host, self.port))
        self.port = int(listener.server_address[1])
        thread = threading.Thread(
            target=listener.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-accept",
            daemon=True,
        )
        with self._lock:
            self._listener = listener
            self._serve_thread = thread
        thread.start()

    def _close(self) -> None:
        """Close the listener and every live connection, then join their threads."""
        with self._lock:
            listener, thread = self._listener, self._serve_thread
            self._listener = self._serve_thread = None
        if listener is not None and thread is not None:
            listener.shutdown()
            thread.join()
            listener.server_close()
        with self._lock:
            conns = list(self._connections.items())
        for _, sock in conns:
            with contextlib.suppress(OSError):
                # Base-class shutdown works on the raw fd even when ``sock`` is an SSLSocket.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for conn_thread, _ in conns:
            conn_thread.join(timeout=5)

    def sync(self) -> None:
        """Close or reopen the listener to match the ``down`` switch, right now."""
        if self._down is None:
            return
        with self._sync_lock:
            if not self._running:
                return
            down = self._down()
            if down and self._listener is not None:
                self._close()
            elif not down and self._listener is None:
                with contextlib.suppress(OSError):  # port taken meanwhile: retry next tick
                    self._open()

    def _watch(self) -> None:
        while not self.stopping.wait(self._watch_interval):
            self.sync()

    def _spawn_connection(self, request: socket.socket, client_address: Any, listener: _Listener) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address, listener),
            name=f"{self.name}-conn",
            daemon=True,
        )
        with self._lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any, listener: _Listener) -> None:
        me = threading.current_thread()
        sock: socket.socket = request
        try:
            ctx = self._ssl_context() if self._ssl_context is not None else None
            if ctx is not None:
                request.settimeout(10)  # a client that never finishes the handshake
                sock = ctx.wrap_socket(request, server_side=True)
                with self._lock:
                    self._connections[me] = sock
            _Handler(sock, client_address, listener)
        except (OSError, ssl.SSLError, ValueError):
            pass  # handshake failures and resets are what fault tests provoke
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                request.close()
            with self._lock:
                self._connections.pop(me, None)

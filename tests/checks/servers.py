"""Local servers and their handles for the system and network layer tests (loopback only).

The fixtures that start them live in ``tests/checks/conftest.py``; tests import the types from
here (``from tests.checks.servers import DnsServer``), never from a conftest.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass

from tests.checks._layer_helpers import free_port

__all__ = ["DnsServer", "TlsLab", "free_udp_and_tcp_port", "serve"]


@dataclass(frozen=True)
class DnsServer:
    port: int

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket() as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for both UDP and TCP")



@dataclass(frozen=True)
class TlsLab:
    ca_bundle: str
    urls: dict[str, str]  # case -> https URL



class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/reset":
            # SO_LINGER 0 then close: the client gets an RST instead of a response.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if self.path == "/slow":
            time.sleep(1.5)  # the slowness under test, not a wait
        status = {"/fail": 500, "/denied": 403}.get(self.path, 200)
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class QuietServer(http.server.ThreadingHTTPServer):
    """A threaded test server that does not log the errors tests cause on purpose (resets,
    failed TLS handshakes, clients giving up mid-body)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def serve(context: ssl.SSLContext | None) -> tuple[QuietServer, int]:
    server = QuietServer(("127.0.0.1", 0), _Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, int(server.server_address[1])

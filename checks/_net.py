"""Sockets: endpoint parsing, TCP connects with a named failure, listeners, a CRI probe."""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "Endpoint",
    "Listener",
    "TcpFailure",
    "host_port",
    "http2_probe",
    "listeners",
    "parse_endpoint",
    "split_host_port",
    "tcp_connect",
    "url_endpoint",
]

_NO_ROUTE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}


def host_port(host: str, port: int) -> str:
    """ "host:port", with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str) -> tuple[str, str | None]:
    """ "host:port", "[v6]:port", "[v6]", "host" or a bare IPv6 address → (host, port text or
    None when no port is written)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port_text = text.partition(":")
        return host, port_text
    return text, None


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return host_port(self.host, self.port)


def parse_endpoint(text: str, default_port: int | None = None) -> Endpoint:
    """ "host:port", "[v6]:port" (or "host" when a default port is given)."""
    text = text.strip()
    host, port_text = split_host_port(text)
    if not port_text:
        if default_port is None:
            raise ValueError(f"{text!r}: expected host:port")
        return Endpoint(host, default_port)
    port = int(port_text)
    if not 0 < port < 65536 or not host:
        raise ValueError(f"{text!r}: expected host:port with a port in 1-65535")
    return Endpoint(host, port)


def url_endpoint(url: str) -> Endpoint:
    """The host:port an http(s) URL connects to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r}: expected an http:// or https:// URL")
    return Endpoint(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


class TcpFailure(Exception):
    """A connect that did not succeed; ``kind`` is refused, timeout, no-route or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def tcp_connect(address: str, port: int, timeout: float) -> float:
    """Connect to ``address`` (an IP literal) and return the connect time in seconds."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    started = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            raise TcpFailure(
                "refused", f"connection refused by {address}:{port} (host up, nothing listening on that port)"
            ) from None
        except TimeoutError:
            raise TcpFailure(
                "timeout",
                f"no answer from {address}:{port} within {timeout:g} s "
                "(filtered by a firewall, or the listener is overloaded)",
            ) from None
        except OSError as exc:
            if exc.errno in _NO_ROUTE:
                raise TcpFailure("no-route", f"no route to {address}:{port} ({exc.strerror})") from None
            raise TcpFailure("error", f"{address}:{port}: {exc.strerror or exc}") from None
    return time.monotonic() - started


@dataclass(frozen=True, slots=True)
class Listener:
    address: str
    port: int
    pid: int | None
    name: str

    def describe(self) -> str:
        owner = f"pid {self.pid} ({self.name})" if self.pid is not None else "a process not visible to us"
        return f"{self.address}:{self.port} held by {owner}"


def listeners() -> dict[int, list[Listener]]:
    """TCP listeners by port, with the owning process, via psutil (one /proc scan for all ports;
    the pid is None for sockets of processes we may not inspect)."""
    import psutil

    found: dict[int, list[Listener]] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        name = "?"
        if conn.pid is not None:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                name = psutil.Process(conn.pid).name()
        port = conn.laddr.port
        found.setdefault(port, []).append(Listener(conn.laddr.ip, port, conn.pid, name))
    return found


# An HTTP/2 client preface and an empty SETTINGS frame: enough for a gRPC server (every CRI
# runtime) to answer with its own SETTINGS frame, without speaking protobuf.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def http2_probe(path: str, timeout: float) -> str:
    """Connect to a unix socket and check an HTTP/2 (gRPC) server answers within ``timeout`` in
    all (a runtime trickling its frame byte by byte does not get ``timeout`` per byte); raises OSError."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(_H2_PREFACE)
        head = b""
        while len(head) < 9:
            try:
                sock.settimeout(max(deadline - time.monotonic(), 1e-6))
                chunk = sock.recv(9 - len(head))
            except TimeoutError:
                raise TimeoutError(f"no complete HTTP/2 SETTINGS frame within {timeout:g} s") from None
            if not chunk:
                raise OSError("the runtime closed the connection without an HTTP/2 SETTINGS frame")
            head += chunk
    if head[3] != 0x04:
        raise OSError(f"the socket answered, but not with HTTP/2 (first bytes {head!r})")
    return "HTTP/2 SETTINGS received (gRPC server answering)"

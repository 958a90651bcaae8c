"""Where ``mgn verify serve`` listens: ``HOST:PORT`` parsed, resolved once, and judged loopback
or not (anything else must be asked for with ``--allow-remote``)."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from .._exceptions import UsageError

__all__ = ["Listen", "resolve_listen"]

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Listen:
    """A resolved address: ``ip`` is what is bound (so what was judged is what listens)."""

    text: str
    family: int
    ip: str
    port: int
    loopback: bool

    def url(self, port: int | None = None) -> str:
        host = f"[{self.ip}]" if self.family == socket.AF_INET6 else self.ip
        return f"http://{host}:{self.port if port is None else port}/"


def resolve_listen(text: str, *, source: str = "--listen") -> Listen:
    """``127.0.0.1:9797``, ``[::1]:9797``, ``localhost:0``; an empty host is every interface.
    Raises ``UsageError`` (one line) naming ``source`` when it does not parse or resolve."""
    match = _HOST_PORT.match(text.strip())
    port = int(match.group("port")) if match else -1
    if match is None or port > 65535:
        raise UsageError(f"{source} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9797 or [::1]:9797")
    host = match.group("v6") if match.group("v6") is not None else match.group("host")
    if not host:  # ":9797": every IPv4 interface, as most servers read it
        return Listen(text, socket.AF_INET, "0.0.0.0", port, loopback=False)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"{source} {text!r}: cannot resolve {host!r} ({exc})") from None
    addresses = [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos
                 if family in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise UsageError(f"{source} {text!r}: {host!r} has no IPv4 or IPv6 address")
    # A name counts as loopback only when every address it resolves to is one.
    loopback = all(ipaddress.ip_address(ip.split("%")[0]).is_loopback for _, ip in addresses)
    family, ip = addresses[0]
    return Listen(text, family, ip, port, loopback)

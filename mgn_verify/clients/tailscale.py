"""A typed client for tailscaled's LocalAPI, over its Unix socket (docs: protocols.md §3).

The daemon rejects a request whose ``Host`` is not ``local-tailscaled.sock`` (403 ``invalid
localapi request``): httpx sends the Host of the base URL, so the base URL is
``http://local-tailscaled.sock``. httpx is imported when the client is created.

Errors: no socket file → :class:`NotConfiguredError` (the daemon is not running or not
installed); refused (a stale socket), timeout → :class:`UnreachableError`; permission denied →
:class:`AuthError`; an HTTP error or a body that is not the status document → :class:`ApiError`.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ApiError, AuthError, ClientError, NotConfiguredError, UnreachableError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BACKEND_STATES",
    "DEFAULT_SOCKET",
    "LOCALAPI_HOST",
    "LocalAPIClient",
    "PeerStatus",
    "TailscaleStatus",
    "is_cgnat",
    "parse_go_time",
    "version_tuple",
]

DEFAULT_SOCKET = "/var/run/tailscale/tailscaled.sock"
LOCALAPI_HOST = "local-tailscaled.sock"
COMPONENT = "tailscale"
BACKEND_STATES = ("NoState", "InUseOtherUser", "NeedsLogin", "NeedsMachineAuth", "Stopped", "Starting", "Running")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_go_time(value: object) -> datetime | None:
    """An RFC 3339 time as Go prints it; ``None`` for absent, null or the zero time."""
    if not isinstance(value, str) or not value or value == _ZERO_TIME:
        return None
    # Go may print fractional seconds with up to 9 digits; Python takes at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def is_cgnat(address: str) -> bool:
    """Whether ``address`` is an IPv4 address in Tailscale's 100.64.0.0/10 (CGNAT) range."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and ip in _CGNAT


def version_tuple(version: str) -> tuple[int, ...] | None:
    """``1.82.5-t1a2b3c4d5-g6e7f8a9b0c`` or ``v0.29.2`` → ``(1, 82, 5)``; ``None`` if unparsable."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One ``ipnstate.PeerStatus`` (this node's ``Self`` or a peer)."""

    id: str
    public_key: str
    hostname: str
    dns_name: str
    os: str
    tailscale_ips: tuple[str, ...]
    online: bool
    active: bool
    cur_addr: str
    relay: str
    in_network_map: bool
    primary_routes: tuple[str, ...]
    key_expiry: datetime | None
    expired: bool
    last_seen: datetime | None

    @property
    def direct(self) -> bool:
        """A direct UDP path is in use (``CurAddr`` set); otherwise traffic goes through DERP."""
        return bool(self.cur_addr)

    @property
    def label(self) -> str:
        """The name to show: the MagicDNS label, else the host name."""
        return self.dns_name.split(".", 1)[0] or self.hostname

    def matches(self, name: str) -> bool:
        """``name`` is this node's host name, MagicDNS name or label (any case), or one of its IPs."""
        wanted = name.strip().rstrip(".").lower()
        dns = self.dns_name.rstrip(".").lower()
        return wanted in {self.hostname.lower(), dns, dns.split(".", 1)[0], *self.tailscale_ips} - {""}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeerStatus:
        return cls(
            id=str(data.get("ID") or ""),
            public_key=str(data.get("PublicKey") or ""),
            hostname=str(data.get("HostName") or ""),
            dns_name=str(data.get("DNSName") or ""),
            os=str(data.get("OS") or ""),
            tailscale_ips=_strings(data.get("TailscaleIPs")),
            online=bool(data.get("Online")),
            active=bool(data.get("Active")),
            cur_addr=str(data.get("CurAddr") or ""),
            relay=str(data.get("Relay") or ""),
            in_network_map=bool(data.get("InNetworkMap")),
            primary_routes=_strings(data.get("PrimaryRoutes")),
            key_expiry=parse_go_time(data.get("KeyExpiry")),
            expired=bool(data.get("Expired")),
            last_seen=parse_go_time(data.get("LastSeen")),
        )


@dataclass(frozen=True, slots=True)
class TailscaleStatus:
    """``GET /localapi/v0/status``: the daemon's ``ipnstate.Status``."""

    version: str
    backend_state: str
    auth_url: str
    tailscale_ips: tuple[str, ...]
    self: PeerStatus
    health: tuple[str, ...]
    magic_dns_suffix: str
    tailnet: str
    peers: tuple[PeerStatus, ...]
    have_node_key: bool
    cap_version: int | None  # the Tailscale-Cap response header

    @property
    def has_netmap(self) -> bool:
        return self.self.in_network_map

    def find_peer(self, name: str) -> PeerStatus | None:
        return next((peer for peer in self.peers if peer.matches(name)), None)

    @classmethod
    def from_json(cls, data: dict[str, Any], cap_version: int | None = None) -> TailscaleStatus:
        self_data = data.get("Self")
        if not isinstance(self_data, dict) or not isinstance(data.get("BackendState"), str):
            raise ValueError("not an ipnstate.Status document (no BackendState or Self)")
        peers = data.get("Peer") or {}
        tailnet = data.get("CurrentTailnet") or {}
        return cls(
            version=str(data.get("Version") or ""),
            backend_state=str(data["BackendState"]),
            auth_url=str(data.get("AuthURL") or ""),
            tailscale_ips=_strings(data.get("TailscaleIPs")),
            self=PeerStatus.from_json(self_data),
            health=_strings(data.get("Health")),
            magic_dns_suffix=str(data.get("MagicDNSSuffix") or ""),
            tailnet=str(tailnet.get("Name") or "") if isinstance(tailnet, dict) else "",
            peers=tuple(PeerStatus.from_json(p) for p in peers.values() if isinstance(p, dict))
            if isinstance(peers, dict) else (),
            have_node_key=bool(data.get("HaveNodeKey")),
            cap_version=cap_version,
        )


class LocalAPIClient:
    """tailscaled's LocalAPI on ``socket_path``. ``status()`` is read once and kept (one
    consistent view per run; an error is kept too: no retry storm). Thread-safe."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, *, timeout: float = 5.0) -> None:
        import httpx

        self.socket_path = socket_path
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_path),
            base_url=f"http://{LOCALAPI_HOST}",
            timeout=timeout,
        )
        self._timeout = timeout
        self._lock = threading.Lock()
        self._status: TailscaleStatus | ClientError | None = None

    def status(self) -> TailscaleStatus:
        with self._lock:
            if self._status is None:
                try:
                    self._status = self.fetch_status()
                except ClientError as exc:
                    self._status = exc
            if isinstance(self._status, ClientError):
                raise self._status
            return self._status

    def fetch_status(self, *, peers: bool = True) -> TailscaleStatus:
        """One ``GET /localapi/v0/status`` (``?peers=false`` without peers), not cached."""
        response = self._get("/localapi/v0/status" + ("" if peers else "?peers=false"))
        try:
            data = response.json()
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            cap = response.headers.get("tailscale-cap", "")
            return TailscaleStatus.from_json(data, int(cap) if cap.isdigit() else None)
        except ValueError as exc:
            raise ApiError(f"tailscaled at {self.socket_path} sent an unreadable status: {exc}",
                           component=COMPONENT, target=self.socket_path, status=response.status_code) from None

    def _get(self, path: str) -> httpx.Response:
        import httpx

        # Connect once ourselves first: the failure is then an OSError with its errno, and no
        # socket is leaked (httpcore's sync backend does not close one whose connect failed).
        _probe_socket(self.socket_path, self._timeout)
        try:
            response = self._http.get(path)
        except httpx.TimeoutException:
            raise UnreachableError(f"tailscaled at {self.socket_path} did not answer in time",
                                   component=COMPONENT, target=self.socket_path) from None
        except httpx.TransportError as exc:
            raise _connect_error(self.socket_path, exc) from None
        if response.status_code != 200:
            body = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            raise ApiError(f"tailscaled answered {path} with HTTP {response.status_code}: {body or '(empty)'}",
                           component=COMPONENT, target=self.socket_path, status=response.status_code)
        return response

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LocalAPIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _probe_socket(path: str, timeout: float) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except TimeoutError:
            raise UnreachableError(f"tailscaled at {path} did not accept a connection in time",
                                   component=COMPONENT, target=path) from None
        except OSError as exc:
            raise _connect_error(path, exc) from None


def _connect_error(path: str, exc: Exception) -> ClientError:
    """Tell the socket's failures apart: missing (no daemon), refused (stale), no permission."""
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if code == errno.ENOENT or "No such file or directory" in text:
        return NotConfiguredError(f"no tailscaled socket at {path}: tailscaled is not running",
                                  component=COMPONENT, target=path)
    if code == errno.EACCES or "Permission denied" in text:
        return AuthError(f"permission denied on the tailscaled socket {path}", component=COMPONENT, target=path)
    if code == errno.ECONNREFUSED or "Connection refused" in text:
        return UnreachableError(f"tailscaled socket {path} refuses connections (a stale socket: the daemon "
                                "is not running)", component=COMPONENT, target=path)
    return UnreachableError(f"cannot connect to tailscaled at {path}: {text}", component=COMPONENT, target=path)

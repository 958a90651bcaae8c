"""A tailscaled LocalAPI simulator on a Unix socket (docs/protocols.md §3).

It answers ``GET /localapi/v0/status`` (and ``?peers=false``) with the daemon's ``ipnstate.Status``
JSON: Go field names, tab indentation, trailing newline, ``Health: []`` when healthy and
``Peer: null`` without peers. Like ``ipn/localapi`` it rejects a request with a ``Referer`` or
``Origin`` header, or a ``Host`` other than ``""`` / ``local-tailscaled.sock``, with
403 ``invalid localapi request``.

Faults (see ``TailscaleSimulator.FAULTS``):

* ``tailscale.down``: the daemon is gone; the socket file is removed, so clients get
  ``ENOENT`` (httpx: ``ConnectError("[Errno 2] No such file or directory")``). Reversible.
* ``tailscale.needs_login``: ``BackendState`` ``NeedsLogin`` without a network map: a pending
  ``AuthURL``, ``TailscaleIPs``/``CurrentTailnet``/``Peer``/``User`` null, a bare ``Self`` and
  ``Health: ["You are logged out."]``.
* ``tailscale.key_expired``: the node key expired. The network map is still there, but the
  daemon is back in ``NeedsLogin``, ``Self.KeyExpiry`` is in the past with ``Self.Expired: true``,
  ``Self.Online`` is false and ``Health`` says ``You are logged out.``.
  ``needs_login`` wins when both are injected: without a network map there is no key expiry.
* ``tailscale.key_expiring``: running, but ``Self.KeyExpiry`` is three days away.
* ``tailscale.stopped``: after ``tailscale down``: ``Stopped``, the network map kept, the engine
  unconfigured (no peer path, ``Active`` false), ``Self.Online`` false, ``Tailscale is stopped.``
* ``tailscale.needs_machine_auth``: registered and polling control (``Self.Online``), but not
  authorized by the tailnet admin: ``NeedsMachineAuth``, a network map without peers.
* ``tailscale.peer_offline``: ``talos-worker-1`` is disconnected from control (``Online``
  false, ``LastSeen`` in the past, no path).
* ``tailscale.derp_only``: ``talos-cp-1`` is online but only reachable through its DERP region:
  ``CurAddr`` empty, ``Relay`` ``fra``, traffic flowing (``Active``).
* ``tailscale.accept_routes_off``: peers advertise routes but this host does not accept them:
  the daemon's ``Health`` says so.
* ``tailscale.outdated``: the daemon is 1.74 (capability 106), older than Headscale v0.29 supports.

The state each fault describes is decided in ``_tailnet`` (``self_view``, ``peer_view``), so the
Headscale simulator shows the same nodes online or offline and the same routes approved.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._httpserver import LabHTTPServer, Request, Response
from mgn_verify.lab._serving import ServedSimulator
from mgn_verify.lab._tailnet import Tailnet, TailnetNode, iso_z, peer_view, self_view

__all__ = ["LOCALAPI_HOST", "TailscaleSimulator", "render_status"]

#: The Host the Go client (and the documented httpx recipe) sends.
LOCALAPI_HOST = "local-tailscaled.sock"
VERSION = "1.82.5-t1a2b3c4d5-g6e7f8a9b0c"
CAP_VERSION = 115  # 1.82 (headscale capver table)
OLD_VERSION = "1.74.1-t5e6f7a8b9-gc0d1e2f3a4"  # tailscale.outdated: older than Headscale v0.29 supports
OLD_CAP_VERSION = 106
_ZERO_TIME = "0001-01-01T00:00:00Z"
_ZERO_NODE_KEY = "nodekey:" + "0" * 64
_PEERAPI_PORT = 41112
# Unix socket paths are limited to 108 bytes including the terminating NUL (sun_path).
_MAX_SOCKET_PATH = 107
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; script-src 'none'"),
)
_TEXT = "text/plain; charset=utf-8"

def _go_json(value: object) -> bytes:
    """Encode like Go's json.Encoder with SetIndent("", "\\t"): HTML-escaped, newline-terminated."""
    text = json.dumps(value, indent="\t", ensure_ascii=False)
    # encoding/json escapes these by default; they can only occur inside strings here.
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(raw, escaped)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return (text + "\n").encode()


def _go_bool(text: str, default: bool) -> bool:
    # strconv.ParseBool, with the handler's default on empty or invalid input.
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return default


def _peer_status(
    tailnet: Tailnet,
    node: TailnetNode,
    now: datetime,
    *,
    is_self: bool,
    online: bool,
    direct: bool,
    engine: bool,
    routes: tuple[str, ...] = (),
    key_expiry: datetime | None = None,
    expired: bool = False,
) -> dict[str, Any]:
    """A ``PeerStatus`` with a network map. ``online``: connected to control; ``direct``: a UDP
    path (else only DERP: ``CurAddr`` empty, ``Relay`` set); ``engine``: WireGuard configured
    (false while stopped); ``routes``: the subnet routes control approved (PrimaryRoutes)."""
    path = engine and online and not is_self
    status: dict[str, Any] = {
        "ID": str(node.id),  # Headscale uses the decimal node id as the StableNodeID.
        "NodeID": node.id,
        "PublicKey": node.node_key,
        "HostName": node.hostname,
        "DNSName": tailnet.dns_name(node),
        "OS": node.os,
        "UserID": node.user_id,
        "TailscaleIPs": node.ips,
        "AllowedIPs": [*node.allowed_ips, *routes],
    }
    if routes:
        status["PrimaryRoutes"] = list(routes)  # omitempty
    status.update({
        "Addrs": [node.endpoint],
        "CurAddr": node.endpoint if path and direct else "",
        "Relay": node.relay,
        "PeerRelay": "",
        "RxBytes": 48_213 if path else 0,
        "TxBytes": 51_377 if path else 0,
        "Created": iso_z(node.created),
        "LastWrite": iso_z(now - timedelta(seconds=3)) if path else _ZERO_TIME,
        # Headscale sets LastSeen only for offline nodes; the daemon prints it for peers only.
        "LastSeen": _ZERO_TIME if online or is_self else iso_z(now - timedelta(minutes=7)),
        "LastHandshake": iso_z(now - timedelta(seconds=42)) if path else _ZERO_TIME,
        "Online": online,
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": path,
        "PeerAPIURL": [f"http://{node.ipv4}:{_PEERAPI_PORT}"] if is_self else None,
        "TaildropTarget": 0,
        "NoFileSharingReason": "",
        "InNetworkMap": True,
        "InMagicSock": engine and not is_self,
        "InEngine": engine and not is_self,
    })
    if expired:
        status["Expired"] = True  # omitempty: only present when true
    status["KeyExpiry"] = iso_z(key_expiry or tailnet.key_expiry)
    return status


def _bare_self(node: TailnetNode) -> dict[str, Any]:
    """Self without a network map: HostName, OS, Online false and zero values (omitempty dropped)."""
    return {
        "ID": "",
        "NodeID": 0,
        "PublicKey": _ZERO_NODE_KEY,
        "HostName": node.hostname,
        "DNSName": "",
        "OS": node.os,
        "UserID": 0,
        "TailscaleIPs": None,
        "Addrs": None,
        "CurAddr": "",
        "Relay": "",
        "PeerRelay": "",
        "RxBytes": 0,
        "TxBytes": 0,
        "Created": _ZERO_TIME,
        "LastWrite": _ZERO_TIME,
        "LastSeen": _ZERO_TIME,
        "LastHandshake": _ZERO_TIME,
        "Online": False,
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": False,
        "PeerAPIURL": None,
        "TaildropTarget": 0,
        "NoFileSharingReason": "",
        "InNetworkMap": False,
        "InMagicSock": False,
        "InEngine": False,
    }


def _no_faults(name: str) -> bool:
    return False


def render_status(
    tailnet: Tailnet,
    active: Callable[[str], bool] = _no_faults,
    *,
    peers: bool = True,
    auth_url: str = "",
    version: str = VERSION,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``ipnstate.Status`` document for the state the active faults describe (see
    ``_tailnet.self_view``), keys in Go struct order."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    me = tailnet.self_node
    view = self_view(tailnet, active)
    if not view.netmap:
        return {
            "Version": version,
            "TUN": True,
            "BackendState": view.state,
            "HaveNodeKey": True,
            "AuthURL": auth_url,
            "TailscaleIPs": None,
            "Self": _bare_self(me),
            "Health": list(view.health),
            "MagicDNSSuffix": "",
            "CurrentTailnet": None,
            "CertDomains": None,
            "Peer": None,
            "User": None,
            "ClientVersion": None,
        }
    engine = view.state == "Running"
    peer_map = {}
    # An unauthorized machine gets a network map without peers.
    for node in tailnet.peers if view.state != "NeedsMachineAuth" else ():
        pv = peer_view(node, active)
        peer_map[node.node_key] = _peer_status(
            tailnet, node, now, is_self=False, online=pv.online, direct=pv.direct, engine=engine,
            # Control sends a route only while it is approved and its router is online (primary).
            routes=pv.approved_routes if pv.online else (),
        )
    users = {
        str(user.id): {
            "ID": user.id,
            "LoginName": user.name,
            "DisplayName": user.name,
            "ProfilePicURL": "",
        }
        for user in tailnet.users
    }
    return {
        "Version": version,
        "TUN": True,
        "BackendState": view.state,
        "HaveNodeKey": True,
        "AuthURL": "",
        "TailscaleIPs": me.ips,
        "Self": _peer_status(
            tailnet, me, now, is_self=True, online=view.in_poll, direct=False, engine=engine,
            key_expiry=view.key_expiry, expired=view.expired,
        ),
        "Health": list(view.health),
        "MagicDNSSuffix": tailnet.base_domain,
        "CurrentTailnet": {
            "Name": tailnet.user(me.user_id).name,
            "MagicDNSSuffix": tailnet.base_domain,
            "MagicDNSEnabled": True,
        },
        "CertDomains": [tailnet.dns_name(me).rstrip(".")],
        # An empty map would encode as {}; the daemon sends null when there are no peers.
        "Peer": peer_map if peers and peer_map else None,
        "User": users,
        "ClientVersion": None,
    }


class TailscaleSimulator(ServedSimulator):
    """tailscaled's LocalAPI on a Unix socket; ``socket_path`` is where clients connect."""

    FAULTS: ClassVar[tuple[str, ...]] = (
        "tailscale.down",
        "tailscale.needs_login",
        "tailscale.key_expired",
        "tailscale.key_expiring",
        "tailscale.stopped",
        "tailscale.needs_machine_auth",
        "tailscale.peer_offline",
        "tailscale.derp_only",
        "tailscale.accept_routes_off",
        "tailscale.outdated",
    )

    def __init__(
        self,
        faults: FaultSet | None = None,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        tailnet: Tailnet | None = None,
        login_server: str = "https://headscale.guildnet.lab",
    ) -> None:
        self.faults = faults if faults is not None else FaultSet(self.FAULTS)
        self.tailnet = tailnet or Tailnet.default()
        self.login_server = login_server.rstrip("/")
        self._requested_path = Path(socket_path) if socket_path is not None else None
        self._socket_path: Path | None = None
        self._tmpdir: str | None = None
        # A pending interactive login keeps one URL until it completes, as the daemon does.
        # Headscale's form: <server>/register/hskey-authreq-<24 URL-safe characters>.
        self._auth_url = f"{self.login_server}/register/hskey-authreq-{secrets.token_urlsafe(18)}"
        # HTTP/1.0 on purpose: every response closes its connection, so a "down" fault cannot
        # be dodged by a pooled connection that was opened before the fault.
        self._server = LabHTTPServer(
            self._app,
            down=lambda: self.faults.active("tailscale.down"),
            # tailscaled makes its socket world-accessible; read access is for every local user.
            unix_mode=0o666,
            name="tailscale-sim",
            keep_alive=False,
            server_header=False,
            methods=frozenset({"GET", "HEAD", "POST"}),
        )

    @property
    def socket_path(self) -> str:
        if self._socket_path is None:
            raise RuntimeError("TailscaleSimulator is not started")
        return str(self._socket_path)

    def status(self, *, peers: bool = True) -> dict[str, Any]:
        """The status document the daemon would serve right now, given the active faults."""
        view = self_view(self.tailnet, self.faults.active)
        # A pending interactive login shows its URL only while no network map exists yet.
        auth_url = self._auth_url if view.state == "NeedsLogin" and not view.netmap else ""
        return render_status(
            self.tailnet, self.faults.active, peers=peers, auth_url=auth_url, version=self.version
        )

    @property
    def version(self) -> str:
        return OLD_VERSION if self.faults.active("tailscale.outdated") else VERSION

    def start(self) -> None:
        if self._requested_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="mgn-ts-")
            path = Path(self._tmpdir) / "tailscaled.sock"
        else:
            path = self._requested_path
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            self._cleanup_tmpdir()
            raise ValueError(f"Unix socket path is too long ({len(os.fsencode(path))} bytes): {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._socket_path = path
        self._server.unix_path = str(path)
        try:
            super().start()
        except BaseException:
            self._cleanup_tmpdir()
            raise

    def stop(self) -> None:
        super().stop()
        self._cleanup_tmpdir()

    def _app(self, req: Request) -> Response:
        if req.header("referer") or req.header("origin") or req.header("host") not in ("", LOCALAPI_HOST):
            return self._error(403, "invalid localapi request")
        if req.path != "/localapi/v0/status":
            return self._error(404, "404 page not found")
        peers = _go_bool(req.query_value("peers"), default=True)
        return Response(200, _go_json(self.status(peers=peers)), "application/json", self._headers())

    def _headers(self) -> list[tuple[str, str]]:
        cap = OLD_CAP_VERSION if self.faults.active("tailscale.outdated") else CAP_VERSION
        return [("Tailscale-Version", self.version), ("Tailscale-Cap", str(cap)), *_SECURITY_HEADERS]

    def _error(self, status: int, message: str) -> Response:
        # Go's http.Error: plain text with a trailing newline.
        return Response(status, (message + "\n").encode(), _TEXT, self._headers())

    def _cleanup_tmpdir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

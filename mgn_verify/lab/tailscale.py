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
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._httpserver import LabHTTPServer, Request, Response
from mgn_verify.lab._serving import ServedSimulator
from mgn_verify.lab._tailnet import Tailnet, TailnetNode, iso_z

__all__ = ["LOCALAPI_HOST", "TailscaleSimulator", "render_status"]

#: The Host the Go client (and the documented httpx recipe) sends.
LOCALAPI_HOST = "local-tailscaled.sock"
VERSION = "1.82.5-t1a2b3c4d5-g6e7f8a9b0c"
CAP_VERSION = 113
_ZERO_TIME = "0001-01-01T00:00:00Z"
_ZERO_NODE_KEY = "nodekey:" + "0" * 64
_PEERAPI_PORT = 41112
# Unix socket paths are limited to 108 bytes including the terminating NUL (sun_path).
_MAX_SOCKET_PATH = 107
_SECURITY_HEADERS = (
    ("Tailscale-Version", VERSION),
    ("Tailscale-Cap", str(CAP_VERSION)),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; script-src 'none'"),
)
_TEXT = "text/plain; charset=utf-8"

State = Literal["Running", "NeedsLogin", "KeyExpired"]


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
    tailnet: Tailnet, node: TailnetNode, now: datetime, *, is_self: bool, expired: bool
) -> dict[str, Any]:
    key_expiry = tailnet.expired_at if expired else tailnet.key_expiry
    status: dict[str, Any] = {
        "ID": str(node.id),  # Headscale uses the decimal node id as the StableNodeID.
        "NodeID": node.id,
        "PublicKey": node.node_key,
        "HostName": node.hostname,
        "DNSName": tailnet.dns_name(node),
        "OS": node.os,
        "UserID": node.user_id,
        "TailscaleIPs": node.ips,
        "AllowedIPs": node.allowed_ips,
        "Addrs": [node.endpoint],
        "CurAddr": "" if is_self else node.endpoint,
        "Relay": node.relay,
        "PeerRelay": "",
        "RxBytes": 0 if is_self else 48_213,
        "TxBytes": 0 if is_self else 51_377,
        "Created": iso_z(node.created),
        "LastWrite": _ZERO_TIME if is_self else iso_z(now - timedelta(seconds=3)),
        "LastSeen": _ZERO_TIME if is_self else iso_z(now),
        "LastHandshake": _ZERO_TIME if is_self else iso_z(now - timedelta(seconds=42)),
        "Online": not expired,
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": not is_self,
        "PeerAPIURL": [f"http://{node.ipv4}:{_PEERAPI_PORT}"] if is_self else None,
        "TaildropTarget": 0,
        "NoFileSharingReason": "",
        "InNetworkMap": True,
        "InMagicSock": not is_self,
        "InEngine": not is_self,
    }
    if expired:
        status["Expired"] = True  # omitempty: only present when true
    status["KeyExpiry"] = iso_z(key_expiry)
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


def render_status(
    tailnet: Tailnet,
    state: State = "Running",
    *,
    peers: bool = True,
    auth_url: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``ipnstate.Status`` document for one daemon state, keys in Go struct order."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    me = tailnet.self_node
    if state == "NeedsLogin":
        return {
            "Version": VERSION,
            "TUN": True,
            "BackendState": "NeedsLogin",
            "HaveNodeKey": True,
            "AuthURL": auth_url,
            "TailscaleIPs": None,
            "Self": _bare_self(me),
            "Health": ["You are logged out."],
            "MagicDNSSuffix": "",
            "CurrentTailnet": None,
            "CertDomains": None,
            "Peer": None,
            "User": None,
            "ClientVersion": None,
        }
    expired = state == "KeyExpired"
    peer_map = {
        node.node_key: _peer_status(tailnet, node, now, is_self=False, expired=False)
        for node in tailnet.peers
    }
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
        "Version": VERSION,
        "TUN": True,
        "BackendState": "NeedsLogin" if expired else "Running",
        "HaveNodeKey": True,
        "AuthURL": "",
        "TailscaleIPs": me.ips,
        "Self": _peer_status(tailnet, me, now, is_self=True, expired=expired),
        "Health": ["You are logged out."] if expired else [],
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
        self._auth_url = f"{self.login_server}/register/{secrets.token_urlsafe(18)}"
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
        state: State = "Running"
        auth_url = ""
        if self.faults.active("tailscale.needs_login"):
            state, auth_url = "NeedsLogin", self._auth_url
        elif self.faults.active("tailscale.key_expired"):
            state = "KeyExpired"
        return render_status(self.tailnet, state, peers=peers, auth_url=auth_url)

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
        return Response(200, _go_json(self.status(peers=peers)), "application/json", list(_SECURITY_HEADERS))

    @staticmethod
    def _error(status: int, message: str) -> Response:
        # Go's http.Error: plain text with a trailing newline.
        return Response(status, (message + "\n").encode(), _TEXT, list(_SECURITY_HEADERS))

    def _cleanup_tmpdir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

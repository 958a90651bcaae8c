"""A Headscale v0.29.2 simulator over plain HTTP on 127.0.0.1 (docs/protocols.md §4).

Unauthenticated: ``GET /health`` (``application/health+json``, ``{"status":"pass"}\\n``) and
``GET /version``. Behind ``Authorization: Bearer <api key>``: ``GET /api/v1/health``,
``/api/v1/node`` (``?user=``), ``/api/v1/node/{id}``, ``/api/v1/user`` (``?id=``, ``?name=``,
``?email=``) and ``/api/v1/preauthkey``, encoded like grpc-gateway's protojson (camelCase keys,
uint64 ids as strings, unset messages ``null``, empty lists ``[]``). A missing ``Bearer ``
prefix or a wrong key gets 401 with the plain body ``Unauthorized``. The simulator is
read-only: other methods on API paths get the gateway's 405.

The nodes are the lab tailnet's (``_tailnet.Tailnet``), the same ones the tailscaled simulator
lists as Self and peers. When a ``tailscale.*`` fault is active in the shared fault set, this
host's node is shown offline (and with its expiry in the past for ``tailscale.key_expired``),
as the control server would see it.

Faults: ``headscale.down``: the port refuses connections. Reversible.
"""

from __future__ import annotations

import json
import secrets
import socket
import socketserver
import string
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._serving import PlainHandler, ReversibleServer
from mgn_verify.lab._tailnet import Tailnet, TailnetNode, TailnetUser, iso_z

__all__ = ["HEADSCALE_VERSION", "HeadscaleSimulator", "generate_api_key"]

HEADSCALE_VERSION = "v0.29.2"
_ALNUM = string.ascii_letters + string.digits
_SECURITY_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
)
# The faults of the tailscaled simulator that take this host off the control server.
_SELF_OFFLINE_FAULTS = ("tailscale.down", "tailscale.needs_login", "tailscale.key_expired")


def generate_api_key() -> str:
    """A key in the v0.28+ format ``hskey-api-<12-char prefix>-<64-char secret>``."""
    prefix = "".join(secrets.choice(_ALNUM) for _ in range(12))
    secret = "".join(secrets.choice(_ALNUM) for _ in range(64))
    return f"hskey-api-{prefix}-{secret}"


def _compact(value: object) -> bytes:
    # grpc-gateway writes protojson without a trailing newline.
    return json.dumps(value, separators=(",", ":")).encode()


class _TCPHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    simulator: HeadscaleSimulator

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall
        # for seconds in a sandbox; the name is only used for CGI, so skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _HeadscaleHandler(PlainHandler):
    server: _TCPHTTPServer

    def _json(self, status: int, value: object, content_type: str = "application/json") -> None:
        self.reply(status, _compact(value), content_type, _SECURITY_HEADERS)

    def _grpc_error(self, status: int, code: int, message: str) -> None:
        self._json(status, {"code": code, "message": message, "details": []})

    def _dispatch(self) -> None:
        sim = self.server.simulator
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path == "/health" and self.command in ("GET", "HEAD"):
            body = b'{"status":"pass"}\n'
            self.reply(200, body, "application/health+json; charset=utf-8", _SECURITY_HEADERS)
            return
        if path == "/version" and self.command in ("GET", "HEAD"):
            self._json(200, sim.version_info())
            return
        if not (path == "/api" or path.startswith("/api/")):
            # gorilla/mux's not-found handler, i.e. Go's http.NotFound.
            body = b"404 page not found\n"
            self.reply(404, body, "text/plain; charset=utf-8", _SECURITY_HEADERS)
            return
        # The auth middleware wraps the whole /api prefix, so it runs before routing.
        if not sim.authorized(self.headers.get("Authorization", "")):
            self.reply(401, b"Unauthorized", "text/plain; charset=utf-8", _SECURITY_HEADERS)
            return
        self._api(sim, path, query)

    def _api(self, sim: HeadscaleSimulator, path: str, query: dict[str, list[str]]) -> None:
        routes = ("/api/v1/health", "/api/v1/node", "/api/v1/user", "/api/v1/preauthkey")
        parts = path.split("/")
        known = path in routes or (len(parts) == 5 and path.startswith("/api/v1/node/"))
        if not known:
            self._grpc_error(404, 5, "Not Found")
            return
        if self.command not in ("GET", "HEAD"):
            self._grpc_error(405, 12, "Method Not Allowed")
            return
        first = {key: values[0] for key, values in query.items() if values}
        if path == "/api/v1/health":
            self._json(200, {"databaseConnectivity": True})
        elif path == "/api/v1/node":
            self._json(200, {"nodes": sim.nodes(user=first.get("user", ""))})
        elif path == "/api/v1/user":
            users = sim.users(first.get("id", ""), first.get("name", ""), first.get("email", ""))
            self._json(200, {"users": users})
        elif path == "/api/v1/preauthkey":
            self._json(200, {"preAuthKeys": sim.preauth_keys()})
        else:
            node = sim.node(parts[4])
            if node is None:
                self._grpc_error(404, 5, "node not found")
            else:
                self._json(200, {"node": node})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class HeadscaleSimulator:
    """Headscale's HTTP endpoints on ``url``; ``api_key`` opens ``/api/v1``."""

    FAULTS: ClassVar[tuple[str, ...]] = ("headscale.down",)

    def __init__(
        self,
        faults: FaultSet | None = None,
        api_key: str | None = None,
        *,
        tailnet: Tailnet | None = None,
    ) -> None:
        self.faults = faults if faults is not None else FaultSet(self.FAULTS)
        self.api_key = api_key or generate_api_key()
        self.tailnet = tailnet or Tailnet.default()
        self._port: int | None = None
        self._started_at = datetime.now(UTC).replace(microsecond=0)
        self._server = ReversibleServer(
            "headscale-sim", self._make_server, is_down=lambda: self.faults.active("headscale.down")
        )

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("HeadscaleSimulator is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._port is None:
            # Pick the port up front: with headscale.down injected from the start there is no
            # listener yet, but the lab's config file still needs the URL it will come back on.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                self._port = int(probe.getsockname()[1])
        self._started_at = datetime.now(UTC).replace(microsecond=0)
        self._server.start()

    def sync_faults(self) -> None:
        """Apply ``headscale.down`` now instead of at the next watcher tick."""
        self._server.sync()

    def stop(self) -> None:
        self._server.stop()

    # -- the data, rendered as protojson dictionaries -----------------------------------------

    def authorized(self, header: str) -> bool:
        if not header.startswith("Bearer "):
            return False
        return secrets.compare_digest(header[len("Bearer ") :].encode(), self.api_key.encode())

    def version_info(self) -> dict[str, Any]:
        return {
            "version": HEADSCALE_VERSION,
            "commit": "mgn-lab",
            "buildTime": iso_z(self.tailnet.users[0].created),
            "go": {"version": "go1.25.1", "os": "linux", "arch": "amd64"},
            "dirty": False,
        }

    def _user(self, user: TailnetUser) -> dict[str, Any]:
        return {
            "id": str(user.id),
            "name": user.name,
            "createdAt": iso_z(user.created),
            "displayName": "",
            "email": "",
            "providerId": "",
            "provider": "",
            "profilePicUrl": "",
        }

    def _node(self, node: TailnetNode, now: datetime) -> dict[str, Any]:
        is_self = node is self.tailnet.self_node
        offline = is_self and any(self.faults.active(name) for name in _SELF_OFFLINE_FAULTS)
        expired = is_self and self.faults.active("tailscale.key_expired")
        last_seen = self._started_at - timedelta(minutes=5) if offline else now
        return {
            "id": str(node.id),
            "machineKey": node.machine_key,
            "nodeKey": node.node_key,
            "discoKey": node.disco_key,
            "ipAddresses": node.ips,
            "name": node.hostname,
            "user": self._user(self.tailnet.user(node.user_id)),
            "lastSeen": iso_z(last_seen),
            "expiry": iso_z(self.tailnet.expired_at if expired else self.tailnet.key_expiry),
            "preAuthKey": None,
            "createdAt": iso_z(node.created),
            "registerMethod": "REGISTER_METHOD_AUTH_KEY",
            "givenName": node.hostname,
            "online": not offline,
            "approvedRoutes": [],
            "availableRoutes": [],
            "subnetRoutes": [],
            "tags": [],
        }

    def nodes(self, user: str = "") -> list[dict[str, Any]]:
        now = datetime.now(UTC).replace(microsecond=0)
        return [
            self._node(node, now)
            for node in self.tailnet.nodes
            if not user or self.tailnet.user(node.user_id).name == user
        ]

    def node(self, node_id: str) -> dict[str, Any] | None:
        now = datetime.now(UTC).replace(microsecond=0)
        found = [node for node in self.tailnet.nodes if str(node.id) == node_id]
        return self._node(found[0], now) if found else None

    def users(self, id: str = "", name: str = "", email: str = "") -> list[dict[str, Any]]:
        return [
            self._user(user)
            for user in self.tailnet.users
            if (not id or str(user.id) == id) and (not name or user.name == name) and not email
        ]

    def preauth_keys(self) -> list[dict[str, Any]]:
        user = self.tailnet.users[0]
        return [
            {
                "user": self._user(user),
                "id": "1",
                # New-format keys are masked in listings; only the prefix is shown.
                "key": f"hskey-auth-{self.tailnet.auth_key_prefix}-***",
                "reusable": True,
                "ephemeral": False,
                "used": True,
                "expiration": iso_z(self.tailnet.key_expiry),
                "createdAt": iso_z(user.created),
                "aclTags": [],
            }
        ]

    def _make_server(self) -> _TCPHTTPServer:
        server = _TCPHTTPServer(("127.0.0.1", self.port), _HeadscaleHandler)
        server.simulator = self
        return server

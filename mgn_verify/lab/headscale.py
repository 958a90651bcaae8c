"""A Headscale v0.29.2 simulator over plain HTTP on 127.0.0.1 (docs/protocols.md §4).

Unauthenticated: ``GET /health`` (``application/health+json``, ``{"status":"pass"}\\n``) and
``GET /version``. Behind ``Authorization: Bearer <api key>``: ``GET /api/v1/health``,
``/api/v1/node`` (``?user=``), ``/api/v1/node/{id}``, ``/api/v1/user`` (``?id=``, ``?name=``,
``?email=``) and ``/api/v1/preauthkey``, encoded like grpc-gateway's protojson (camelCase keys,
uint64 ids as strings, unset messages ``null``, empty lists ``[]``). A missing ``Bearer ``
prefix or a wrong key gets 401 with the plain body ``Unauthorized``. The simulator is
read-only: other methods on API paths get the gateway's 405.

The nodes are the lab tailnet's (``_tailnet.Tailnet``), the same ones the tailscaled simulator
lists as Self and peers, in the same state (``_tailnet.self_view``/``peer_view``): a
``tailscale.*`` fault that takes this host off control (down, logged out, key expired, stopped)
shows it offline here, with the expiry the daemon shows; ``tailscale.peer_offline`` shows that
peer offline (``lastSeen`` in the past) and without its primary routes.

Routes are node fields, as since v0.26: ``availableRoutes`` (announced by the node),
``approvedRoutes`` (approved by the admin) and ``subnetRoutes`` (the primary routes it serves:
announced, approved, and its node online).

Faults:

* ``headscale.down``: the port refuses connections. Reversible.
* ``headscale.route_disabled``: ``talos-cp-1`` announces ``10.244.0.0/16`` but the route was
  never approved: in ``availableRoutes`` only (and absent from tailscaled's view of the peer).
* ``headscale.db_unavailable``: the database ping fails: ``/health`` answers 500
  ``{"status":"fail"}`` and, as in Headscale, the API key cannot be validated, so every
  ``/api`` request gets 401 ``Unauthorized``.
* ``headscale.api_key_revoked``: the configured API key was expired (``headscale apikeys
  expire``): ``/api`` answers 401, ``/health`` still passes.
"""

from __future__ import annotations

import json
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._httpserver import HTTPSimulator, LabHTTPServer, Request, Response
from mgn_verify.lab._tailnet import Tailnet, TailnetNode, TailnetUser, iso_z, peer_view, self_view

__all__ = ["HEADSCALE_VERSION", "HeadscaleSimulator", "generate_api_key"]

HEADSCALE_VERSION = "v0.29.2"
_ALNUM = string.ascii_letters + string.digits
_SECURITY_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
)


def generate_api_key() -> str:
    """A key in the v0.28+ format ``hskey-api-<12-char prefix>-<64-char secret>``."""
    prefix = "".join(secrets.choice(_ALNUM) for _ in range(12))
    secret = "".join(secrets.choice(_ALNUM) for _ in range(64))
    return f"hskey-api-{prefix}-{secret}"


def _reply(status: int, body: bytes, content_type: str) -> Response:
    return Response(status, body, content_type, list(_SECURITY_HEADERS))


def _json(status: int, value: object) -> Response:
    # grpc-gateway writes protojson without a trailing newline.
    return _reply(status, json.dumps(value, separators=(",", ":")).encode(), "application/json")


def _grpc_error(status: int, code: int, message: str) -> Response:
    return _json(status, {"code": code, "message": message, "details": []})


class HeadscaleSimulator(HTTPSimulator):
    """Headscale's HTTP endpoints on ``url``; ``api_key`` opens ``/api/v1``."""

    FAULTS: ClassVar[tuple[str, ...]] = (
        "headscale.down",
        "headscale.route_disabled",
        "headscale.db_unavailable",
        "headscale.api_key_revoked",
    )

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
        self._started_at = datetime.now(UTC).replace(microsecond=0)
        # Go-like HTTP/1.0 without a Server header; with headscale.down injected from the start
        # the server still picks its port, so the lab's config file has the URL it comes back on.
        self._server = LabHTTPServer(
            self._app,
            down=lambda: self.faults.active("headscale.down"),
            name="headscale-sim",
            keep_alive=False,
            server_header=False,
            methods=frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
        )

    @property
    def port(self) -> int:
        if self._server.port == 0:
            raise RuntimeError("HeadscaleSimulator is not started")
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._started_at = datetime.now(UTC).replace(microsecond=0)
        super().start()

    # -- HTTP app ---------------------------------------------------------------------------------

    def _app(self, req: Request) -> Response:
        path, get = req.path, req.method in ("GET", "HEAD")
        if path == "/health" and get:
            if self.faults.active("headscale.db_unavailable"):
                return _reply(500, b'{"status":"fail"}\n', "application/health+json; charset=utf-8")
            return _reply(200, b'{"status":"pass"}\n', "application/health+json; charset=utf-8")
        if path == "/version" and get:
            return _json(200, self.version_info())
        if not (path == "/api" or path.startswith("/api/")):
            # gorilla/mux's not-found handler, i.e. Go's http.NotFound.
            return _reply(404, b"404 page not found\n", "text/plain; charset=utf-8")
        # The auth middleware wraps the whole /api prefix, so it runs before routing.
        if not self.authorized(req.header("authorization")):
            return _reply(401, b"Unauthorized", "text/plain; charset=utf-8")
        return self._api(req)

    def _api(self, req: Request) -> Response:
        path = req.path
        routes = ("/api/v1/health", "/api/v1/node", "/api/v1/user", "/api/v1/preauthkey")
        parts = path.split("/")
        known = path in routes or (len(parts) == 5 and path.startswith("/api/v1/node/"))
        if not known:
            return _grpc_error(404, 5, "Not Found")
        if req.method not in ("GET", "HEAD"):
            return _grpc_error(405, 12, "Method Not Allowed")
        q = req.query_value
        if path == "/api/v1/health":
            return _json(200, {"databaseConnectivity": True})
        if path == "/api/v1/node":
            return _json(200, {"nodes": self.nodes(user=q("user"))})
        if path == "/api/v1/user":
            return _json(200, {"users": self.users(q("id"), q("name"), q("email"))})
        if path == "/api/v1/preauthkey":
            return _json(200, {"preAuthKeys": self.preauth_keys()})
        node = self.node(parts[4])
        if node is None:
            return _grpc_error(404, 5, "node not found")
        return _json(200, {"node": node})

    # -- the data, rendered as protojson dictionaries -----------------------------------------

    def authorized(self, header: str) -> bool:
        if not header.startswith("Bearer "):
            return False
        # A key that cannot be validated (database down) is refused like a wrong one.
        if self.faults.active("headscale.db_unavailable") or self.faults.active("headscale.api_key_revoked"):
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
        active = self.faults.active
        pv = peer_view(node, active)
        expiry = self.tailnet.key_expiry
        if node is self.tailnet.self_node:
            view = self_view(self.tailnet, active)
            online, expiry = view.in_poll, view.key_expiry
        else:
            online = pv.online
        last_seen = now if online else self._started_at - timedelta(minutes=7)
        return {
            "id": str(node.id),
            "machineKey": node.machine_key,
            "nodeKey": node.node_key,
            "discoKey": node.disco_key,
            "ipAddresses": node.ips,
            "name": node.hostname,
            "user": self._user(self.tailnet.user(node.user_id)),
            "lastSeen": iso_z(last_seen),
            "expiry": iso_z(expiry),
            "preAuthKey": None,
            "createdAt": iso_z(node.created),
            "registerMethod": "REGISTER_METHOD_AUTH_KEY",
            "givenName": node.hostname,
            "online": online,
            "approvedRoutes": list(pv.approved_routes),
            "availableRoutes": list(node.routes),
            # Primary routes: only a node that is online serves its approved routes.
            "subnetRoutes": [r for r in node.routes if r in pv.approved_routes] if online else [],
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

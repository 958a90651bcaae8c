"""A typed, read-only client for Headscale's HTTP API (docs: protocols.md §4).

``/health`` and ``/version`` are unauthenticated; ``/api/v1/*`` takes the API key as
``Authorization: Bearer <key>``. TLS is always verified (``ca_bundle`` adds a trust anchor).
The key is never put in a message: errors are built from the URL path, the status and the body.
httpx is imported when the client is created.

Routes are node fields (``availableRoutes``, ``approvedRoutes``, ``subnetRoutes``) since
v0.26; before that they were a separate ``/api/v1/routes`` API, which ``routes()`` falls back to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from mgn_verify._exceptions import ApiError, AuthError, ClientError, NotConfiguredError, UnreachableError
from mgn_verify.clients._http import verifying_context
from mgn_verify.clients.tailscale import parse_go_time

if TYPE_CHECKING:
    import httpx

__all__ = ["HeadscaleClient", "HeadscaleNode", "HeadscaleRoute", "HeadscaleVersion"]

COMPONENT = "headscale"
_T = TypeVar("_T")


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class HeadscaleNode:
    """One node of ``GET /api/v1/node``. The route fields are empty before v0.26."""

    id: str
    name: str
    given_name: str
    node_key: str
    ip_addresses: tuple[str, ...]
    user: str
    online: bool
    last_seen: datetime | None
    expiry: datetime | None
    register_method: str
    approved_routes: tuple[str, ...]
    available_routes: tuple[str, ...]
    subnet_routes: tuple[str, ...]
    tags: tuple[str, ...]
    has_route_fields: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HeadscaleNode:
        user = data.get("user") or {}
        # v0.23-v0.27 split tags into forced/valid/invalid; v0.28+ has one list.
        tags = _strings(data.get("tags")) or _strings(data.get("forcedTags")) + _strings(data.get("validTags"))
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or ""),
            given_name=str(data.get("givenName") or ""),
            node_key=str(data.get("nodeKey") or ""),
            ip_addresses=_strings(data.get("ipAddresses")),
            user=str(user.get("name") or "") if isinstance(user, dict) else "",
            online=bool(data.get("online")),
            last_seen=parse_go_time(data.get("lastSeen")),
            expiry=parse_go_time(data.get("expiry")),
            register_method=str(data.get("registerMethod") or ""),
            approved_routes=_strings(data.get("approvedRoutes")),
            available_routes=_strings(data.get("availableRoutes")),
            subnet_routes=_strings(data.get("subnetRoutes")),
            tags=tags,
            has_route_fields="availableRoutes" in data,
        )


@dataclass(frozen=True, slots=True)
class HeadscaleRoute:
    """A subnet route as Headscale sees it: ``advertised`` by the node, ``enabled`` (approved)
    by the admin, ``primary`` (served right now). ``route_id`` only before v0.26."""

    prefix: str
    node_id: str
    node_name: str
    advertised: bool
    enabled: bool
    primary: bool
    route_id: str = ""


@dataclass(frozen=True, slots=True)
class HeadscaleVersion:
    version: str
    commit: str
    go: str


class HeadscaleClient:
    """Headscale at ``url``; answers are read once per client and kept (errors too)."""

    def __init__(self, url: str, api_key: str, *, ca_bundle: str | None = None, timeout: float = 5.0) -> None:
        import httpx

        if not url:
            raise NotConfiguredError("no Headscale URL configured", component=COMPONENT)
        self.url = url.rstrip("/")
        self._api_key = api_key
        # System roots plus the bundle: verification stays on.
        verify = verifying_context(ca_bundle, component=COMPONENT, setting="headscale.ca_bundle")
        self._http = httpx.Client(base_url=self.url, verify=verify, timeout=timeout)
        self._lock = threading.Lock()
        self._cache: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"<HeadscaleClient {self.url}>"  # never the key

    # -- endpoints --------------------------------------------------------------------------

    def health(self) -> str:
        """``GET /health``: ``pass``, or ``ApiError`` (status 500, code ``fail``) when its database
        ping fails."""
        return self._cached("health", self._health)

    def api_health(self) -> bool:
        """``GET /api/v1/health`` (authenticated): whether the database is reachable. A rejected
        key is an ``AuthError``."""
        return self._cached("api_health", lambda: bool(self._api("/api/v1/health").get("databaseConnectivity")))

    def version(self) -> HeadscaleVersion:
        """``GET /version`` (v0.27+); older servers answer 404 (``ApiError``)."""
        return self._cached("version", self._version)

    def nodes(self) -> tuple[HeadscaleNode, ...]:
        return self._cached("nodes", lambda: tuple(
            HeadscaleNode.from_json(n) for n in self._api("/api/v1/node").get("nodes") or [] if isinstance(n, dict)))

    def routes(self) -> tuple[HeadscaleRoute, ...]:
        """Every advertised or approved route, from the node fields (v0.26+) or ``/api/v1/routes``."""
        nodes = self.nodes()
        if not nodes or nodes[0].has_route_fields:
            return tuple(
                HeadscaleRoute(prefix, n.id, n.given_name or n.name, prefix in n.available_routes,
                               prefix in n.approved_routes, prefix in n.subnet_routes)
                for n in nodes for prefix in dict.fromkeys(n.available_routes + n.approved_routes))
        return self._cached("routes", self._legacy_routes)

    # -- plumbing ---------------------------------------------------------------------------

    def _cached(self, key: str, load: Callable[[], _T]) -> _T:
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = load()
                except ClientError as exc:
                    self._cache[key] = exc
            value = self._cache[key]
        if isinstance(value, ClientError):
            raise value
        return value  # type: ignore[return-value]

    def _health(self) -> str:
        response = self._get("/health", auth=False)
        status = _json(response).get("status") if _is_json(response) else None
        if response.status_code == 200 and status == "pass":
            return "pass"
        raise ApiError(f"Headscale /health answered HTTP {response.status_code} with status {status!r}"
                       + (" (its database ping failed)" if status == "fail" else ""),
                       component=COMPONENT, target=self.url, status=response.status_code, code=str(status or ""))

    def _version(self) -> HeadscaleVersion:
        response = self._get("/version", auth=False)
        if response.status_code != 200 or not _is_json(response):
            raise ApiError(f"Headscale /version answered HTTP {response.status_code} (added in v0.27)",
                           component=COMPONENT, target=self.url, status=response.status_code)
        data = _json(response)
        go = data.get("go") or {}
        return HeadscaleVersion(str(data.get("version") or ""), str(data.get("commit") or ""),
                                str(go.get("version") or "") if isinstance(go, dict) else "")

    def _legacy_routes(self) -> tuple[HeadscaleRoute, ...]:
        routes = []
        for r in self._api("/api/v1/routes").get("routes") or []:
            node = r.get("node") or {}
            routes.append(HeadscaleRoute(
                str(r.get("prefix") or ""), str(node.get("id") or ""),
                str(node.get("givenName") or node.get("name") or ""), bool(r.get("advertised")),
                bool(r.get("enabled")), bool(r.get("isPrimary")), route_id=str(r.get("id") or "")))
        return tuple(routes)

    def _api(self, path: str) -> dict[str, Any]:
        if not self._api_key:
            raise AuthError("headscale.api_key is empty: the API needs a key", component=COMPONENT, target=self.url)
        response = self._get(path, auth=True)
        if response.status_code == 401:
            raise AuthError(f"Headscale rejected the API key (HTTP 401 on {path}): it is wrong, expired or revoked",
                            component=COMPONENT, target=self.url)
        if response.status_code != 200 or not _is_json(response):
            body = _json(response) if _is_json(response) else {}
            detail = body.get("message") or response.text.strip()[:200] or "(empty)"
            raise ApiError(f"Headscale answered {path} with HTTP {response.status_code}: {detail}",
                           component=COMPONENT, target=self.url, status=response.status_code,
                           code=str(body.get("code") or ""))
        return _json(response)

    def _get(self, path: str, *, auth: bool) -> httpx.Response:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if auth else {}
        try:
            return self._http.get(path, headers=headers)
        except httpx.TimeoutException:
            message = f"Headscale at {self.url} did not answer in time"
        except httpx.ConnectError as exc:
            message = f"cannot connect to Headscale at {self.url}: {_reason(exc)}"
        except httpx.TransportError as exc:
            message = f"Headscale at {self.url} failed: {_reason(exc)}"
        raise UnreachableError(message, component=COMPONENT, target=self.url)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HeadscaleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "TLS certificate verification failed (set headscale.ca_bundle to the CA that signs it)"
    if "Connection refused" in text:
        return "connection refused"
    return text or type(exc).__name__


def _is_json(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def _json(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    return data if isinstance(data, dict) else {}

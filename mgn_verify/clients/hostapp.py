"""A typed client for the read side of the GuildNet Host App API (guildnet-host-app.md, "D").

::

    with HostAppClient.from_config(config) as api:
        for entry in api.health().clusters:
            print(entry.id, entry.status, entry.code)

The Host App's quirks are handled here, once:

- bodies are parsed as JSON whatever the Content-Type (many routes are sniffed ``text/plain``);
- errors are the structured ``{code, message, request_id, details}`` when the app sends one
  (``ApiError.code``), else the plain-text body or the bare status;
- a per-cluster GET answered ``200 []`` where an object was expected means the Host App has no
  kube clients for the cluster: :class:`DegradedError`, never an empty success; a mutation's
  ``503 no_k8s_clients`` is the same error;
- the cluster's state comes from ``/api/cluster/{id}/status``, never the dead ``/health`` route;
- 401 (mutations from a non-loopback peer) is an :class:`~mgn_verify.AuthError`.

TLS is always verified (``ca_bundle`` adds GuildNet's own CA as a trust anchor). Idempotent
calls are retried on connection errors and 502/503/504; POST never is. The bearer token is
sent (the served app ignores it, a fronting proxy may not) but never logged nor put in an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mgn_verify._exceptions import ApiError, AuthError

from ._http import TlsVerificationError, Transport, Unreachable

if TYPE_CHECKING:
    import httpx

    from mgn_verify.config import Config

__all__ = [
    "COMPONENT",
    "ClusterRecord",
    "ClusterStatus",
    "DbHealth",
    "DegradedError",
    "HealthEntry",
    "HealthReport",
    "HostAppClient",
    "Server",
    "ServerPort",
    "TlsVerificationError",
    "Unreachable",
    "Workspace",
]

COMPONENT = "hostapp"


class DegradedError(ApiError):
    """The Host App has no kube clients for the cluster: a GET answered ``200 []`` where an
    object was expected, or a mutation answered ``503 no_k8s_clients``."""


# -- models -----------------------------------------------------------------------------------


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """A record of ``GET /api/deploy/clusters``: ``state`` is creating, imported or ready."""

    id: str
    name: str
    state: str
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ClusterRecord:
        return cls(str(data.get("id") or ""), str(data.get("name") or ""), str(data.get("state") or ""),
                   _str(data, "createdAt"), _str(data, "updatedAt"))


@dataclass(frozen=True, slots=True)
class HealthEntry:
    """One cluster or Headscale entry of ``/api/health``. ``status``: ok, error or unknown;
    ``code``: no_kubeconfig, cluster_unreachable, bad_kubeconfig (clusters only)."""

    id: str
    status: str
    name: str = ""
    code: str | None = None
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> HealthEntry:
        return cls(str(data.get("id") or ""), str(data.get("status") or "unknown"), str(data.get("name") or ""),
                   _str(data, "code"), _str(data, "error"), _str(data, "note"))


@dataclass(frozen=True, slots=True)
class HealthReport:
    """``GET /api/health``: every registered cluster and Headscale record, with its status."""

    clusters: tuple[HealthEntry, ...]
    headscale: tuple[HealthEntry, ...]

    def cluster(self, cluster_id: str) -> HealthEntry | None:
        return next((c for c in self.clusters if c.id == cluster_id), None)


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """``GET /api/cluster/{id}/status``. ``recommended_action``: attach_kubeconfig or
    check_cluster_network (None when all is well)."""

    cluster_id: str
    kubeconfig_present: bool
    kubeconfig_valid: bool
    k8s_reachable: bool
    pf_available: bool
    tsnet_available: bool
    k8s_error: str | None = None
    recommended_action: str | None = None
    last_checked: str | None = None

    @property
    def ok(self) -> bool:
        return self.kubeconfig_present and self.kubeconfig_valid and self.k8s_reachable

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ClusterStatus:
        return cls(str(data.get("clusterId") or ""), bool(data.get("kubeconfigPresent")),
                   bool(data.get("kubeconfigValid")), bool(data.get("k8sReachable")),
                   bool(data.get("pfAvailable")), bool(data.get("tsnetAvailable")), _str(data, "k8sError"),
                   _str(data, "recommendedAction"), _str(data, "lastChecked"))


@dataclass(frozen=True, slots=True)
class ServerPort:
    port: int
    name: str | None = None  # "<nil>" for an unnamed port: the Host App's own quirk, kept


@dataclass(frozen=True, slots=True)
class Server:
    """An element of ``GET /api/cluster/{id}/servers``. ``status``: running, pending, failed."""

    id: str
    name: str
    image: str
    status: str
    ports: tuple[ServerPort, ...] = ()

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Server:
        ports = tuple(ServerPort(int(p.get("port") or 0), _str(p, "name"))
                      for p in data.get("ports") or [] if isinstance(p, dict))
        return cls(str(data.get("id") or ""), str(data.get("name") or ""), str(data.get("image") or ""),
                   str(data.get("status") or ""), ports)


@dataclass(frozen=True, slots=True)
class DbHealth:
    """``GET /api/cluster/{id}/db/health``: ``status`` ok or unavailable, the discovered address."""

    status: str
    addr: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> DbHealth:
        return cls(str(data.get("status") or ""), str(data.get("addr") or ""), _str(data, "error"))


@dataclass(frozen=True, slots=True)
class Workspace:
    """The raw Workspace custom resource of ``GET …/workspaces/{name}``. ``phase`` is None
    until the operator's first reconcile (a new CR has no ``status``)."""

    name: str
    phase: str | None
    ready_replicas: int
    raw: dict[str, Any]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Workspace:
        status = data.get("status") if isinstance(data.get("status"), dict) else {}
        assert isinstance(status, dict)
        name = str((data.get("metadata") or {}).get("name") or "")
        return cls(name, _str(status, "phase"), int(status.get("readyReplicas") or 0), data)


# -- the client -------------------------------------------------------------------------------


class HostAppClient:
    """The Host App at ``base_url`` (``https://127.0.0.1:8090`` by default)."""

    def __init__(self, base_url: str, *, token: str = "", ca_bundle: str | None = None, timeout: float = 30.0,
                 retries: int = 2, backoff: float = 0.2) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._transport = Transport(self.base_url, COMPONENT, ca_bundle=ca_bundle, timeout=timeout,
                                    retries=retries, backoff=backoff, headers=headers)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> HostAppClient:
        """From ``api.base_url``, ``api.token``, ``api.ca_bundle`` and ``api.timeout``."""
        kwargs: dict[str, Any] = {"token": config["api.token"] or "", "ca_bundle": config["api.ca_bundle"],
                                  "timeout": float(config["api.timeout"])}
        kwargs.update(overrides)
        return cls(str(config["api.base_url"]), **kwargs)

    def __repr__(self) -> str:
        return f"HostAppClient({self.base_url!r})"

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> HostAppClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- host-level ---------------------------------------------------------------------------

    def healthz(self, *, timeout: float | None = None) -> str:
        """The body of ``/healthz`` (``ok`` on a Host App; it checks nothing else)."""
        return self._call("GET", "/healthz", timeout=timeout).text

    def health(self, *, timeout: float | None = None) -> HealthReport:
        body = self._object("GET", "/api/health", timeout=timeout)
        return HealthReport(_entries(body.get("clusters")), _entries(body.get("headscale")))

    def clusters(self, *, timeout: float | None = None, retries: int | None = None) -> list[ClusterRecord]:
        body = self._json(self._call("GET", "/api/deploy/clusters", timeout=timeout, retries=retries),
                          "GET /api/deploy/clusters")
        return [ClusterRecord.parse(r) for r in _list(body, "GET /api/deploy/clusters") if isinstance(r, dict)]

    def cluster(self, cluster_id: str) -> ClusterRecord | None:
        """The record, or None when the Host App has none (its bare 404)."""
        path = f"/api/deploy/clusters/{_seg(cluster_id)}"
        response = self._call("GET", path, ok=(200, 404))
        if response.status_code == 404:
            return None
        return ClusterRecord.parse(self._json_object(response, f"GET {path}"))

    # -- per cluster ---------------------------------------------------------------------------

    def cluster_status(self, cluster_id: str) -> ClusterStatus:
        """``/api/cluster/{id}/status`` (answered even without kube clients, unlike the rest)."""
        return ClusterStatus.parse(self._object("GET", f"/api/cluster/{_seg(cluster_id)}/status"))

    def db_health(self, cluster_id: str) -> DbHealth:
        return DbHealth.parse(self._object("GET", f"/api/cluster/{_seg(cluster_id)}/db/health", cluster=cluster_id))

    def servers(self, cluster_id: str) -> list[Server]:
        """The cluster's workspaces, simplified. The Host App answers ``[]`` both when there are
        none and when it cannot list them (no kube clients, API error): ask ``cluster_status``."""
        path = f"/api/cluster/{_seg(cluster_id)}/servers"
        body = self._json(self._call("GET", path), f"GET {path}")
        return [Server.parse(s) for s in _list(body, f"GET {path}") if isinstance(s, dict)]

    def workspace(self, cluster_id: str, name: str) -> Workspace | None:
        """The Workspace CR, or None on the Host App's ``404 not_found`` (which it also gives for
        any error reading it, a connectivity error included)."""
        path = f"/api/cluster/{_seg(cluster_id)}/workspaces/{_seg(name)}"
        response = self._call("GET", path, ok=(200, 404))
        if response.status_code == 404:
            return None
        return Workspace.parse(self._json_object(response, f"GET {path}", cluster=cluster_id))

    def create_workspace(self, cluster_id: str, name: str, image: str,
                         ports: Sequence[dict[str, Any]] = ()) -> str:
        """Create a Workspace (``202 {id, status: pending}``); returns its name. Never retried.
        Only ``image`` and ``ports`` are sent: a real cluster's CRD schema prunes the rest."""
        body: dict[str, Any] = {"name": name, "image": image}
        if ports:
            body["ports"] = list(ports)
        path = f"/api/cluster/{_seg(cluster_id)}/workspaces"
        answer = self._json_object(self._call("POST", path, json=body, ok=(200, 201, 202)), f"POST {path}")
        return str(answer.get("id") or name)

    def delete_workspace(self, cluster_id: str, name: str) -> bool:
        """Delete a Workspace; False when the Host App says ``404 not_found`` (already gone)."""
        path = f"/api/cluster/{_seg(cluster_id)}/workspaces/{_seg(name)}"
        response = self._call("DELETE", path, ok=(200, 404))
        return response.status_code == 200

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: Any = None, ok: Sequence[int] = (200,),
              timeout: float | None = None, retries: int | None = None) -> httpx.Response:
        response = self._transport.request(method, path, json=json, timeout=timeout, retries=retries)
        if response.status_code in ok:
            return response
        raise _error(method, path, response)

    def _object(self, method: str, path: str, *, timeout: float | None = None,
                cluster: str | None = None) -> dict[str, Any]:
        return self._json_object(self._call(method, path, timeout=timeout), f"{method} {path}", cluster=cluster)

    def _json(self, response: httpx.Response, what: str) -> Any:
        # Parsed whatever the Content-Type: many routes are sniffed text/plain by Go.
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"{what}: the Host App answered HTTP {response.status_code} with a body that "
                           f"is not JSON ({_excerpt(response.text)!r})", component=COMPONENT,
                           target=self.base_url, status=response.status_code, code="bad_json") from None

    def _json_object(self, response: httpx.Response, what: str, *, cluster: str | None = None) -> dict[str, Any]:
        body = self._json(response, what)
        if isinstance(body, list) and not body and cluster is not None:
            raise DegradedError(
                f"{what}: the Host App answered 200 [] instead of an object: it has no kube clients for "
                f"cluster {cluster} (no usable kubeconfig)", component=COMPONENT, target=self.base_url,
                status=200, code="no_k8s_clients")
        if not isinstance(body, dict):
            raise ApiError(f"{what}: expected a JSON object, got {type(body).__name__}", component=COMPONENT,
                           target=self.base_url, status=response.status_code, code="bad_shape")
        return body


def _seg(value: str) -> str:
    return quote(value, safe="")


def _list(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise ApiError(f"{what}: expected a JSON array, got {type(body).__name__}", component=COMPONENT,
                       code="bad_shape")
    return body


def _entries(value: Any) -> tuple[HealthEntry, ...]:
    return tuple(HealthEntry.parse(e) for e in value or [] if isinstance(e, dict))


def _excerpt(text: str, limit: int = 120) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _error(method: str, path: str, response: httpx.Response) -> ApiError | AuthError:
    """The typed error for an unexpected status, from the structured body when there is one."""
    status = response.status_code
    code, message = "", _excerpt(response.text)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("code" in body or "message" in body):
        code = str(body.get("code") or "")
        message = str(body.get("message") or "")
        details = body.get("details")
        if isinstance(details, str) and details:
            message = f"{message} ({_excerpt(details)})"
        elif isinstance(details, dict) and details.get("message"):
            message = f"{message} ({_excerpt(str(details['message']))})"
    said = ": ".join(p for p in (code, message) if p) or response.reason_phrase or "no body"
    text = f"{method} {path}: HTTP {status} {said}"
    target = str(response.request.url.copy_with(path="/", query=None)).rstrip("/")
    if status in (401, 403):
        hint = " (the Host App accepts mutations only from a loopback address)" if status == 401 else ""
        return AuthError(text + hint, component=COMPONENT, target=target)
    if status == 503 and code == "no_k8s_clients":
        return DegradedError(text, component=COMPONENT, target=target, status=status, code=code)
    return ApiError(text, component=COMPONENT, target=target, status=status, code=code)

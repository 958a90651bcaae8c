"""A typed client for the GuildNet Host App API (guildnet-host-app.md, "D"): the read side the
checks use and the mutating side the lifecycle commands use.

::

    with HostAppClient.from_config(config) as api:
        for entry in api.health().clusters:
            print(entry.id, entry.status, entry.code)
        api.create_workspace("lab", {"name": "web", "image": "nginx:1.25"})

The Host App's quirks are handled here, once:

- bodies are parsed as JSON whatever the Content-Type (many routes are sniffed ``text/plain``);
- errors are typed (``_hostapp_errors``): 404 ``NotFoundError``, 401 ``AuthError``, 409/422
  ``ConflictError`` (bootstrap's ``cluster_connect``/``cluster_client``/``cluster_rdb`` said in
  words), 500 ``ServerError`` (a Workspace create's Kubernetes reason), 429/502/503/504
  ``UnavailableError``, no answer in time ``ClientTimeoutError``; each names method and path;
- a per-cluster GET answered ``200 []`` where an object was expected means the Host App has no
  kube clients for the cluster: :class:`DegradedError`, never an empty success; a mutation's
  ``503 no_k8s_clients`` is the same error;
- the cluster's state comes from ``/api/cluster/{id}/status``, never the dead ``/health`` route;
- the kubeconfig is sent as the raw YAML the Host App expects (it never decodes base64), and
  its secrets are registered with the redactor (``config.redactor`` with ``from_config``);
- the Host App accepts mutations only from a loopback peer: ``loopback`` / ``loopback_note()``
  say so before acting, and a 401 says so after.

Retries (``_http``): exponential backoff with full jitter, only for idempotent calls (GET,
DELETE, and the POSTs that replace or read a value: ``attach-kubeconfig``, ``kubeconfig``), on
connection failures and 429/502/503/504. A create (bootstrap, register, workspace) is sent once:
``create_workspace`` first asks whether the workspace exists and raises ``ConflictError``
instead of posting again; ``bootstrap``/``register_cluster`` first look the name up.

It never calls the settings PUTs (``/api/settings/{tailscale,database,global}``): each one makes
the Host App exit to "apply" it (§0.1 fact 8), so ``_call`` refuses them outright.

TLS is always verified (``ca_bundle`` adds GuildNet's own CA as a trust anchor). The bearer
token is sent (the served app ignores it, a fronting proxy may not) but never logged nor put in
an error or a repr.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import quote

from mgn_verify._exceptions import ApiError, ConflictError, UsageError

from ._hostapp_errors import COMPONENT, DegradedError, http_error, is_loopback_url, kubeconfig_secrets, loopback_note
from ._hostapp_models import (
    ClusterRecord,
    ClusterStatus,
    DbHealth,
    HealthEntry,
    HealthReport,
    LogLine,
    ProxyAnswer,
    Server,
    ServerPort,
    Workspace,
    cluster_matches,
)
from ._http import TimedOut, TlsVerificationError, Transport, Unreachable, shown_url

if TYPE_CHECKING:
    import httpx

    from mgn_verify.config import Config
    from mgn_verify.config.redact import Redactor

__all__ = [
    "COMPONENT",
    "ClusterRecord",
    "ClusterStatus",
    "DbHealth",
    "DegradedError",
    "HealthEntry",
    "HealthReport",
    "HostAppClient",
    "LogLine",
    "ProxyAnswer",
    "Server",
    "ServerPort",
    "TimedOut",
    "TlsVerificationError",
    "Unreachable",
    "Workspace",
    "cluster_matches",
    "is_loopback_url",
    "loopback_note",
]

#: Seconds a bootstrap may take at least (§2.3: namespaces 10 s, then RethinkDB 10 s).
BOOTSTRAP_TIMEOUT = 30.0
#: Appended to a TLS failure whose issuer is not trusted: GuildNet signs its own certificate.
TLS_FIX = "set api.ca_bundle (MGN_API_CA_BUNDLE) to the CA that signs the Host App's certificate"
#: Any PUT under these makes the Host App shut down (§0.1 fact 8, §2.4).
_SETTINGS = ("/api/settings", "/api/api/settings")


class HostAppClient:
    """The Host App at ``base_url`` (``https://127.0.0.1:8090`` by default). ``redactor``
    receives the secrets the client handles (kubeconfigs); one of its own when None."""

    def __init__(self, base_url: str, *, token: str = "", ca_bundle: str | None = None, timeout: float = 30.0,
                 retries: int = 2, backoff: float = 0.2, redactor: Redactor | None = None) -> None:
        from mgn_verify.config.redact import Redactor

        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        #: As messages show it: a password in the URL is ``***`` (the transport has the real one).
        self.base_url = shown_url(base_url.rstrip("/"))
        self.redactor = redactor if redactor is not None else Redactor()
        if token:
            self.redactor.add(token)
        # A proxy from the environment would make a loopback call non-loopback: mutations refused.
        self._transport = Transport(base_url, COMPONENT, ca_bundle=ca_bundle, timeout=timeout,
                                    retries=retries, backoff=backoff, headers=headers,
                                    trust_env=not is_loopback_url(base_url), tls_fix=TLS_FIX)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> HostAppClient:
        """From ``api.base_url``, ``api.token``, ``api.ca_bundle`` and ``api.timeout``; secrets
        go to ``config.redactor``."""
        kwargs: dict[str, Any] = {"token": config["api.token"] or "", "ca_bundle": config["api.ca_bundle"],
                                  "timeout": float(config["api.timeout"]), "redactor": config.redactor}
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

    @property
    def loopback(self) -> bool:
        """Whether ``base_url`` is loopback, the only peer the Host App takes mutations from."""
        return is_loopback_url(self.base_url)

    def loopback_note(self) -> str | None:
        """A warning to print before mutating through a non-loopback URL (None: loopback)."""
        return loopback_note(self.base_url)

    def mark_kubeconfig(self, text: str) -> None:
        """Register a kubeconfig's secrets (and its whole text) with the redactor."""
        for secret in kubeconfig_secrets(text):
            self.redactor.add(secret)

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

    def cluster_by_name(self, name: str) -> ClusterRecord | None:
        """The one record named ``name``, or None. The Host App does not de-duplicate names (each
        bootstrap makes a new id): several records of that name are a ``ConflictError``."""
        found = [r for r in self.clusters() if r.name == name]
        if len(found) > 1:
            ids = ", ".join(r.id for r in found)
            raise ConflictError(f"GET /api/deploy/clusters: {len(found)} clusters are named {name!r} ({ids}): "
                                "use an id", component=COMPONENT, target=self.base_url, code="ambiguous_name",
                                details={"ids": [r.id for r in found]})
        return found[0] if found else None

    # -- cluster records (mutating) -------------------------------------------------------------

    def bootstrap(self, kubeconfig_text: str, *, name: str | None = None, namespace: str | None = None,
                  timeout: float | None = None, allow_duplicate: bool = False) -> str:
        """Register a cluster with its kubeconfig (``POST /api/bootstrap``); returns its id.

        The Host App connects to the cluster and its RethinkDB before answering (up to ~20 s),
        and rolls back on failure (``ConflictError`` saying which step failed). Sent once. A
        ``name`` already registered is a ``ConflictError`` without any POST unless
        ``allow_duplicate`` (the Host App itself would make a second cluster of that name)."""
        if not kubeconfig_text.strip():
            raise UsageError("the kubeconfig to bootstrap with is empty")
        self.mark_kubeconfig(kubeconfig_text)
        if name and not allow_duplicate:
            self._refuse_existing_cluster(name, "/api/bootstrap")
        cluster: dict[str, Any] = {"kubeconfig": kubeconfig_text}  # raw YAML: base64 is never decoded
        cluster.update({k: v for k, v in (("name", name), ("namespace", namespace)) if v})
        path = "/api/bootstrap"
        # Its two connection budgets are 10 s each: a shorter api.timeout would give up on a
        # bootstrap the Host App then completes.
        wait = timeout if timeout is not None else max(self._transport.timeout, BOOTSTRAP_TIMEOUT)
        answer = self._json_object(self._call("POST", path, json={"cluster": cluster}, timeout=wait), f"POST {path}")
        cluster_id = answer.get("clusterId")
        if not cluster_id:  # {"ok": true}: it saw no kubeconfig, so it registered nothing
            raise ApiError(f"POST {path}: the Host App registered no cluster (it answered {answer!r})",
                           component=COMPONENT, target=self.base_url, status=200, code="not_registered")
        return str(cluster_id)

    def register_cluster(self, name: str) -> str:
        """A cluster record without a kubeconfig (``POST /api/deploy/clusters``, ``202 {id,
        jobId}``); returns its id. Sent once; a name already registered is a ``ConflictError``."""
        if not name.strip():
            raise UsageError("a cluster to register needs a name")
        path = "/api/deploy/clusters"
        self._refuse_existing_cluster(name, path)
        answer = self._json_object(self._call("POST", path, json={"name": name}, ok=(200, 201, 202)),
                                   f"POST {path}")
        if not answer.get("id"):
            raise ApiError(f"POST {path}: the Host App answered no cluster id ({answer!r})", component=COMPONENT,
                           target=self.base_url, code="bad_shape")
        return str(answer["id"])

    def attach_kubeconfig(self, cluster_id: str, kubeconfig_text: str) -> None:
        """Store (replace) the cluster's kubeconfig. Replacing a value is idempotent: retried."""
        self.mark_kubeconfig(kubeconfig_text)
        path = f"/api/deploy/clusters/{_seg(cluster_id)}?action=attach-kubeconfig"
        self._call("POST", path, json={"kubeconfig": kubeconfig_text}, idempotent=True)

    def cluster_kubeconfig(self, cluster_id: str) -> str | None:
        """The kubeconfig the Host App stores for the cluster (None: none). A secret: it is
        registered with the redactor before it is returned. Reading: retried."""
        path = f"/api/deploy/clusters/{_seg(cluster_id)}?action=kubeconfig"
        response = self._call("POST", path, ok=(200, 404), idempotent=True)
        if response.status_code == 404 or not response.text.strip():
            return None
        self.mark_kubeconfig(response.text)
        return response.text

    def delete_cluster(self, cluster_id: str) -> None:
        """Delete the cluster *record* (the Host App keeps its kubeconfig and cached clients, so
        ``/api/cluster/{id}/…`` keeps answering; always ``200``)."""
        self._call("DELETE", f"/api/deploy/clusters/{_seg(cluster_id)}")

    def _refuse_existing_cluster(self, name: str, path: str) -> None:
        existing = self.cluster_by_name(name)
        if existing is not None:
            raise ConflictError(f"POST {path}: a cluster named {name!r} is already registered (id {existing.id}); "
                                "nothing was sent", component=COMPONENT, target=self.base_url,
                                code="already_exists", details={"id": existing.id, "name": name})

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
        """The Workspace CR, parsed; None on the Host App's ``404 not_found`` (which it also
        gives for any error reading it, a connectivity error included)."""
        raw = self.workspace_resource(cluster_id, name)
        return None if raw is None else Workspace.parse(raw)

    def workspace_resource(self, cluster_id: str, name: str) -> dict[str, Any] | None:
        """The raw Workspace custom resource, or None (``404 not_found``); ``200 []`` (no kube
        clients) is a ``DegradedError``."""
        path = f"/api/cluster/{_seg(cluster_id)}/workspaces/{_seg(name)}"
        response = self._call("GET", path, ok=(200, 404))
        if response.status_code == 404:
            return None
        return self._json_object(response, f"GET {path}", cluster=cluster_id)

    @overload
    def create_workspace(self, cluster_id: str, body: Mapping[str, Any], /) -> dict[str, Any]: ...
    @overload
    def create_workspace(self, cluster_id: str, name: str, image: str, /,
                         ports: Sequence[dict[str, Any]] = ()) -> str: ...

    def create_workspace(self, cluster_id: str, body: Mapping[str, Any] | str, image: str | None = None, /,
                         ports: Sequence[dict[str, Any]] = ()) -> dict[str, Any] | str:
        """Create a Workspace; never retried.

        ``create_workspace(cluster, body)``: ``body`` is sent as is (``name``, ``image``, ``env``,
        ``ports``, ``args``, ``resources``, ``labels``; a real cluster's CRD schema prunes all but
        image and ports). A named workspace is first looked up, and one that exists is a
        ``ConflictError`` with no POST. Returns the answer, ``{"id": NAME, "status": "pending"}``.

        ``create_workspace(cluster, name, image, ports)`` (the smoke check's form, for a fresh
        random name) posts ``{name, image, ports}`` at once and returns the name."""
        path = f"/api/cluster/{_seg(cluster_id)}/workspaces"
        if isinstance(body, str):
            payload: dict[str, Any] = {"name": body, "image": image}
            if ports:
                payload["ports"] = list(ports)
            answer = self._json_object(self._call("POST", path, json=payload, ok=(200, 201, 202)), f"POST {path}")
            return str(answer.get("id") or body)
        name = str(body.get("name") or "")
        if name and self.workspace_resource(cluster_id, name) is not None:
            raise ConflictError(f"POST {path}: workspace {name!r} already exists on cluster {cluster_id!r}; "
                                "nothing was sent", component=COMPONENT, target=self.base_url,
                                code="already_exists", details={"name": name, "cluster": cluster_id})
        return self._json_object(self._call("POST", path, json=dict(body), ok=(200, 201, 202)), f"POST {path}")

    def delete_workspace(self, cluster_id: str, name: str) -> bool:
        """Delete a Workspace; False when the Host App says ``404 not_found`` (already gone, or
        a retry after a first attempt that did delete it)."""
        path = f"/api/cluster/{_seg(cluster_id)}/workspaces/{_seg(name)}"
        response = self._call("DELETE", path, ok=(200, 404))
        return response.status_code == 200

    def workspace_logs(self, cluster_id: str, name: str, limit: int = 200) -> list[LogLine]:
        """The last ``limit`` log lines of the workspace's pods (``msg`` is ``[<pod>] <line>``).
        No pods (``404 no_pods``) is a ``NotFoundError`` with code ``no_pods``: not the same as
        a workspace with an empty log. Without kube clients the Host App answers ``[]``."""
        path = f"/api/cluster/{_seg(cluster_id)}/workspaces/{_seg(name)}/logs?limit={max(int(limit), 1)}"
        body = self._json(self._call("GET", path), f"GET {path}")
        return [LogLine.parse(x) for x in _list(body, f"GET {path}") if isinstance(x, dict)]

    def proxy_get(self, cluster_id: str, service: str, path: str = "/", *,
                  timeout: float | None = None) -> ProxyAnswer:
        """``GET /api/cluster/{id}/proxy/server/{service}/{path}``: what the workspace (or the
        proxy on its way, ``502 upstream error``) answered, any status, never raised. Retried
        only when no answer came from the Host App (a status is the workspace's answer). Sent
        without the bearer token: the Host App passes a caller's ``Authorization`` header on to the
        cluster's API server (client-go then keeps it instead of the cluster's own credentials),
        which would refuse the request and learn the token."""
        rest = path.lstrip("/")
        url = f"/api/cluster/{_seg(cluster_id)}/proxy/server/{_seg(service)}/{quote(rest, safe='/?&=%:@+,;~')}"
        response = self._transport.request("GET", url, timeout=timeout, retry_statuses=(), anonymous=True)
        return ProxyAnswer(response.status_code, response.text, dict(response.headers))

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: Any = None, ok: Collection[int] = (200,),
              timeout: float | None = None, retries: int | None = None,
              idempotent: bool | None = None) -> httpx.Response:
        if method.upper() == "PUT" and path.startswith(_SETTINGS):
            raise UsageError(f"refusing PUT {path}: a settings PUT makes the Host App shut down")
        response = self._transport.request(method, path, json=json, timeout=timeout, retries=retries,
                                           idempotent=idempotent)
        if response.status_code in ok:
            return response
        raise http_error(method, path, response, base_url=self.base_url, redact=self.redactor.text)

    def _object(self, method: str, path: str, *, timeout: float | None = None,
                cluster: str | None = None) -> dict[str, Any]:
        return self._json_object(self._call(method, path, timeout=timeout), f"{method} {path}", cluster=cluster)

    def _json(self, response: httpx.Response, what: str) -> Any:
        # Parsed whatever the Content-Type: many routes are sniffed text/plain by Go.
        try:
            return response.json()
        except ValueError:
            text = _excerpt(self.redactor.text(response.text[:4096]))  # redacted before it is cut
            raise ApiError(f"{what}: the Host App answered HTTP {response.status_code} with a body that "
                           f"is not JSON ({text!r})", component=COMPONENT,
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

"""A GuildNet Host App simulator (docxology/GuildNet, "D") over HTTPS.

It follows guildnet-host-app.md §9: the double-mount quirks (``/api/bootstrap`` works,
``/bootstrap``, ``/api/settings/cluster/*``, ``/api/audit`` and ``/api/cluster/{id}/health``
do not), the loopback-only mutation guard (``401 unauthorized`` text), the cluster records,
``/api/health``, ``/api/cluster/{id}/status``, workspaces and the silent degradation without
kube clients. Each cluster it manages is a :class:`~mgn_verify.lab.kube.KubeSimulator`'s state
(one at construction, more with ``add_cluster``), reached "as a client" through the stored
kubeconfig: a kube fault (down, expired TLS, forbidden) shows through exactly where the real
Host App would see it, for that cluster only.

Every answered request is logged in ``requests`` as ``(method, path-with-query, status)``.
Faults: ``hostapp.down``, ``hostapp.no_kubeconfig``, ``hostapp.http_500``, ``tls.expired``.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._httpserver import DropConnection, HTTPSimulator, LabHTTPServer, Request, Response
from mgn_verify.lab._tls import LabCA, server_ssl_context
from mgn_verify.lab.hostapp.cluster import handle_cluster
from mgn_verify.lab.hostapp.deploy import bootstrap, clusters_api
from mgn_verify.lab.hostapp.model import (
    Clients,
    Ctx,
    RequestRecord,
    empty,
    go_string,
    js,
    json_err,
    new_request_id,
    not_found_page,
    parse_kubeconfig,
    rfc3339,
    text,
)
from mgn_verify.lab.kube.errors import KubeApiError, KubeConnectionError
from mgn_verify.lab.kube.simulator import KubeSimulator

__all__ = ["HostAppSimulator", "RequestRecord"]

_CORS_ORIGIN = "https://127.0.0.1:8090"  # the seeded frontend_origin setting (§1.3)
_CORS = [
    ("Vary", "Origin"),
    ("Access-Control-Allow-Credentials", "true"),
    ("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Requested-With, Accept, X-Request-Id"),
]

RdbProbe = Callable[[str, int], str | None]


@dataclass(frozen=True)
class _Backend:
    """One cluster the Host App manages: its API server, RethinkDB probe and own faults."""

    kube: KubeSimulator
    rdb_probe: RdbProbe | None
    faults: FaultSet | None


class HostAppSimulator(HTTPSimulator):
    """The Host App's HTTPS API on 127.0.0.1, with ``cluster_id`` registered and bootstrapped."""

    FAULTS: ClassVar[frozenset[str]] = frozenset(
        {"hostapp.down", "hostapp.no_kubeconfig", "hostapp.http_500", "tls.expired"}
    )

    def __init__(
        self,
        *,
        ca: LabCA,
        kube: KubeSimulator,
        faults: FaultSet | None = None,
        cluster_id: str = "lab",
        cluster_name: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        job_delay: float = 0.05,
        rdb_probe: RdbProbe | None = None,
        register_cluster: bool = True,
    ) -> None:
        self.ca = ca
        self.kube = kube
        self.faults = faults if faults is not None else FaultSet(self.FAULTS)
        self.cluster_id = cluster_id
        self.job_delay = job_delay
        # Called with the discovered RethinkDB address; returns an error text or None (reachable).
        self.rdb_probe: RdbProbe | None = rdb_probe
        # Toggle: treat every peer as a tailnet (non-loopback) address, so guarded mutations get 401.
        self.simulate_remote_peer = False
        self._lock = threading.RLock()
        self._clusters: dict[str, dict[str, Any]] = {}
        self._kubeconfigs: dict[str, str] = {}
        self._backends: dict[str, _Backend] = {}
        self._transient: list[int] = []  # statuses the next /api/ requests get (a flaky proxy)
        self._retry_after: str | None = None  # the Retry-After header of an injected 429/503
        self._resets = 0  # how many next /api/ requests get their connection closed unanswered
        # register_cluster=False: the Host App knows the cluster's API server (a bootstrap can
        # reach it) but has no record of it yet (the bare lab, before `mgn install`).
        self.add_cluster(cluster_id, kube, name=cluster_name, registered=register_cluster)
        self._pending_ready: dict[str, float] = {}
        self._jobs: dict[str, dict[str, Any]] = {}
        self._tailscale = {"login_server": "", "preauth_key": "", "hostname": "host-app"}
        self._log: list[RequestRecord] = []
        self._ctx = server_ssl_context(ca.issue_server_cert("hostapp"))
        self._expired_ctx = server_ssl_context(ca.issue_expired_server_cert("hostapp-expired"))
        self._server = LabHTTPServer(
            self._app,
            ssl_context=self._pick_context,
            down=lambda: self.faults.active("hostapp.down"),
            host=host,
            port=port,
            name="hostapp-sim",
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def add_cluster(
        self,
        cluster_id: str,
        kube: KubeSimulator,
        *,
        name: str | None = None,
        rdb_probe: RdbProbe | None = None,
        faults: FaultSet | None = None,
        registered: bool = True,
    ) -> None:
        """Register (as a bootstrap would) one more cluster served by ``kube``. ``faults`` is the
        cluster's own fault set: ``hostapp.no_kubeconfig`` there affects this cluster only."""
        with self._lock:
            self._backends[cluster_id] = _Backend(kube, rdb_probe, faults)
            if not registered:
                return
            self._clusters[cluster_id] = {"id": cluster_id, "name": name or cluster_id, "state": "imported"}
            if kube.port:
                self._kubeconfigs[cluster_id] = kube.kubeconfig_text(embed_ca=True)

    def start(self) -> None:
        with self._lock:
            # The bootstrap stored each kube simulator's kubeconfig (CA embedded, like a join file).
            for cid, backend in self._backends.items():
                if cid not in self._kubeconfigs and cid in self._clusters and backend.kube.port:
                    self._kubeconfigs[cid] = backend.kube.kubeconfig_text(embed_ca=True)
        super().start()

    def inject_transient(self, status: int, count: int = 1, *, retry_after: str | None = None) -> None:
        """The next ``count`` requests under ``/api/`` get ``status`` with a plain-text body, as
        from a proxy in front of the app (502/503/504, or 429 with ``retry_after`` as its
        ``Retry-After`` header): for testing clients' retries."""
        with self._lock:
            self._transient.extend([status] * count)
            self._retry_after = retry_after

    def inject_reset(self, count: int = 1) -> None:
        """The next ``count`` requests under ``/api/`` get their connection closed without a
        response (logged with status 0): for testing clients' retries on a reset connection."""
        with self._lock:
            self._resets += count

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _pick_context(self) -> ssl.SSLContext:
        return self._expired_ctx if self.faults.active("tls.expired") else self._ctx

    # -- cluster access "as a client" (used by hostapp.cluster too) ------------------------------

    def kubeconfig_withheld(self, cid: str) -> bool:
        """``hostapp.no_kubeconfig``, for every cluster or (its own fault set) this one only."""
        return self.faults.active("hostapp.no_kubeconfig") or self._cluster_fault(cid, "hostapp.no_kubeconfig")

    def clients(self, cid: str) -> Clients | None:
        """Kube clients built from the stored kubeconfig; None means the degraded modes apply."""
        if self.kubeconfig_withheld(cid):
            return None
        with self._lock:
            raw = self._kubeconfigs.get(cid)
        if raw is None:
            return None
        try:
            return parse_kubeconfig(raw)
        except ValueError:
            return None

    def _cluster_fault(self, cid: str, name: str) -> bool:
        backend = self._backends.get(cid)
        return bool(backend and backend.faults is not None and name in backend.faults.known
                    and backend.faults.active(name))

    def _backend(self, clients: Clients) -> _Backend:
        """The cluster the kubeconfig points at; none answers there: connection refused."""
        with self._lock:
            backends = list(self._backends.values())
        for backend in backends:
            if backend.kube.port and clients.server == backend.kube.url.rstrip("/"):
                return backend
        hostport = clients.server.split("://", 1)[-1].split("/", 1)[0]
        raise KubeConnectionError(f"dial tcp {hostport}: connect: connection refused")

    def kube_for(self, clients: Clients) -> KubeSimulator:
        return self._backend(clients).kube

    def _check(
        self, clients: Clients, verb: str = "get", resource: str = "", group: str = "", namespace: str = ""
    ) -> KubeSimulator:
        kube = self._backend(clients).kube
        if clients.token != kube.token:
            raise KubeApiError(401, "Unauthorized", "Unauthorized")
        kube.check_client(verb, resource, group, namespace)
        return kube

    def reachability_error(self, clients: Clients) -> str | None:
        """``GET /version`` (then a namespace list) as the Host App's health check does it."""
        try:
            self._check(clients)
            self._check(clients, "list", "namespaces")
        except KubeConnectionError as err:
            return f'Get "{clients.server}/version?timeout=3s": {err}'
        except KubeApiError as err:
            return err.message
        return None

    def kube_list(
        self, clients: Clients, group: str, plural: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        state = self._check(clients, "list", plural, group, namespace).state
        return state.list(state.rtype(group, plural), namespace, label_selector)

    def kube_get(
        self, clients: Clients, group: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any]:
        state = self._check(clients, "get", plural, group, namespace).state
        return state.get(state.rtype(group, plural), namespace, name)

    def kube_create(
        self, clients: Clients, group: str, plural: str, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        state = self._check(clients, "create", plural, group, namespace).state
        return state.create(state.rtype(group, plural), namespace, body)

    def kube_delete(self, clients: Clients, group: str, plural: str, namespace: str, name: str) -> None:
        state = self._check(clients, "delete", plural, group, namespace).state
        state.delete(state.rtype(group, plural), namespace, name)

    def _rdb_error(self, clients: Clients) -> tuple[str, str | None]:
        """(address, error) of the in-cluster RethinkDB Service, discovered through the cluster."""
        try:
            kube = self._check(clients, "get", "services", "", "default")
        except (KubeApiError, KubeConnectionError) as err:
            return "", f"rethinkdb: discovery failed: {err}"
        backend = self._backend(clients)
        # The first cluster's probe is the ``rdb_probe`` attribute (tests may swap it).
        probe = self.rdb_probe if backend.kube is self.kube else backend.rdb_probe
        endpoint = kube.state.rethinkdb_endpoint()
        if endpoint is None:
            return "", (
                "rethinkdb: no in-cluster service address discovered for service 'rethinkdb' in "
                "namespace 'default'"
            )
        addr = f"{endpoint[0]}:{endpoint[1]}"
        error = probe(*endpoint) if probe is not None else None
        return addr, error

    def db_health(self, clients: Clients) -> dict[str, Any]:
        addr, error = self._rdb_error(clients)
        out: dict[str, Any] = {"status": "unavailable" if error else "ok", "addr": addr}
        if error:
            out["error"] = error
        return out

    # -- HTTP app ------------------------------------------------------------------------------------

    def _app(self, req: Request) -> Response:
        with self._lock:
            reset = self._resets > 0 and req.path.startswith("/api/")
            if reset:
                self._resets -= 1
                self._log.append(RequestRecord(req.method, req.target, 0))
        if reset:
            raise DropConnection  # the server closes the connection: the client sees no answer
        ctx = Ctx(req, req.header("x-request-id") or new_request_id(), self.simulate_remote_peer)
        try:
            resp = self._route(ctx)
        except Exception as exc:  # surface simulator bugs as a 500 the test will notice
            resp = text(500, f"simulator error: {type(exc).__name__}: {exc}")
        resp.headers.append(("X-Request-Id", ctx.request_id))
        origin = req.header("origin")
        if origin and origin == _CORS_ORIGIN:
            resp.headers.extend([("Access-Control-Allow-Origin", origin), *_CORS])
        with self._lock:
            self._log.append(RequestRecord(req.method, req.target, resp.status))
        return resp

    def _route(self, ctx: Ctx) -> Response:
        req, path = ctx.req, ctx.req.path
        if req.method == "OPTIONS":
            return empty(204)
        if path == "/healthz":
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if not path.startswith("/api/"):
            return Response(301, b"", None, [("Location", "/api/")]) if path == "/api" else not_found_page()
        if self.faults.active("hostapp.http_500"):
            return json_err(ctx, 500, "internal_error", "internal server error")
        with self._lock:
            transient = self._transient.pop(0) if self._transient else None
        if transient is not None:
            said = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable"}
            resp = text(transient, said.get(transient, "Gateway Timeout"))
            if self._retry_after is not None and transient in (429, 503):
                resp.headers.append(("Retry-After", self._retry_after))
            return resp
        if path == "/api/cluster":
            return Response(301, b"", None, [("Location", "/api/cluster/")])
        if path.startswith("/api/cluster/"):
            return handle_cluster(self, ctx, path.removeprefix("/api/cluster/"))
        if path == "/api/bootstrap":
            return bootstrap(self, ctx) if req.method == "POST" else empty(405)
        if path == "/api/health":
            return self._health() if req.method == "GET" else empty(405)
        if path == "/api/deploy/clusters" or path.startswith("/api/deploy/clusters/"):
            return clusters_api(self, ctx, path.removeprefix("/api/deploy/clusters").strip("/"))
        if path == "/api/deploy/headscale":
            return js(200, [], sniffed=True) if req.method == "GET" else self._job(ctx, "headscale.create")
        if path == "/api/jobs":
            return self._jobs_api(ctx)
        if path in ("/api/settings/tailscale", "/api/settings/database", "/api/settings/global"):
            return self._settings(ctx, path.rsplit("/", 1)[1])
        if path == "/api/ui-config":
            return js(200, {"name": ""}, sniffed=True)
        # Everything else, including the routes the double mount hides (/api/settings/cluster/*,
        # /api/audit, /api/db), is Go's 404 page (§2.1).
        return not_found_page()

    def _settings(self, ctx: Ctx, which: str) -> Response:
        if ctx.req.method != "GET":
            # A PUT restarts the real app (§0.1 fact 8); the simulator refuses to pretend.
            return empty(405)
        if which == "tailscale":
            return js(200, dict(self._tailscale), sniffed=True)
        if which == "database":
            return js(200, {"addr": "", "user": "", "pass": ""}, sniffed=True)
        return js(
            200,
            {
                "org_id": "",
                "frontend_origin": _CORS_ORIGIN,
                "default_namespace": "default",
                "listen_local": f"127.0.0.1:{self.port}",
            },
            sniffed=True,
        )

    def _job(self, ctx: Ctx, kind: str) -> Response:
        if not ctx.loopback:
            return text(401, "unauthorized")
        job_id = str(uuid.uuid4())
        now = rfc3339()
        with self._lock:
            self._jobs[job_id] = {
                "id": job_id,
                "kind": kind,
                "specJSON": "{}",
                "status": "succeeded",
                "progress": 1,
                "created": now,
                "updated": now,
            }
        return js(202, {"jobId": job_id}, sniffed=True)

    def _jobs_api(self, ctx: Ctx) -> Response:
        if ctx.req.method == "GET":
            with self._lock:
                return js(200, list(self._jobs.values()), sniffed=True)
        if ctx.req.method != "POST":
            return empty(405)
        if not ctx.loopback:
            return text(401, "unauthorized")
        kind = ctx.body_object().get("kind")
        if not isinstance(kind, str) or not kind:
            return text(400, "missing kind")
        return self._job(ctx, kind)

    # -- /api/health (§2.5) and /api/deploy/clusters (§2.6) ------------------------------------------

    def _health(self) -> Response:
        clusters = []
        for record in self._records():
            entry: dict[str, Any] = {"id": record["id"], "name": go_string(record.get("name"))}
            clients = self.clients(record["id"])
            error = None if clients is None else self.reachability_error(clients)
            if clients is None:
                entry.update(status="unknown", code="no_kubeconfig")
            elif error is None:
                entry["status"] = "ok"
            else:
                entry.update(status="error", code="cluster_unreachable", error=error)
            clusters.append(entry)
        return js(200, {"headscale": [], "clusters": clusters}, sniffed=True)

    def _records(self) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            for cid, due in list(self._pending_ready.items()):
                if now >= due and cid in self._clusters:  # the cluster.create job has run
                    self._clusters[cid].update(state="ready", updatedAt=rfc3339())
                    del self._pending_ready[cid]
            return [dict(r) for r in self._clusters.values()]

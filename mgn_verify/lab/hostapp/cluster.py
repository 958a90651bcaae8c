"""The per-cluster Host App API ``/api/cluster/{id}/...`` (guildnet-host-app.md §2.9, §2.10).

Dispatch order matters and is the real one (§2.9.1): ``published-services`` and ``status``
need no kube client; without clients every other GET is ``200 []`` and every other method
``503 no_k8s_clients``; the namespace is always ``default``; anything unmatched is a bare 404
(which is why ``/api/cluster/{id}/health`` is a 404 with clients and ``200 []`` without).
"""

from __future__ import annotations

import secrets
import time
import uuid
from contextlib import AbstractContextManager
from typing import Any, Protocol

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._httpserver import Response
from mgn_verify.lab.hostapp.model import (
    Clients,
    Ctx,
    empty,
    go_string,
    js,
    json_err,
    parse_kubeconfig,
    rfc3339,
    rfc3339nano,
    text,
)
from mgn_verify.lab.hostapp.proxy import proxy_server
from mgn_verify.lab.kube.errors import KubeApiError, KubeConnectionError
from mgn_verify.lab.kube.simulator import KubeSimulator
from mgn_verify.lab.kube.store import WORKSPACE_LABEL

__all__ = ["ClusterHost", "bootstrap", "cluster_action", "clusters_api", "handle_cluster"]


class ClusterHost(Protocol):
    """What the cluster API uses of the Host App simulator (``HostAppSimulator`` is one): typed
    here so this module does not import the simulator that dispatches to it."""

    faults: FaultSet
    job_delay: float
    _tailscale: dict[str, str]  # replaced by a bootstrap

    @property
    def port(self) -> int: ...
    @property
    def _lock(self) -> AbstractContextManager[Any]: ...
    @property
    def _clusters(self) -> dict[str, dict[str, Any]]: ...
    @property
    def _kubeconfigs(self) -> dict[str, str]: ...
    @property
    def _pending_ready(self) -> dict[str, float]: ...

    def clients(self, cid: str) -> Clients | None: ...
    def kubeconfig_withheld(self, cid: str) -> bool: ...
    def reachability_error(self, clients: Clients) -> str | None: ...
    def kube_for(self, clients: Clients) -> KubeSimulator: ...
    def kube_list(
        self, clients: Clients, group: str, plural: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]: ...
    def kube_get(self, clients: Clients, group: str, plural: str, namespace: str, name: str) -> dict[str, Any]: ...
    def kube_create(
        self, clients: Clients, group: str, plural: str, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...
    def kube_delete(self, clients: Clients, group: str, plural: str, namespace: str, name: str) -> None: ...
    def db_health(self, clients: Clients) -> dict[str, Any]: ...
    def _check(
        self, clients: Clients, verb: str = "get", resource: str = "", group: str = "", namespace: str = ""
    ) -> KubeSimulator: ...
    def _rdb_error(self, clients: Clients) -> tuple[str, str | None]: ...
    def _job(self, ctx: Ctx, kind: str) -> Response: ...
    def _records(self) -> list[dict[str, Any]]: ...

NAMESPACE = "default"  # §2.9.2: the bootstrap namespace is never consulted
_NO_CLIENTS = (
    "kubernetes clients not available for cluster; attach kubeconfig or wait for cluster initialization"
)


def handle_cluster(sim: ClusterHost, ctx: Ctx, rest: str) -> Response:
    parts = [p for p in rest.strip("/").split("/") if p]
    method = ctx.req.method
    if not parts:
        return empty(404)
    cid = parts[0]
    if len(parts) > 1 and parts[1] == "published-services":
        if method == "GET" and len(parts) == 2:
            return js(200, [], sniffed=True)
        if method == "DELETE" and len(parts) == 3:
            return empty(200)
        return empty(405)
    if len(parts) == 2 and parts[1] == "status" and method == "GET":
        return js(200, cluster_status(sim, cid))
    clients = sim.clients(cid)
    if clients is None:
        if method == "GET":
            return js(200, [])
        return json_err(ctx, 503, "no_k8s_clients", _NO_CLIENTS, "kube clients not available for cluster id")
    section = parts[1] if len(parts) > 1 else ""
    if section == "proxy" and len(parts) >= 3 and parts[2] == "server":
        if len(parts) < 4:
            return empty(400)
        port = _service_port(sim, clients, parts[3])
        return proxy_server(ctx, clients, cid, parts[3], "/" + "/".join(parts[4:]), port)
    if section == "servers" and len(parts) == 2:
        return _servers(sim, ctx, clients) if method == "GET" else empty(405)
    if section == "workspaces":
        return _workspaces(sim, ctx, clients, parts)
    if section == "db":
        return _db(sim, ctx, clients, parts)
    return empty(404)


def _service_port(sim: ClusterHost, clients: Clients, name: str) -> int:
    """The Service's first port, else 80 (a lookup error counts as no Service, as in the app)."""
    try:
        ports = (sim.kube_get(clients, "", "services", NAMESPACE, name).get("spec") or {}).get("ports") or []
    except (KubeApiError, KubeConnectionError):
        return 80
    return int(ports[0].get("port") or 80) if ports else 80


def cluster_status(sim: ClusterHost, cid: str) -> dict[str, Any]:
    clients = sim.clients(cid)
    status: dict[str, Any] = {
        "clusterId": cid,
        "kubeconfigPresent": clients is not None,
        "kubeconfigValid": clients is not None,
        "k8sReachable": False,
        "pfAvailable": clients is not None,
        "tsnetAvailable": False,
    }
    if clients is None:
        status["recommendedAction"] = "attach_kubeconfig"
    else:
        error = sim.reachability_error(clients)
        if error is None:
            status["k8sReachable"] = True
        else:
            status["k8sError"] = error
            status["recommendedAction"] = "check_cluster_network"
    status["lastChecked"] = rfc3339nano()
    return status


def _servers(sim: ClusterHost, ctx: Ctx, clients: Any) -> Response:
    try:
        items = sim.kube_list(clients, "guildnet.io", "workspaces", NAMESPACE)
    except (KubeApiError, KubeConnectionError):
        return js(200, [])  # §2.9.5: any list error is an empty list
    out = []
    for ws in items:
        status = ws.get("status") or {}
        state = "pending"
        if status.get("phase") == "Running" and int(status.get("readyReplicas") or 0) > 0:
            state = "running"
        elif status.get("phase") == "Failed":
            state = "failed"
        ports = [
            {"name": go_string(p.get("name")), "port": int(p.get("containerPort") or 0)}
            for p in (ws.get("spec") or {}).get("ports") or []
        ]
        name = ws["metadata"]["name"]
        out.append(
            {
                "id": name,
                "name": name,
                "image": (ws.get("spec") or {}).get("image", ""),
                "status": state,
                "ports": ports,
            }
        )
    return js(200, out)


def _workspaces(sim: ClusterHost, ctx: Ctx, clients: Any, parts: list[str]) -> Response:
    method = ctx.req.method
    if len(parts) == 2 and method == "POST":
        if not ctx.loopback:
            return text(401, "unauthorized")
        return _create(sim, ctx, clients)
    if len(parts) == 3 and method == "GET":
        try:
            return js(200, sim.kube_get(clients, "guildnet.io", "workspaces", NAMESPACE, parts[2]))
        except (KubeApiError, KubeConnectionError):
            return json_err(ctx, 404, "not_found", "workspace not found")
    if len(parts) == 3 and method == "DELETE":
        if not ctx.loopback:
            return text(401, "unauthorized")
        try:
            sim.kube_delete(clients, "guildnet.io", "workspaces", NAMESPACE, parts[2])
        except (KubeApiError, KubeConnectionError):
            return json_err(ctx, 404, "not_found", "workspace not found")
        return js(200, {"deleted": parts[2]})
    if len(parts) == 4 and parts[3] == "logs" and method == "GET":
        return _logs(sim, ctx, clients, parts[2])
    return empty(404)


def _create(sim: ClusterHost, ctx: Ctx, clients: Any) -> Response:
    body = ctx.body_object()
    name = "" if body.get("name") is None else go_string(body.get("name"))
    if not name.strip():
        name = f"ws-{secrets.token_hex(4)}"
    spec = {key: body.get(key) for key in ("image", "env", "ports", "args", "resources", "labels")}
    cr = {"apiVersion": "guildnet.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name}, "spec": spec}
    try:
        sim.kube_create(clients, "guildnet.io", "workspaces", NAMESPACE, cr)
    except KubeApiError as err:
        details: Any = {"message": err.message, "reason": err.reason}
        if err.details is not None:
            details["details"] = err.details
        return json_err(ctx, 500, "create_failed", "workspace create failed", details)
    except KubeConnectionError as err:
        return json_err(ctx, 500, "create_failed", "workspace create failed", str(err))
    return js(202, {"id": name, "status": "pending"})


def _logs(sim: ClusterHost, ctx: Ctx, clients: Any, name: str) -> Response:
    try:
        pods = sim.kube_list(clients, "", "pods", NAMESPACE, f"{WORKSPACE_LABEL}={name}")
    except (KubeApiError, KubeConnectionError):
        pods = []
    if not pods:
        return json_err(ctx, 404, "no_pods", "no pods for workspace")
    try:
        limit = int(ctx.req.query_value("limit", "200"))
    except ValueError:
        limit = 200
    limit = limit if limit > 0 else 200
    now = rfc3339()
    lines: list[dict[str, str]] = []
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        try:
            log = sim.kube_for(clients).state.pod_log(NAMESPACE, pod_name)
        except KubeApiError:
            continue  # pods whose logs fail are skipped
        lines.extend({"t": now, "msg": f"[{pod_name}] {line}"} for line in log)
    return js(200, lines[-limit:])


def _db(sim: ClusterHost, ctx: Ctx, clients: Any, parts: list[str]) -> Response:
    method = ctx.req.method
    if len(parts) == 3 and parts[2] == "health" and method == "GET":
        return js(200, sim.db_health(clients))
    if len(parts) == 2 and method == "GET":
        return js(200, [])  # no RethinkDB manager in the simulator: the real list is [] then
    return empty(404)


# -- /api/deploy/clusters/{id}?action= (§2.6) -------------------------------------------------------


def cluster_action(sim: ClusterHost, ctx: Ctx, cid: str, action: str) -> Response:
    """``POST /api/deploy/clusters/{id}?action=...`` (§2.6)."""
    with sim._lock:
        raw = sim._kubeconfigs.get(cid)
    if action == "attach-kubeconfig":
        value = ctx.body_object().get("kubeconfig")
        if not isinstance(value, str) or not value:
            return json_err(ctx, 400, "missing_kubeconfig", "missing kubeconfig")
        try:
            clients = parse_kubeconfig(value)
        except ValueError as err:
            return json_err(ctx, 400, "bad_kubeconfig", "invalid kubeconfig", str(err))
        with sim._lock:
            sim._kubeconfigs[cid] = value
            if cid in sim._clusters and sim.reachability_error(clients) is None:
                sim._clusters[cid].update(state="ready", updatedAt=rfc3339())
        return js(200, {"ok": True}, sniffed=True)
    if action == "health":
        return js(200, _action_health(sim, cid, raw), sniffed=True)
    if action == "kubeconfig":
        if raw is None:
            return empty(404)
        return Response(200, raw.encode(), "application/x-yaml")
    if action == "join-config":
        return _join_config(sim, ctx, cid, raw)
    job = sim._job(ctx, f"cluster.{action}")
    if action == "destroy":
        with sim._lock:
            sim._clusters.pop(cid, None)
    return job


def _action_health(sim: ClusterHost, cid: str, raw: str | None) -> dict[str, Any]:
    if raw is None or sim.kubeconfig_withheld(cid):
        return {"status": "unknown", "code": "no_kubeconfig"}
    try:
        clients = parse_kubeconfig(raw)
    except ValueError as err:
        return {"status": "unknown", "code": "bad_kubeconfig", "error": str(err)}
    if sim.reachability_error(clients) is None:
        return {"status": "ok"}
    return {"status": "error", "code": "cluster_unreachable"}


def _join_config(sim: ClusterHost, ctx: Ctx, cid: str, raw: str | None) -> Response:
    host = ctx.req.header("host") or f"127.0.0.1:{sim.port}"
    base = f"https://{host}"
    with sim._lock:
        record = dict(sim._clusters.get(cid, {}))
        tailscale = dict(sim._tailscale)
    return js(
        200,
        {
            "version": 2,
            "created_at": rfc3339(),
            "creator": {"host": host, "user": ""},
            "ui": {"vite_api_base": base},
            "hostapp": {"url": base},
            "cluster": {"name": record.get("name", ""), "kubeconfig": raw or "", "notes": ""},
            "tailscale": tailscale,
        },
    )


# -- /api/bootstrap (§2.3) -----------------------------------------------------------------------


def bootstrap(sim: ClusterHost, ctx: Ctx) -> Response:
    """``POST /api/bootstrap`` (§2.3)."""
    body = ctx.body_object()
    if isinstance(body.get("tailscale"), dict):
        with sim._lock:
            sim._tailscale = {k: str(body["tailscale"].get(k) or "") for k in sim._tailscale}
    cluster = body.get("cluster") if isinstance(body.get("cluster"), dict) else {}
    assert isinstance(cluster, dict)
    raw = cluster.get("kubeconfig")
    if not isinstance(raw, str) or not raw:
        return js(200, {"ok": True})
    cid = str(uuid.uuid4())
    name = str(cluster.get("name") or cid)
    with sim._lock:
        sim._clusters[cid] = {"id": cid, "name": name, "state": "imported"}
        sim._kubeconfigs[cid] = raw
    failure = _prewarm(sim, ctx, raw)
    if failure is not None:
        with sim._lock:  # rollback deletes both records
            sim._clusters.pop(cid, None)
            sim._kubeconfigs.pop(cid, None)
        return failure
    return js(200, {"clusterId": cid}, sniffed=True)


def _prewarm(sim: ClusterHost, ctx: Ctx, raw: str) -> Response | None:
    try:
        clients = parse_kubeconfig(raw)
    except ValueError as err:
        return json_err(ctx, 422, "cluster_connect", "cluster connect failed", str(err))
    if sim.faults.active("hostapp.no_kubeconfig"):
        return json_err(
            ctx, 422, "cluster_client", "cluster client initialization failed", "client not initialized"
        )
    try:
        sim._check(clients, "list", "namespaces")
    except (KubeApiError, KubeConnectionError) as err:
        return json_err(ctx, 422, "cluster_connect", "cluster connect failed", str(err))
    _, rdb_error = sim._rdb_error(clients)
    if rdb_error is not None:
        return json_err(
            ctx,
            422,
            "cluster_rdb",
            "cluster rdb connect failed",
            f"connect rethinkdb failed after retries: {rdb_error}",
        )
    return None


def clusters_api(sim: ClusterHost, ctx: Ctx, cid: str) -> Response:
    """``/api/deploy/clusters[/{id}]`` (§2.6)."""
    method = ctx.req.method
    if method in ("POST", "DELETE") and not ctx.loopback:
        return text(401, "unauthorized")
    if not cid:
        if method == "GET":
            return js(200, sim._records(), sniffed=True)
        if method != "POST":
            return empty(404 if method == "DELETE" else 405)
        raw_name = ctx.body_object().get("name")
        name = go_string(raw_name)  # a missing name becomes "<nil>" (§2.6)
        if not name.strip():
            name = f"cluster-{uuid.uuid4().hex[:8]}"
        new_id, job = str(uuid.uuid4()), str(uuid.uuid4())
        with sim._lock:
            sim._clusters[new_id] = {
                "id": new_id,
                "name": name,
                "state": "creating",
                "createdAt": rfc3339(),
            }
            sim._pending_ready[new_id] = time.monotonic() + sim.job_delay
        return js(202, {"id": new_id, "jobId": job}, sniffed=True)
    if method == "GET":
        record = next((r for r in sim._records() if r["id"] == cid), None)
        return js(200, record, sniffed=True) if record is not None else empty(404)
    if method == "DELETE":
        with sim._lock:  # only the record: kubeconfig and cached clients stay
            sim._clusters.pop(cid, None)
        return js(200, {"deleted": cid}, sniffed=True)
    if method != "POST":
        return empty(405)
    return cluster_action(sim, ctx, cid, ctx.req.query_value("action"))

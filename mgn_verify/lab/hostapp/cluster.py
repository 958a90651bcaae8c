"""The per-cluster Host App API ``/api/cluster/{id}/...`` (guildnet-host-app.md §2.9, §2.10).

Dispatch order matters and is the real one (§2.9.1): ``published-services`` and ``status``
need no kube client; without clients every other GET is ``200 []`` and every other method
``503 no_k8s_clients``; the namespace is always ``default``; anything unmatched is a bare 404
(which is why ``/api/cluster/{id}/health`` is a 404 with clients and ``200 []`` without).
"""

from __future__ import annotations

import secrets
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
    rfc3339,
    rfc3339nano,
    text,
)
from mgn_verify.lab.hostapp.proxy import proxy_server
from mgn_verify.lab.kube.errors import KubeApiError, KubeConnectionError
from mgn_verify.lab.kube.simulator import KubeSimulator
from mgn_verify.lab.kube.store import WORKSPACE_LABEL

__all__ = ["ClusterHost", "cluster_status", "handle_cluster"]


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

"""The Host App's cluster records: ``/api/deploy/clusters[/{id}]`` with its ``?action=`` verbs
(§2.6) and ``POST /api/bootstrap`` (§2.3), which registers a cluster from a kubeconfig after
checking that its API and its RethinkDB answer (rolled back otherwise)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from mgn_verify.lab._httpserver import Response
from mgn_verify.lab.hostapp.cluster import ClusterHost
from mgn_verify.lab.hostapp.model import Ctx, empty, go_string, js, json_err, parse_kubeconfig, rfc3339, text
from mgn_verify.lab.kube.errors import KubeApiError, KubeConnectionError

__all__ = ["bootstrap", "cluster_action", "clusters_api"]


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

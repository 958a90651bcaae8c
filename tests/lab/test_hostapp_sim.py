"""The GuildNet Host App simulator, exercised with httpx (TLS verified against the lab CA).

The quirks checked here are the ones guildnet-host-app.md §0.1 and §9 list for the real app.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading

import httpx
import psutil
import pytest
from kubernetes import client

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._tls import LabCA
from mgn_verify.lab.hostapp import HostAppSimulator, RequestRecord
from mgn_verify.lab.kube import KubeSimulator
from tests.lab.helpers import PENDING_DELAY, RUNNING_DELAY, wait_until

SNIFFED = "text/plain; charset=utf-8"


def ws_create(http: httpx.Client, name: str | None, **extra: object) -> httpx.Response:
    body: dict[str, object] = {"image": "codercom/code-server:4.90.3", **extra}
    if name is not None:
        body["name"] = name
    return http.post("/api/cluster/lab/workspaces", json=body)


def test_healthz_options_request_id(hostapp_http: httpx.Client) -> None:
    for method in ("GET", "POST", "DELETE"):
        resp = hostapp_http.request(method, "/healthz")
        assert (resp.status_code, resp.content) == (200, b"ok")
        assert resp.headers["content-type"] == SNIFFED
        assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"])
    assert hostapp_http.get("/healthz", headers={"X-Request-Id": "abc"}).headers["x-request-id"] == "abc"
    options = hostapp_http.options("/anything/at/all")
    assert (options.status_code, options.content) == (204, b"")
    cors = hostapp_http.get("/api/health", headers={"Origin": "https://127.0.0.1:8090"})
    assert cors.headers["access-control-allow-origin"] == "https://127.0.0.1:8090"


def test_missing_routes_are_404(hostapp_http: httpx.Client) -> None:
    for path in (
        "/bootstrap",
        "/api/settings/cluster/lab",
        "/api/audit",
        "/api/db",
        "/api/v1/ping",
        "/health",
    ):
        resp = hostapp_http.get(path)
        assert (resp.status_code, resp.text) == (404, "404 page not found\n"), path
    assert hostapp_http.post("/bootstrap", json={}).status_code == 404
    dead = hostapp_http.get("/api/cluster/lab/health")  # dead code in the real router
    assert (dead.status_code, dead.content) == (404, b"")
    assert hostapp_http.get("/api/cluster/lab/workspaces").status_code == 404  # no list route
    assert hostapp_http.get("/api/settings/global").json()["default_namespace"] == "default"


def test_api_health(hostapp_http: httpx.Client) -> None:
    resp = hostapp_http.get("/api/health")
    assert resp.status_code == 200 and resp.headers["content-type"] == SNIFFED
    assert resp.json() == {"headscale": [], "clusters": [{"id": "lab", "name": "lab", "status": "ok"}]}


def test_bootstrap(
    hostapp_http: httpx.Client, hostapp_sim: HostAppSimulator, kube_sim: KubeSimulator
) -> None:
    assert hostapp_http.get("/api/bootstrap").status_code == 405
    ok = hostapp_http.post("/api/bootstrap", json={})
    assert ok.json() == {"ok": True} and ok.headers["content-type"] == "application/json"
    assert hostapp_http.post("/api/bootstrap", content=b"not json").json() == {
        "ok": True
    }  # decode errors ignored
    kubeconfig = kube_sim.kubeconfig_text(embed_ca=True)
    resp = hostapp_http.post("/api/bootstrap", json={"cluster": {"kubeconfig": kubeconfig, "name": "second"}})
    assert resp.status_code == 200 and resp.headers["content-type"] == SNIFFED
    cid = resp.json()["clusterId"]
    records = {r["id"]: r for r in hostapp_http.get("/api/deploy/clusters").json()}
    assert records[cid] == {"id": cid, "name": "second", "state": "imported"}
    assert hostapp_http.get(f"/api/cluster/{cid}/status").json()["k8sReachable"] is True
    count = len(records)

    def fails(body: dict[str, object], code: str) -> dict[str, object]:
        bad = hostapp_http.post("/api/bootstrap", json=body)
        assert bad.status_code == 422 and bad.json()["code"] == code, bad.text
        return dict(bad.json())

    fails({"cluster": {"kubeconfig": "clusters: [oops"}}, "cluster_connect")
    wrong = fails({"cluster": {"kubeconfig": kubeconfig.replace(kube_sim.token, "nope")}}, "cluster_connect")
    assert wrong["message"] == "cluster connect failed" and wrong["details"] == "Unauthorized"
    hostapp_sim.rdb_probe = lambda host, port: "dial tcp 127.0.0.1:28015: connect: connection refused"
    rdb = fails({"cluster": {"kubeconfig": kubeconfig}}, "cluster_rdb")
    assert str(rdb["details"]).startswith("connect rethinkdb failed after retries: ")
    hostapp_sim.rdb_probe = None
    assert len(hostapp_http.get("/api/deploy/clusters").json()) == count  # every failure rolled back


def test_cluster_records(hostapp_http: httpx.Client, hostapp_sim: HostAppSimulator) -> None:
    created = hostapp_http.post("/api/deploy/clusters", json={})
    assert created.status_code == 202 and set(created.json()) == {"id", "jobId"}
    cid = created.json()["id"]
    record = hostapp_http.get(f"/api/deploy/clusters/{cid}").json()
    assert record["name"] == "<nil>"  # the stringified missing name
    wait_until(lambda: hostapp_http.get(f"/api/deploy/clusters/{cid}").json()["state"] == "ready")
    blank = hostapp_http.post("/api/deploy/clusters", json={"name": "  "}).json()["id"]
    assert re.fullmatch(
        r"cluster-[0-9a-f]{8}", hostapp_http.get(f"/api/deploy/clusters/{blank}").json()["name"]
    )
    assert hostapp_http.get("/api/deploy/clusters/nope").status_code == 404
    # A created cluster has no kubeconfig: the per-cluster API degrades.
    assert hostapp_http.post(f"/api/deploy/clusters/{cid}?action=health").json() == {
        "status": "unknown",
        "code": "no_kubeconfig",
    }
    assert hostapp_http.get(f"/api/cluster/{cid}/servers").json() == []
    # DELETE only drops the record; the lab cluster's API keeps working.
    assert hostapp_http.delete("/api/deploy/clusters/lab").json() == {"deleted": "lab"}
    assert "lab" not in {r["id"] for r in hostapp_http.get("/api/deploy/clusters").json()}
    assert hostapp_http.get("/api/cluster/lab/status").json()["k8sReachable"] is True
    assert hostapp_http.get("/api/health").json()["clusters"] == [
        {"id": i, "name": n, "status": "unknown", "code": "no_kubeconfig"}
        for i, n in (
            (cid, "<nil>"),
            (blank, hostapp_http.get(f"/api/deploy/clusters/{blank}").json()["name"]),
        )
    ]


def test_cluster_actions(hostapp_http: httpx.Client, kube_sim: KubeSimulator) -> None:
    assert hostapp_http.post("/api/deploy/clusters/lab?action=health").json() == {"status": "ok"}
    kc = hostapp_http.post("/api/deploy/clusters/lab?action=kubeconfig")
    assert kc.headers["content-type"] == "application/x-yaml" and kube_sim.url in kc.text
    assert hostapp_http.post("/api/deploy/clusters/none?action=kubeconfig").status_code == 404
    join = hostapp_http.post("/api/deploy/clusters/lab?action=join-config").json()
    assert join["version"] == 2 and join["cluster"]["kubeconfig"] == kc.text
    assert join["hostapp"]["url"].startswith("https://127.0.0.1:")
    missing = hostapp_http.post("/api/deploy/clusters/x?action=attach-kubeconfig", json={})
    assert (missing.status_code, missing.json()["code"]) == (400, "missing_kubeconfig")
    bad = hostapp_http.post("/api/deploy/clusters/x?action=attach-kubeconfig", json={"kubeconfig": "a: ["})
    assert (bad.status_code, bad.json()["code"]) == (400, "bad_kubeconfig")
    cid = hostapp_http.post("/api/deploy/clusters", json={"name": "att"}).json()["id"]
    attached = hostapp_http.post(
        f"/api/deploy/clusters/{cid}?action=attach-kubeconfig",
        json={"kubeconfig": kube_sim.kubeconfig_text(embed_ca=True)},
    )
    assert attached.json() == {"ok": True}
    assert hostapp_http.get(f"/api/deploy/clusters/{cid}").json()["state"] == "ready"
    assert hostapp_http.get(f"/api/cluster/{cid}/servers").json() == []
    job = hostapp_http.post(f"/api/deploy/clusters/{cid}?action=scale")
    assert job.status_code == 202 and set(job.json()) == {"jobId"}
    hostapp_http.post(f"/api/deploy/clusters/{cid}?action=destroy")
    assert hostapp_http.get(f"/api/deploy/clusters/{cid}").status_code == 404


def test_loopback_guard(hostapp_http: httpx.Client, hostapp_sim: HostAppSimulator) -> None:
    hostapp_sim.simulate_remote_peer = True
    for method, path in (
        ("POST", "/api/deploy/clusters"),
        ("DELETE", "/api/deploy/clusters/lab"),
        ("POST", "/api/deploy/clusters/lab?action=health"),
        ("POST", "/api/cluster/lab/workspaces"),
        ("DELETE", "/api/cluster/lab/workspaces/x"),
    ):
        resp = hostapp_http.request(
            method, path, json={"image": "x"}, headers={"Authorization": "Bearer anything"}
        )
        assert (resp.status_code, resp.text) == (401, "unauthorized\n"), path
        assert resp.headers["content-type"] == SNIFFED
    assert hostapp_http.get("/api/deploy/clusters").status_code == 200  # GET is always open
    assert hostapp_http.post("/api/bootstrap", json={}).status_code == 200  # no guard at all
    hostapp_sim.simulate_remote_peer = False
    assert hostapp_http.post("/api/deploy/clusters/lab?action=health").status_code == 200


def test_cluster_status_shape(hostapp_http: httpx.Client) -> None:
    status = hostapp_http.get("/api/cluster/lab/status")
    assert status.headers["content-type"] == "application/json"
    body = status.json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body.pop("lastChecked"))
    assert body == {
        "clusterId": "lab",
        "kubeconfigPresent": True,
        "kubeconfigValid": True,
        "k8sReachable": True,
        "pfAvailable": True,
        "tsnetAvailable": False,
    }
    unknown = hostapp_http.get("/api/cluster/unknown/status").json()
    assert unknown["kubeconfigPresent"] is False and unknown["recommendedAction"] == "attach_kubeconfig"


def test_workspace_lifecycle(hostapp_http: httpx.Client, kube_api: client.ApiClient) -> None:
    resp = ws_create(
        hostapp_http,
        "web",
        env=[{"name": "A", "value": "1"}],
        args=["--x"],
        labels={"a": "b"},
        resources={"limits": {"cpu": "1"}},
        ports=[{"containerPort": 8080}],
    )
    assert (resp.status_code, resp.json()) == (202, {"id": "web", "status": "pending"})
    no_pods = hostapp_http.get(
        "/api/cluster/lab/workspaces/web/logs"
    )  # before the operator's first reconcile
    assert (no_pods.status_code, no_pods.json()["code"]) == (404, "no_pods")
    raw = hostapp_http.get("/api/cluster/lab/workspaces/web").json()
    assert "status" not in raw and raw["metadata"]["namespace"] == "default"
    # The CR is real in the Kube simulator, pruned like the CRD schema prunes it.
    cr = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "guildnet.io", "v1alpha1", "default", "workspaces", "web"
    )
    assert cr["spec"] == {
        "image": "codercom/code-server:4.90.3",
        "env": [{}],
        "ports": [{"containerPort": 8080}],
    }
    assert hostapp_http.get("/api/cluster/lab/servers").json() == [
        {
            "id": "web",
            "name": "web",
            "image": "codercom/code-server:4.90.3",
            "status": "pending",
            "ports": [{"name": "<nil>", "port": 8080}],
        }
    ]
    wait_until(
        lambda: "status" in hostapp_http.get("/api/cluster/lab/workspaces/web").json(), PENDING_DELAY + 2
    )
    wait_until(
        lambda: hostapp_http.get("/api/cluster/lab/workspaces/web").json()["status"]["phase"] == "Running",
        RUNNING_DELAY + 2,
    )
    status = hostapp_http.get("/api/cluster/lab/workspaces/web").json()["status"]
    assert status["readyReplicas"] == 1 and status["proxyTarget"] == "http://web.default.svc:8080"
    assert status["serviceDNS"] == "web.default.svc" and status["serviceIP"]
    assert hostapp_http.get("/api/cluster/lab/servers").json()[0]["status"] == "running"
    logs = hostapp_http.get("/api/cluster/lab/workspaces/web/logs", params={"limit": 1}).json()
    assert (
        len(logs) == 1 and re.match(r"\[web-[^\]]+\] HTTP server listening", logs[0]["msg"]) and logs[0]["t"]
    )
    assert hostapp_http.delete("/api/cluster/lab/workspaces/web").json() == {"deleted": "web"}
    gone = hostapp_http.get("/api/cluster/lab/workspaces/web")
    assert gone.status_code == 404 and gone.json()["code"] == "not_found" and gone.json()["request_id"]
    assert hostapp_http.delete("/api/cluster/lab/workspaces/web").status_code == 404


def test_workspace_errors_are_500_create_failed(hostapp_http: httpx.Client) -> None:
    generated = ws_create(hostapp_http, None).json()["id"]
    assert re.fullmatch(r"ws-[0-9a-f]{8}", generated)
    ws_create(hostapp_http, "dup")
    dup = ws_create(hostapp_http, "dup")
    assert dup.status_code == 500 and dup.json()["code"] == "create_failed"
    assert dup.json()["details"]["reason"] == "AlreadyExists"
    no_image = hostapp_http.post("/api/cluster/lab/workspaces", json={"name": "noimg"})
    assert (no_image.status_code, no_image.json()["details"]["reason"]) == (500, "Invalid")
    invalid = ws_create(hostapp_http, "Bad_Name")
    assert (invalid.status_code, invalid.json()["details"]["reason"]) == (500, "Invalid")


def test_db_health(
    hostapp_http: httpx.Client, hostapp_sim: HostAppSimulator, kube_sim: KubeSimulator
) -> None:
    assert hostapp_http.get("/api/cluster/lab/db/health").json() == {
        "status": "ok",
        "addr": "127.0.0.1:28015",
    }
    kube_sim.state.set_rethinkdb_endpoint("127.0.0.1", 41000)
    hostapp_sim.rdb_probe = lambda host, port: f"dial tcp {host}:{port}: connect: connection refused"
    assert hostapp_http.get("/api/cluster/lab/db/health").json() == {
        "status": "unavailable",
        "addr": "127.0.0.1:41000",
        "error": "dial tcp 127.0.0.1:41000: connect: connection refused",
    }


def test_request_log(hostapp_http: httpx.Client, hostapp_sim: HostAppSimulator) -> None:
    hostapp_sim.clear_requests()
    hostapp_http.get("/healthz")
    hostapp_http.get("/api/cluster/lab/status")
    hostapp_http.post("/api/deploy/clusters/lab?action=health")
    hostapp_http.get("/api/audit")
    assert hostapp_sim.requests == [
        RequestRecord("GET", "/healthz", 200),
        ("GET", "/api/cluster/lab/status", 200),
        ("POST", "/api/deploy/clusters/lab?action=health", 200),
        ("GET", "/api/audit", 404),
    ]
    assert not any(r.method == "PUT" for r in hostapp_sim.requests)


# -- faults ---------------------------------------------------------------------------------------------


def test_fault_no_kubeconfig(hostapp_http: httpx.Client, lab_faults: FaultSet) -> None:
    lab_faults.inject("hostapp.no_kubeconfig")
    for path in (
        "/api/cluster/lab/servers",
        "/api/cluster/lab/workspaces/x",
        "/api/cluster/lab/health",
        "/api/cluster/lab/db/health",
        "/api/cluster/lab/workspaces/x/logs",
    ):
        resp = hostapp_http.get(path)
        assert (resp.status_code, resp.json()) == (200, []), path
    mutation = ws_create(hostapp_http, "x")
    assert mutation.status_code == 503 and mutation.json()["code"] == "no_k8s_clients"
    assert hostapp_http.delete("/api/cluster/lab/workspaces/x").status_code == 503
    assert hostapp_http.get("/api/health").json()["clusters"] == [
        {"id": "lab", "name": "lab", "status": "unknown", "code": "no_kubeconfig"}
    ]
    status = hostapp_http.get("/api/cluster/lab/status").json()
    assert status["kubeconfigPresent"] is False and status["recommendedAction"] == "attach_kubeconfig"
    lab_faults.clear("hostapp.no_kubeconfig")
    assert hostapp_http.get("/api/cluster/lab/health").status_code == 404
    assert hostapp_http.get("/api/health").json()["clusters"][0]["status"] == "ok"


def test_fault_http_500(hostapp_http: httpx.Client, lab_faults: FaultSet) -> None:
    lab_faults.inject("hostapp.http_500")
    for path in ("/api/health", "/api/cluster/lab/status", "/api/deploy/clusters"):
        assert hostapp_http.get(path).status_code == 500
    assert hostapp_http.get("/healthz").text == "ok"  # not an /api route
    lab_faults.clear("hostapp.http_500")
    assert hostapp_http.get("/api/health").status_code == 200


def test_fault_down(hostapp_http: httpx.Client, hostapp_sim: HostAppSimulator, lab_faults: FaultSet) -> None:
    port = hostapp_sim.port
    lab_faults.inject("hostapp.down")
    hostapp_sim.sync_faults()
    with pytest.raises(httpx.ConnectError):
        hostapp_http.get("/healthz")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    lab_faults.clear("hostapp.down")
    wait_until(lambda: hostapp_sim._server.listening)
    assert hostapp_sim.port == port and hostapp_http.get("/healthz").text == "ok"


def test_fault_tls_expired(hostapp_http: httpx.Client, lab_faults: FaultSet) -> None:
    lab_faults.inject("tls.expired")
    with pytest.raises(httpx.ConnectError, match="certificate has expired"):
        hostapp_http.get("/healthz")
    lab_faults.clear("tls.expired")
    assert hostapp_http.get("/healthz").text == "ok"


def test_kube_faults_seen_through_hostapp(hostapp_http: httpx.Client, lab_faults: FaultSet) -> None:
    lab_faults.inject("kubernetes.down")
    entry = hostapp_http.get("/api/health").json()["clusters"][0]
    assert entry["status"] == "error" and entry["code"] == "cluster_unreachable"
    assert "connection refused" in entry["error"]
    status = hostapp_http.get("/api/cluster/lab/status").json()
    assert status["k8sReachable"] is False and status["recommendedAction"] == "check_cluster_network"
    assert hostapp_http.get("/api/cluster/lab/servers").json() == []  # list errors are []
    assert ws_create(hostapp_http, "x").json()["details"].endswith("connection refused")
    assert hostapp_http.post("/api/deploy/clusters/lab?action=health").json() == {
        "status": "error",
        "code": "cluster_unreachable",
    }
    lab_faults.clear("kubernetes.down")
    lab_faults.inject("kubernetes.forbidden")
    forbidden = ws_create(hostapp_http, "y").json()
    assert forbidden["code"] == "create_failed" and forbidden["details"]["reason"] == "Forbidden"
    lab_faults.clear("kubernetes.forbidden")
    assert hostapp_http.get("/api/health").json()["clusters"][0]["status"] == "ok"
    assert ws_create(hostapp_http, "z").status_code == 202


def test_start_stop_cycles_leak_nothing(
    lab_ca: LabCA, lab_faults: FaultSet, kube_sim: KubeSimulator, ca_context: ssl.SSLContext
) -> None:
    baseline_threads = threading.active_count()
    baseline_fds = psutil.Process().num_fds()
    for i in range(20):
        sim = HostAppSimulator(ca=lab_ca, faults=lab_faults, kube=kube_sim)
        sim.start()
        port = sim.port
        if i % 5 == 0:
            with httpx.Client(base_url=sim.url, verify=ca_context) as http:
                assert http.get("/healthz").text == "ok"
        sim.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert threading.active_count() == baseline_threads
    assert psutil.Process().num_fds() <= baseline_fds + 2


def test_second_cluster_and_transient_statuses(
    hostapp_http: httpx.Client, hostapp_sim: HostAppSimulator, lab_ca: LabCA
) -> None:
    other_faults = FaultSet(KubeSimulator.FAULTS | {"hostapp.no_kubeconfig"})
    with KubeSimulator(ca=lab_ca, faults=other_faults, token="other-token") as other:
        hostapp_sim.add_cluster("second", other, faults=other_faults)
        ids = {c["id"] for c in hostapp_http.get("/api/deploy/clusters").json()}
        assert ids == {"lab", "second"}
        assert hostapp_http.get("/api/cluster/second/status").json()["k8sReachable"] is True
        other_faults.inject("kubernetes.down")
        status = hostapp_http.get("/api/cluster/second/status").json()
        assert status["recommendedAction"] == "check_cluster_network" and str(other.port) in status["k8sError"]
        assert hostapp_http.get("/api/cluster/lab/status").json()["k8sReachable"] is True
        other_faults.clear("kubernetes.down")
        other_faults.inject("hostapp.no_kubeconfig")  # this cluster only
        assert hostapp_http.get("/api/cluster/second/db/health").json() == []
        assert hostapp_http.get("/api/cluster/lab/db/health").json()["status"] == "ok"
    # A proxy's transient errors: plain text, then the app answers again.
    hostapp_sim.inject_transient(503, 2)
    assert [hostapp_http.get("/api/health").status_code for _ in range(3)] == [503, 503, 200]
    assert hostapp_http.get("/healthz").status_code == 200  # /healthz is the app's own: never cut

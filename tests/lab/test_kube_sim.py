"""The Kubernetes API simulator, exercised with the real ``kubernetes`` client and httpx.

TLS is always verified against the lab CA; the client is configured only through the
kubeconfig file the simulator wrote.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import urllib3
from conftest import PENDING_DELAY, RUNNING_DELAY, TOKEN, wait_until
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._tls import LabCA
from mgn_verify.lab.kube import AccessRule, KubeSimulator, KubeState

WS = ("guildnet.io", "v1alpha1")


def ws_body(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "guildnet.io/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": name},
        "spec": {"image": "codercom/code-server:4.90.3", **spec},
    }


def raw_get(api: client.ApiClient, path: str, query: list[tuple[str, str]] | None = None) -> tuple[int, str]:
    resp = api.call_api(
        *api.param_serialize("GET", path, query_params=query or [], auth_settings=["BearerToken"])
    )
    resp.read()
    return resp.status, resp.data.decode()


def status_body(exc: ApiException) -> dict[str, object]:
    body = json.loads(exc.body)
    assert isinstance(body, dict)
    return body


def listening_ports() -> set[int]:
    return {
        c.laddr.port for c in psutil.Process().net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    }


# -- happy path through the real client --------------------------------------------------------------


def test_version_and_discovery(kube_api: client.ApiClient, kube_sim: KubeSimulator) -> None:
    info = client.VersionApi(kube_api).get_code()
    assert info.git_version == "v1.30.2" and info.major == "1"
    assert ("GET", "/version/", 200) in kube_sim.requests  # the client adds the trailing slash
    assert client.CoreApi(kube_api).get_api_versions().versions == ["v1"]
    groups = {g.name for g in client.ApisApi(kube_api).get_api_versions().groups}
    assert {"apps", "storage.k8s.io", "apiextensions.k8s.io", "authorization.k8s.io", "guildnet.io"} <= groups
    resources = {r.name for r in client.CoreV1Api(kube_api).get_api_resources().resources}
    assert {"nodes", "pods", "services", "namespaces"} <= resources


def test_nodes(kube_api: client.ApiClient) -> None:
    nodes = client.CoreV1Api(kube_api).list_node().items
    assert [n.metadata.name for n in nodes] == ["lab-control-plane", "lab-worker"]
    for node in nodes:
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True" and ready.reason == "KubeletReady"
        assert node.status.allocatable["cpu"] == "4" and node.status.capacity["pods"] == "110"
        assert node.status.node_info.kubelet_version == "v1.30.2"
        assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250


def test_core_lists(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    namespaces = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "guildnet-system", "metallb-system"} <= namespaces
    dns = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items
    assert len(dns) == 2
    for pod in dns:
        assert pod.status.phase == "Running"
        (cs,) = pod.status.container_statuses
        assert cs.ready is True and cs.restart_count == 0 and cs.state.running is not None
    services = {
        (s.metadata.namespace, s.metadata.name): s for s in core.list_service_for_all_namespaces().items
    }
    rdb = services[("default", "rethinkdb")]
    assert rdb.spec.type == "LoadBalancer" and rdb.status.load_balancer.ingress[0].ip == "127.0.0.1"
    assert rdb.spec.ports[0].port == 28015
    assert core.list_event_for_all_namespaces().items[0].involved_object.name == "rethinkdb-0"
    assert core.list_namespaced_secret("default").items[0].metadata.name == "rethinkdb-admin"
    cms = core.list_namespaced_config_map("guildnet-system").items
    assert {c.metadata.name for c in cms} == {"kube-root-ca.crt", "guildnet-cluster-settings"}
    assert "Server ready" in core.read_namespaced_pod_log("rethinkdb-0", "default")


def test_apps_storage_crds(kube_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube_api)
    operator = apps.read_namespaced_deployment("workspace-operator", "guildnet-system")
    assert operator.status.available_replicas == 1
    assert {d.metadata.name for d in apps.list_deployment_for_all_namespaces().items} >= {
        "coredns",
        "controller",
    }
    ds = apps.list_namespaced_daemon_set("kube-system").items
    assert {d.metadata.name for d in ds} == {"kube-proxy", "tailscale-subnet-router"}
    assert all(d.status.number_ready == d.status.desired_number_scheduled for d in ds)
    assert apps.list_namespaced_stateful_set("default").items[0].status.ready_replicas == 1
    (sc,) = client.StorageV1Api(kube_api).list_storage_class().items
    assert sc.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    crds = {
        c.metadata.name: c
        for c in client.ApiextensionsV1Api(kube_api).list_custom_resource_definition().items
    }
    for name in ("workspaces.guildnet.io", "capabilities.guildnet.io"):
        established = next(c for c in crds[name].status.conditions if c.type == "Established")
        assert established.status == "True"
    assert crds["workspaces.guildnet.io"].spec.scope == "Namespaced"


def ssar(
    api: client.ApiClient, verb: str, resource: str, namespace: str = ""
) -> client.V1SelfSubjectAccessReview:
    attrs = client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace or None)
    body = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs)
    )
    return client.AuthorizationV1Api(api).create_self_subject_access_review(body)


def test_ssar_rules(kube_api: client.ApiClient, kube_sim: KubeSimulator) -> None:
    assert ssar(kube_api, "list", "nodes").status.allowed is True
    assert kube_sim.requests[-1] == ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", 201)
    kube_sim.state.access_rules = [
        AccessRule(verb="create", resource="namespaces", allowed=False),
        AccessRule(),
    ]
    review = ssar(kube_api, "create", "namespaces")
    assert review.status.allowed is False and review.status.reason is None
    assert ssar(kube_api, "list", "namespaces").status.allowed is True
    # Real requests obey the same rules.
    kube_sim.state.access_rules = [AccessRule(verb="list", resource="nodes", allowed=False), AccessRule()]
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).list_node()
    assert err.value.status == 403


def test_health_endpoints(
    kube_api: client.ApiClient, kube_sim: KubeSimulator, ca_context: ssl.SSLContext
) -> None:
    with httpx.Client(base_url=kube_sim.url, verify=ca_context) as http:
        for path in ("/readyz", "/livez", "/healthz"):
            resp = http.get(path)  # anonymous: system:public-info-viewer
            assert (resp.status_code, resp.content) == (200, b"ok")
            assert resp.headers["content-type"] == "text/plain; charset=utf-8"
            assert resp.headers["x-content-type-options"] == "nosniff"
        assert http.get("/version/").json()["gitVersion"] == "v1.30.2"
        assert http.get("/readyz/etcd").text == "ok"
    status, text = raw_get(kube_api, "/readyz", [("verbose", "true")])
    assert status == 200 and text.startswith("[+]ping ok\n") and text.endswith("readyz check passed\n")
    assert "[+]shutdown ok" in text
    status, text = raw_get(kube_api, "/readyz", [("verbose", ""), ("exclude", "etcd"), ("exclude", "nope")])
    assert "[+]etcd excluded: ok\n" in text
    assert 'warn: some health checks cannot be excluded: no matches for "nope"\n' in text
    status, text = raw_get(kube_api, "/livez", [("verbose", "1")])
    assert "shutdown" not in text and text.endswith("livez check passed\n")


def test_auth_errors(
    kube_api: client.ApiClient, kube_sim: KubeSimulator, tmp_path: Path, ca_context: ssl.SSLContext
) -> None:
    from kubernetes import config

    bad = tmp_path / "bad.yaml"
    bad.write_text(kube_sim.kubeconfig_text().replace(TOKEN, "wrong-token"))
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(bad), client_configuration=cfg)
    with client.ApiClient(cfg) as api, pytest.raises(ApiException) as err:
        client.CoreV1Api(api).list_node()
    assert err.value.status == 401
    assert status_body(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    with httpx.Client(base_url=kube_sim.url, verify=ca_context) as http:
        assert http.get("/healthz", headers={"Authorization": "Bearer nope"}).status_code == 401
        anon = http.get("/api/v1/nodes")
        assert anon.status_code == 403 and "system:anonymous" in anon.json()["message"]
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).read_node("missing")
    assert err.value.status == 404
    assert status_body(err.value)["details"] == {"name": "missing", "kind": "nodes"}
    status, text = raw_get(kube_api, "/apis/nope.example.com/v1/things")
    assert status == 404 and json.loads(text)["message"] == "the server could not find the requested resource"


def test_workspace_lifecycle(kube_api: client.ApiClient, kube_sim: KubeSimulator) -> None:
    co = client.CustomObjectsApi(kube_api)
    created = co.create_namespaced_custom_object(
        *WS,
        "default",
        "workspaces",
        ws_body(
            "ws1",
            env=[{"name": "A", "value": "b"}],
            args=["--x"],
            resources={"limits": {}},
            labels={"a": "b"},
            ports=[{"containerPort": 8080, "name": "http", "extra": 1}],
            notes="n",
        ),
    )
    assert "status" not in created
    assert created["spec"] == {
        "image": "codercom/code-server:4.90.3",
        "notes": "n",
        "env": [{}],
        "ports": [{"containerPort": 8080, "name": "http"}],
    }
    assert "status" not in co.get_namespaced_custom_object(*WS, "default", "workspaces", "ws1")
    time.sleep(PENDING_DELAY)
    pending = co.get_namespaced_custom_object(*WS, "default", "workspaces", "ws1")["status"]
    assert pending["phase"] == "Pending" and "readyReplicas" not in pending
    time.sleep(RUNNING_DELAY - PENDING_DELAY)
    running = co.get_namespaced_custom_object(*WS, "default", "workspaces", "ws1")["status"]
    assert running["phase"] == "Running" and running["readyReplicas"] == 1
    assert (
        running["serviceDNS"] == "ws1.default.svc" and running["proxyTarget"] == "http://ws1.default.svc:8080"
    )
    assert running["serviceIP"].startswith("10.96.")
    listed = co.list_namespaced_custom_object(*WS, "default", "workspaces")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["ws1"] and listed["kind"] == "WorkspaceList"
    core = client.CoreV1Api(kube_api)
    (pod,) = core.list_namespaced_pod("default", label_selector="guildnet.io/workspace=ws1").items
    assert pod.status.phase == "Running" and pod.status.container_statuses[0].name == "workspace"
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(*WS, "default", "workspaces", ws_body("ws1"))
    assert err.value.status == 409 and status_body(err.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(
            *WS, "default", "workspaces", {"metadata": {"name": "noimg"}, "spec": {}}
        )
    assert err.value.status == 422
    deleted = co.delete_namespaced_custom_object(*WS, "default", "workspaces", "ws1")
    assert deleted["status"] == "Success"
    with pytest.raises(ApiException) as err:
        co.get_namespaced_custom_object(*WS, "default", "workspaces", "ws1")
    assert err.value.status == 404
    assert core.list_namespaced_pod("default", label_selector="guildnet.io/workspace=ws1").items == []


# -- faults ---------------------------------------------------------------------------------------------


def test_fault_down_is_connection_refused_and_reversible(
    kube_api: client.ApiClient, kube_sim: KubeSimulator, lab_faults: FaultSet
) -> None:
    port = kube_sim.port
    lab_faults.inject("kubernetes.down")
    kube_sim.sync_faults()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        client.VersionApi(kube_api).get_code()
    assert "NewConnectionError" in repr(err.value.reason) or "refused" in str(err.value).lower()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    lab_faults.clear("kubernetes.down")
    wait_until(lambda: kube_sim._server.listening)  # the watcher reopens without sync_faults too
    assert kube_sim.port == port
    assert client.VersionApi(kube_api).get_code().git_version == "v1.30.2"


def test_fault_slow(kube_api: client.ApiClient, kube_sim: KubeSimulator, lab_faults: FaultSet) -> None:
    lab_faults.inject("kubernetes.slow")
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        client.CoreV1Api(kube_api).list_node(_request_timeout=0.3)
    assert "timed out" in str(err.value).lower() or "ReadTimeout" in repr(err.value.reason)
    assert time.monotonic() - started < 1.0
    lab_faults.clear("kubernetes.slow")
    time.sleep(1.3)  # let the delayed handler finish before the next request
    assert len(client.CoreV1Api(kube_api).list_node(_request_timeout=2).items) == 2


def test_stop_is_not_blocked_by_slow_request(
    kube_api: client.ApiClient, kube_sim: KubeSimulator, lab_faults: FaultSet
) -> None:
    lab_faults.inject("kubernetes.slow")
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.VersionApi(kube_api).get_code()
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    wait_until(lambda: any(t.name == "kube-sim-conn" for t in threading.enumerate()))
    started = time.monotonic()
    kube_sim.stop()
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert outcome and isinstance(outcome[0], urllib3.exceptions.HTTPError)  # closed, never answered


def test_fault_node_not_ready(kube_api: client.ApiClient, lab_faults: FaultSet) -> None:
    def ready() -> dict[str, str]:
        return {
            n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready")
            for n in client.CoreV1Api(kube_api).list_node().items
        }

    lab_faults.inject("kubernetes.node_not_ready")
    assert ready() == {"lab-control-plane": "True", "lab-worker": "False"}
    node = client.CoreV1Api(kube_api).read_node("lab-worker")
    assert next(c for c in node.status.conditions if c.type == "Ready").reason == "KubeletNotReady"
    lab_faults.clear("kubernetes.node_not_ready")
    assert ready() == {"lab-control-plane": "True", "lab-worker": "True"}


def test_fault_readyz_failing(
    kube_api: client.ApiClient, kube_sim: KubeSimulator, lab_faults: FaultSet, ca_context: ssl.SSLContext
) -> None:
    lab_faults.inject("kubernetes.readyz_failing")
    status, text = raw_get(kube_api, "/readyz")  # call_api returns non-2xx instead of raising
    assert status == 500
    assert "[-]etcd failed: reason withheld\n" in text and text.endswith("readyz check failed\n")
    with httpx.Client(base_url=kube_sim.url, verify=ca_context) as http:
        verbose = http.get("/readyz?verbose")
        assert verbose.status_code == 500 and "[+]ping ok" in verbose.text
        assert http.get("/readyz?exclude=etcd").text == "ok"  # excluding the failing check passes
        assert http.get("/livez").text == "ok"
        assert http.get("/readyz/etcd").status_code == 500
    lab_faults.clear("kubernetes.readyz_failing")
    assert raw_get(kube_api, "/readyz") == (200, "ok")


def test_fault_forbidden(kube_api: client.ApiClient, lab_faults: FaultSet) -> None:
    lab_faults.inject("kubernetes.forbidden")
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).list_node()
    body = status_body(err.value)
    assert err.value.status == 403 and body["reason"] == "Forbidden" and body["details"] == {"kind": "nodes"}
    assert body["message"] == (
        'nodes is forbidden: User "lab-admin" cannot list resource "nodes" in API group "" '
        "at the cluster scope"
    )
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(kube_api).list_namespaced_custom_object(*WS, "default", "workspaces")
    assert err.value.status == 403 and 'in the namespace "default"' in status_body(err.value)["message"]
    assert ssar(kube_api, "list", "nodes").status.allowed is False
    assert client.VersionApi(kube_api).get_code().major == "1"  # public info stays readable
    lab_faults.clear("kubernetes.forbidden")
    assert len(client.CoreV1Api(kube_api).list_node().items) == 2
    assert ssar(kube_api, "list", "nodes").status.allowed is True


def test_fault_tls_expired(kube_api: client.ApiClient, lab_faults: FaultSet) -> None:
    lab_faults.inject("tls.expired")
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        client.VersionApi(kube_api).get_code()
    assert "certificate has expired" in str(err.value)
    lab_faults.clear("tls.expired")
    assert client.VersionApi(kube_api).get_code().major == "1"


# -- lifecycle and building blocks ----------------------------------------------------------------------


def test_start_stop_cycles_leak_nothing(
    lab_ca: LabCA, lab_faults: FaultSet, ca_context: ssl.SSLContext
) -> None:
    baseline_threads = threading.active_count()
    baseline_listen = listening_ports()
    baseline_fds = psutil.Process().num_fds()
    state = KubeState()
    sim = KubeSimulator(ca=lab_ca, faults=lab_faults, token=TOKEN, state=state)
    for i in range(20):
        sim.start()
        if i % 5 == 0:  # an idle keep-alive connection must not keep a thread alive after stop()
            http = httpx.Client(base_url=sim.url, verify=ca_context)
            assert http.get("/livez").text == "ok"
        sim.stop()
        if i % 5 == 0:
            http.close()
    assert threading.active_count() == baseline_threads
    assert listening_ports() == baseline_listen
    assert psutil.Process().num_fds() <= baseline_fds + 2


def test_kubeconfig_embedded_ca(kube_sim: KubeSimulator, tmp_path: Path) -> None:
    from kubernetes import config

    path = kube_sim.write_kubeconfig(
        tmp_path / "embedded.yaml", embed_ca=True, context="other", namespace="apps"
    )
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == kube_sim.url and cfg.verify_ssl is True
    with client.ApiClient(cfg) as api:
        assert client.VersionApi(api).get_code().minor == "30"

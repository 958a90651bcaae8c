"""The Kubernetes API simulator, exercised with the real ``kubernetes`` client and httpx.

TLS is always verified against the lab CA; the client is configured only through the
kubeconfig file the simulator wrote.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._tls import LabCA
from mgn_verify.lab.kube import AccessRule, KubeSimulator, KubeState
from tests.lab.helpers import PENDING_DELAY, RUNNING_DELAY, SLOW_DELAY, TOKEN, wait_until

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

    def status() -> dict[str, Any]:
        return dict(co.get_namespaced_custom_object(*WS, "default", "workspaces", "ws1").get("status") or {})

    # The operator sets Pending after PENDING_DELAY, Running after RUNNING_DELAY: poll for each.
    wait_until(lambda: "phase" in status(), timeout=PENDING_DELAY + 5, what="a workspace status")
    pending = status()
    assert pending["phase"] == "Pending" and "readyReplicas" not in pending
    wait_until(lambda: status()["phase"] == "Running", timeout=RUNNING_DELAY + 5, what="phase Running")
    running = status()
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
    # The delayed handler answers (and logs) the timed-out list once its delay is over.
    wait_until(lambda: any(target.startswith("/api/v1/nodes") for _, target, _ in kube_sim.requests),
               timeout=SLOW_DELAY + 5, what="the delayed request to finish")
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
    """etcd unreachable: its check fails in /livez and /readyz alike (one set of checks, shared),
    etcd-readiness only in /readyz, and reads that need etcd fail."""
    lab_faults.inject("kubernetes.readyz_failing")
    status, text = raw_get(kube_api, "/readyz")  # call_api returns non-2xx instead of raising
    assert status == 500
    assert "[-]etcd failed: reason withheld\n" in text and "[-]etcd-readiness failed: reason withheld\n" in text
    assert text.endswith("readyz check failed\n")
    status, text = raw_get(kube_api, "/livez")
    assert status == 500 and "[-]etcd failed: reason withheld\n" in text and "etcd-readiness" not in text
    with httpx.Client(base_url=kube_sim.url, verify=ca_context) as http:
        verbose = http.get("/readyz?verbose")
        assert verbose.status_code == 500 and "[+]ping ok" in verbose.text
        assert http.get("/readyz?exclude=etcd&exclude=etcd-readiness").text == "ok"
        assert http.get("/livez?exclude=etcd").text == "ok"
        assert http.get("/readyz/etcd").text == "internal server error: etcd client connection failed\n"
        assert http.get("/livez/etcd").status_code == 500
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).list_node()
    assert err.value.status == 500 and status_body(err.value)["message"] == "etcdserver: request timed out"
    assert client.VersionApi(kube_api).get_code().major == "1"  # /version needs no etcd
    lab_faults.clear("kubernetes.readyz_failing")
    assert raw_get(kube_api, "/readyz") == (200, "ok")


def test_fault_shutting_down_fails_readiness_only(kube_api: client.ApiClient, lab_faults: FaultSet) -> None:
    lab_faults.inject("kubernetes.shutting_down")
    status, text = raw_get(kube_api, "/readyz", [("verbose", "true")])
    assert status == 500 and "[-]shutdown failed: reason withheld\n" in text and "[+]etcd ok\n" in text
    assert raw_get(kube_api, "/livez") == (200, "ok")
    assert len(client.CoreV1Api(kube_api).list_node().items) == 2  # still serving while it drains


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


# -- list options: selectors and paging, as kube-apiserver applies them --------------------------------


def pod_names(pods: client.V1PodList) -> set[str]:
    return {p.metadata.name for p in pods.items}


def test_label_selectors(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    every = pod_names(core.list_pod_for_all_namespaces())
    dns = pod_names(core.list_pod_for_all_namespaces(label_selector="k8s-app==kube-dns"))
    assert dns == {"coredns-5d8f7c9b6d-x7k2p", "coredns-5d8f7c9b6d-q9m4z"}
    both = pod_names(core.list_pod_for_all_namespaces(label_selector="k8s-app in (kube-dns, kube-proxy)"))
    assert both == dns | {"kube-proxy-h5v8n", "kube-proxy-w2c6r"}
    assert pod_names(core.list_pod_for_all_namespaces(label_selector="k8s-app notin (kube-dns)")) == every - dns
    assert pod_names(core.list_pod_for_all_namespaces(label_selector="k8s-app!=kube-dns")) == every - dns
    with_app = pod_names(core.list_pod_for_all_namespaces(label_selector="app"))
    assert pod_names(core.list_pod_for_all_namespaces(label_selector="!app")) == every - with_app
    metallb = pod_names(core.list_pod_for_all_namespaces(label_selector="app=metallb,component=speaker"))
    assert metallb == {"speaker-h5v8n", "speaker-w2c6r"}
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(label_selector="app in ()")
    assert err.value.status == 400 and status_body(err.value)["reason"] == "BadRequest"
    assert str(status_body(err.value)["message"]).startswith("unable to parse requirement:")


def test_field_selectors(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    on_worker = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=lab-worker").items
    assert on_worker and all(p.spec.node_name == "lab-worker" for p in on_worker)
    assert "coredns-5d8f7c9b6d-q9m4z" in {p.metadata.name for p in on_worker}
    selector = "status.phase=Running,metadata.name!=kube-proxy-h5v8n"
    running = core.list_namespaced_pod("kube-system", field_selector=selector)
    assert "kube-proxy-h5v8n" not in pod_names(running) and "kube-proxy-w2c6r" in pod_names(running)
    assert core.list_namespaced_pod("kube-system", field_selector="status.phase=Pending").items == []
    events = core.list_event_for_all_namespaces(field_selector="involvedObject.name=rethinkdb-0,type=Normal")
    assert [e.reason for e in events.items] == ["Started"]
    assert core.list_event_for_all_namespaces(field_selector="type=Warning").items == []
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name=lab-worker").items] == ["lab-worker"]
    for call, selector in ((core.list_pod_for_all_namespaces, "spec.foo=x"), (core.list_node, "metadata.namespace=x"),
                           (core.list_namespaced_service, "status.phase=Running")):
        args = ("default",) if call == core.list_namespaced_service else ()
        with pytest.raises(ApiException) as err:
            call(*args, field_selector=selector)
        field = selector.split("=")[0]
        assert err.value.status == 400 and status_body(err.value)["message"] == f"field label not supported: {field}"


def test_limit_and_continue(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    every = [(p.metadata.namespace, p.metadata.name) for p in core.list_pod_for_all_namespaces().items]
    first = core.list_pod_for_all_namespaces(limit=4)
    assert len(first.items) == 4 and first.metadata._continue
    assert first.metadata.remaining_item_count == len(every) - 4
    seen, page = [], first
    while True:
        seen += [(p.metadata.namespace, p.metadata.name) for p in page.items]
        if not page.metadata._continue:
            break
        page = core.list_pod_for_all_namespaces(limit=4, _continue=page.metadata._continue)
    assert seen == sorted(every, key=lambda k: f"{k[0]}/{k[1]}") and len(set(seen)) == len(every)
    assert page.metadata.resource_version == first.metadata.resource_version  # one snapshot version
    selected = core.list_pod_for_all_namespaces(limit=1, label_selector="k8s-app=kube-dns")
    assert selected.metadata._continue and selected.metadata.remaining_item_count is None  # unknown when filtered
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=4, _continue="not-a-token")
    assert err.value.status == 400 and "continue key is not valid" in str(status_body(err.value)["message"])


# -- watch ------------------------------------------------------------------------------------------------


def test_watch_follows_a_workspace_to_running(kube_api: client.ApiClient) -> None:
    from kubernetes import watch

    co, core = client.CustomObjectsApi(kube_api), client.CoreV1Api(kube_api)
    rv = core.list_namespaced_pod("default").metadata.resource_version
    co.create_namespaced_custom_object(*WS, "default", "workspaces", ws_body("ws-watch"))
    phases = []
    for event in watch.Watch().stream(co.list_namespaced_custom_object, *WS, "default", "workspaces",
                                      timeout_seconds=5):
        phases.append((event["type"], (event["object"].get("status") or {}).get("phase")))
        if phases[-1][1] == "Running":
            break
    assert phases[0] == ("ADDED", None) and phases[-1] == ("MODIFIED", "Running")
    pods = []
    for event in watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=rv,
                                      label_selector="guildnet.io/workspace=ws-watch", timeout_seconds=2):
        pods.append((event["type"], event["object"].status.phase))
    assert pods[0] == ("ADDED", "Pending") and pods[-1] == ("MODIFIED", "Running")


def test_watch_wire_format_and_deletion(kube_sim: KubeSimulator, ca_context: ssl.SSLContext) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=kube_sim.url, verify=ca_context, headers=headers, timeout=5) as http:
        rv = http.get("/apis/apps/v1/namespaces/metallb-system/deployments").json()["metadata"]["resourceVersion"]
        kube_sim.state.delete(kube_sim.state.rtype("apps", "deployments"), "metallb-system", "controller")
        with http.stream("GET", "/apis/apps/v1/namespaces/metallb-system/deployments",
                         params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
            assert resp.headers.get("transfer-encoding") == "chunked"
            lines = [json.loads(line) for line in resp.iter_lines() if line]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("DELETED", "controller")]
        assert lines[0]["object"]["kind"] == "Deployment" and lines[0]["object"]["apiVersion"] == "apps/v1"
        with http.stream("GET", "/api/v1/pods", params={"watch": "1", "resourceVersion": "1",
                                                           "timeoutSeconds": "1"}) as resp:
            events = [json.loads(line) for line in resp.iter_lines() if line]
        assert events and all(e["type"] in ("ADDED", "MODIFIED", "DELETED") for e in events)


def test_watch_too_old_resource_version_is_410(lab_ca: LabCA, lab_faults: FaultSet, ca_context: ssl.SSLContext,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from mgn_verify.lab.kube import store as kube_store

    monkeypatch.setattr(kube_store, "_LOG_SIZE", 10)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        KubeSimulator(ca=lab_ca, faults=lab_faults, token=TOKEN) as sim,
        httpx.Client(base_url=sim.url, verify=ca_context, headers=auth) as http,
        http.stream("GET", "/api/v1/pods", params={"watch": "true", "resourceVersion": "1001"}) as resp,
    ):
        (line,) = [json.loads(line) for line in resp.iter_lines() if line]
    assert line["type"] == "ERROR" and line["object"]["code"] == 410 and line["object"]["reason"] == "Expired"
    assert line["object"]["message"].startswith("too old resource version: 1001")


# -- object faults are consistent across objects ---------------------------------------------------------


def test_fault_pod_crashloop_is_consistent(kube_api: client.ApiClient, lab_faults: FaultSet) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    lab_faults.inject("kubernetes.pod_crashloop")
    pod = core.read_namespaced_pod("tailscale-subnet-router-w2c6r", "kube-system")
    (cs,) = pod.status.container_statuses
    assert pod.status.phase == "Running" and cs.state.waiting.reason == "CrashLoopBackOff" and cs.restart_count == 7
    assert cs.last_state.terminated.exit_code == 1 and cs.ready is False
    running = pod_names(core.list_namespaced_pod("kube-system", field_selector="status.phase=Running"))
    assert "tailscale-subnet-router-w2c6r" in running  # a crash-looping pod is still phase Running
    ds = apps.read_namespaced_daemon_set("tailscale-subnet-router", "kube-system")
    assert (ds.status.number_ready, ds.status.desired_number_scheduled, ds.status.number_unavailable) == (1, 2, 1)
    (event,) = core.list_namespaced_event(
        "kube-system", field_selector="type=Warning,involvedObject.name=tailscale-subnet-router-w2c6r").items
    assert event.reason == "BackOff" and event.involved_object.uid == pod.metadata.uid
    lab_faults.clear("kubernetes.pod_crashloop")
    assert core.list_namespaced_event("kube-system", field_selector="type=Warning").items == []


def test_fault_operator_down_and_no_default_storageclass(kube_api: client.ApiClient, lab_faults: FaultSet) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    lab_faults.inject("kubernetes.operator_down")
    lab_faults.inject("kubernetes.no_default_storageclass")
    dep = apps.read_namespaced_deployment("workspace-operator", "guildnet-system")
    assert dep.status.ready_replicas is None and dep.status.unavailable_replicas == 1
    assert next(c for c in dep.status.conditions if c.type == "Available").reason == "MinimumReplicasUnavailable"
    (pod,) = core.list_namespaced_pod("guildnet-system", label_selector="app=workspace-operator").items
    assert pod.status.phase == "Running" and pod.status.container_statuses[0].ready is False
    events = core.list_namespaced_event("guildnet-system", field_selector="reason=Unhealthy").items
    assert [e.involved_object.name for e in events] == [pod.metadata.name]
    (sc,) = client.StorageV1Api(kube_api).list_storage_class().items
    assert "storageclass.kubernetes.io/is-default-class" not in (sc.metadata.annotations or {})


def test_node_not_ready_is_tainted(kube_api: client.ApiClient, lab_faults: FaultSet) -> None:
    lab_faults.inject("kubernetes.node_not_ready")
    node = client.CoreV1Api(kube_api).read_node("lab-worker")
    assert {(t.key, t.effect) for t in node.spec.taints} == {
        ("node.kubernetes.io/not-ready", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoExecute")}


# -- the real kubectl against the simulator ----------------------------------------------------------------


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=30, check=False)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kubectl_uses_selectors_paging_and_health(kubeconfig_path: Path, lab_faults: FaultSet) -> None:
    out = kubectl(kubeconfig_path, "get", "pods", "-A", "-l", "k8s-app in (kube-dns)",
                  "--field-selector", "spec.nodeName=lab-worker", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pod/coredns-5d8f7c9b6d-q9m4z"]
    everything = kubectl(kubeconfig_path, "get", "pods", "-A", "-o", "name").stdout.split()
    paged = kubectl(kubeconfig_path, "get", "pods", "-A", "-o", "name", "--chunk-size", "3")
    assert paged.returncode == 0 and paged.stdout.split() == everything and len(everything) > 3
    bad = kubectl(kubeconfig_path, "get", "pods", "-A", "--field-selector", "spec.foo=bar")
    assert bad.returncode != 0 and "field label not supported: spec.foo" in bad.stderr
    lab_faults.inject("kubernetes.pod_crashloop")
    events = kubectl(kubeconfig_path, "get", "events", "-n", "kube-system", "--field-selector", "type=Warning",
                     "-o", "jsonpath={.items[*].reason}")
    assert events.stdout == "BackOff"
    lab_faults.inject("kubernetes.readyz_failing")
    raw = kubectl(kubeconfig_path, "get", "--raw", "/readyz?verbose")
    assert raw.returncode != 0 and "[-]etcd failed" in raw.stdout + raw.stderr

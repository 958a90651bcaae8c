"""Review of the lab's install API (issue 10): what a client of a real v1.30 API server would notice
(server-side Table printing for kubectl, list resourceVersions, generation, DELETE answers,
discovery and watches of created objects), secrets in the Host App's errors, and no threads or
sockets left behind by a stopped lab."""

from __future__ import annotations

import gc
import http.client
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from mgn_verify.lab import Lab
from tests.lab.helpers import open_fds, wait_until
from tests.lab.test_lab_bare import crd_body, hostapp, install, kube_client, workload

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io," \
        "application/json"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A bare lab with GuildNet installed through the typed client, its workloads ready."""
    with Lab(bare=True) as running:
        api = kube_client(running)
        install(api)
        apps = client.AppsV1Api(api)
        wait_until(lambda: (apps.read_namespaced_deployment("workspace-operator", "guildnet-system").status
                            .available_replicas or 0) == 1, timeout=5, what="the operator available")
        api.close()
        yield running


@pytest.fixture(scope="module")
def kube(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.kube.url, verify=ssl.create_default_context(cafile=str(lab.ca.ca_path)),
                      headers={"Authorization": f"Bearer {lab.kube_token}"}, timeout=10) as http:
        yield http


def columns(table: dict[str, Any]) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]


def row(table: dict[str, Any], name: str) -> list[Any]:
    return next(r["cells"] for r in table["rows"] if r["cells"][0] == name)


# -- server-side printing -----------------------------------------------------------------------------


def test_tables_have_the_v1_30_printer_columns(kube: httpx.Client) -> None:
    deploys = kube.get("/apis/apps/v1/deployments", headers={"Accept": TABLE}).json()
    assert deploys["kind"] == "Table" and deploys["apiVersion"] == "meta.k8s.io/v1"
    assert columns(deploys) == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert row(deploys, "workspace-operator")[1:4] == ["1/1", 1, 1]
    obj = next(r["object"] for r in deploys["rows"] if r["cells"][0] == "workspace-operator")
    assert obj["kind"] == "PartialObjectMetadata" and obj["metadata"]["namespace"] == "guildnet-system"
    assert int(deploys["metadata"]["resourceVersion"]) > 0
    sts = kube.get("/apis/apps/v1/namespaces/default/statefulsets", headers={"Accept": TABLE}).json()
    assert columns(sts) == ["Name", "Ready", "Age"] and row(sts, "rethinkdb")[1] == "1/1"
    pods = kube.get("/api/v1/namespaces/default/pods", headers={"Accept": TABLE}).json()
    assert columns(pods) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert row(pods, "rethinkdb-0")[1:4] == ["1/1", "Running", "0"]
    svc = kube.get("/api/v1/namespaces/default/services/rethinkdb", headers={"Accept": TABLE}).json()
    assert columns(svc) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    cells = svc["rows"][0]["cells"]
    assert cells[1] == "LoadBalancer" and cells[3] not in ("<pending>", "<none>") and cells[4].endswith("/TCP")
    roles = kube.get("/apis/rbac.authorization.k8s.io/v1/clusterroles", headers={"Accept": TABLE}).json()
    assert columns(roles) == ["Name", "Created At"]
    plain = kube.get("/apis/apps/v1/deployments").json()  # the typed client asks for no Table
    assert plain["kind"] == "DeploymentList"


def test_custom_resources_print_their_crd_columns(lab: Lab, kube: httpx.Client) -> None:
    api = kube_client(lab)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "guildnet.io", "v1alpha1", "default", "workspaces",
        {"apiVersion": "guildnet.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "tabled"},
         "spec": {"image": "nginx:1.25"}})
    api.close()
    table = kube.get("/apis/guildnet.io/v1alpha1/namespaces/default/workspaces", headers={"Accept": TABLE}).json()
    assert columns(table) == ["Name", "Phase", "Image", "Ready"]
    assert row(table, "tabled")[2] == "nginx:1.25"
    caps = kube.get("/apis/guildnet.io/v1alpha1/capabilities", headers={"Accept": TABLE}).json()
    assert columns(caps) == ["Name", "Age"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_kubectl_get_shows_ready_and_status(lab: Lab) -> None:
    done = subprocess.run(["kubectl", "--kubeconfig", str(lab.workdir / "kubeconfig.yaml"), "get",
                           "deploy,sts,pods", "-A"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines() if line.strip()]
    assert ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] in lines
    assert ["NAMESPACE", "NAME", "READY", "AGE"] in lines
    assert ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"] in lines
    assert ["guildnet-system", "deployment.apps/workspace-operator", "1/1", "1", "1"] in [x[:5] for x in lines]
    assert ["default", "pod/rethinkdb-0", "1/1", "Running", "0"] in [x[:5] for x in lines]


# -- resourceVersion, generation, DELETE ----------------------------------------------------------------


def test_a_list_is_as_new_as_its_items(lab: Lab, kube: httpx.Client) -> None:
    """The controllers run while the list is read: its resourceVersion must cover what it shows
    (a watch resumed from it would otherwise replay changes the list already had)."""
    api = kube_client(lab)
    client.AppsV1Api(api).create_namespaced_deployment("default", workload("fresh-web", {"app": "fresh-web"},
                                                                             "nginx:1.25", 80))
    api.close()
    pods = kube.get("/api/v1/namespaces/default/pods", params={"labelSelector": "app=fresh-web"}).json()
    assert pods["items"], pods
    newest = max(int(p["metadata"]["resourceVersion"]) for p in pods["items"])
    assert int(pods["metadata"]["resourceVersion"]) >= newest


def test_generation_only_where_the_server_keeps_one(lab: Lab) -> None:
    api = kube_client(lab)
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "gen1"}})
    made = [core.create_namespaced_config_map("gen1", {"metadata": {"name": "c"}, "data": {"a": "b"}}),
            core.create_namespaced_service_account("gen1", {"metadata": {"name": "s"}}),
            core.create_namespaced_service("gen1", {"metadata": {"name": "v"}, "spec": {"ports": [{"port": 80}]}}),
            core.read_namespace("gen1")]
    assert [m.metadata.generation for m in made] == [None, None, None, None]
    dep = client.AppsV1Api(api).create_namespaced_deployment("gen1", workload("g-web", {"app": "g"}, "nginx", 80))
    assert dep.metadata.generation == 1
    api.close()


def test_delete_answers_like_the_real_registries(lab: Lab, kube: httpx.Client) -> None:
    """Pods, Services, ServiceAccounts (and Namespaces) answer with the object; the rest with a
    Success Status."""
    api = kube_client(lab)
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account("default", {"metadata": {"name": "gone-sa"}})
    core.create_namespaced_service("default", {"metadata": {"name": "gone-svc"}, "spec": {"ports": [{"port": 80}]}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "gone-cm"}})
    api.close()
    assert kube.delete("/api/v1/namespaces/default/serviceaccounts/gone-sa").json()["kind"] == "ServiceAccount"
    assert kube.delete("/api/v1/namespaces/default/services/gone-svc").json()["kind"] == "Service"
    status = kube.delete("/api/v1/namespaces/default/configmaps/gone-cm").json()
    assert status["kind"] == "Status" and status["status"] == "Success"


def test_discovery_and_watch_follow_a_new_crd(lab: Lab, kube: httpx.Client) -> None:
    body = crd_body("guildnet.io", "workspaces")
    body["metadata"]["name"] = "gadgets.example.com"
    body["spec"].update(group="example.com", names={"plural": "gadgets", "singular": "gadget", "kind": "Gadget"})
    body["spec"]["versions"][0].pop("additionalPrinterColumns", None)
    assert kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=body).status_code == 201
    groups = {g["name"] for g in kube.get("/apis").json()["groups"]}
    assert {"example.com", "rbac.authorization.k8s.io", "apps"} <= groups
    assert [r["name"] for r in kube.get("/apis/example.com/v1alpha1").json()["resources"]] == ["gadgets"]
    rv = kube.get("/apis/example.com/v1alpha1/gadgets").json()["metadata"]["resourceVersion"]
    gadget = {"apiVersion": "example.com/v1alpha1", "kind": "Gadget", "metadata": {"name": "g1"},
              "spec": {"image": "x"}}
    assert kube.post("/apis/example.com/v1alpha1/namespaces/default/gadgets", json=gadget).status_code == 201
    assert kube.delete("/apis/example.com/v1alpha1/namespaces/default/gadgets/g1").status_code == 200
    with kube.stream("GET", "/apis/example.com/v1alpha1/gadgets",
                     params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as stream:
        events = [json.loads(line) for line in stream.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "g1"), ("DELETED", "g1")]


# -- secrets ----------------------------------------------------------------------------------------------


def test_a_malformed_kubeconfig_error_keeps_the_token_out(lab: Lab) -> None:
    """client-go reports a YAML error as ``yaml: line N: ...``; PyYAML's message quotes the line,
    which here is the token's."""
    secret = "s3cr3t-token-do-not-print"
    raw = (f"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{lab.kube.url}\"}}\n"
           f"users:\n- name: u\n  user:\n    token: \"{secret}\ncontexts: []\n")
    with hostapp(lab) as http:
        answer = http.post("/api/bootstrap", json={"cluster": {"name": "broken", "kubeconfig": raw}})
        assert answer.status_code == 422 and secret not in answer.text, answer.text
        assert "json parse error: yaml: line " in answer.json()["details"]
        clusters = http.get("/api/deploy/clusters").json()
        assert http.post("/api/deploy/clusters", json={"name": "x"}).status_code == 202
        cid = next(c["id"] for c in http.get("/api/deploy/clusters").json() if c not in clusters)
        attach = http.post(f"/api/deploy/clusters/{cid}", params={"action": "attach-kubeconfig"},
                           json={"kubeconfig": raw})
        assert attach.status_code == 400 and secret not in attach.text, attach.text


# -- the lab's own hygiene -----------------------------------------------------------------------------------


def _open_connections(lab: Lab) -> list[http.client.HTTPConnection]:
    """A watch in progress, an idle keep-alive connection and one to the pod network."""
    ctx = ssl.create_default_context(cafile=str(lab.ca.ca_path))
    watch = http.client.HTTPSConnection("127.0.0.1", lab.kube.port, context=ctx)
    watch.request("GET", "/api/v1/pods?watch=true&timeoutSeconds=30",
                  headers={"Authorization": f"Bearer {lab.kube_token}"})
    watch.getresponse().fp.readline()
    idle = http.client.HTTPSConnection("127.0.0.1", lab.kube.port, context=ctx)
    idle.request("GET", "/version")
    idle.getresponse().read()
    pods = http.client.HTTPConnection("127.0.0.1", lab.kube.pod_network.port)
    pods.request("GET", "/", headers={"Host": "10.244.0.2:80"})
    pods.getresponse().read()
    return [watch, idle, pods]


def test_stopped_labs_leave_no_threads_or_sockets() -> None:
    def cycle() -> None:
        with Lab(bare=True) as lab:
            assert lab.kube.pod_network.url.startswith("http://127.0.0.1:")  # loopback only
            connections = _open_connections(lab)
        for conn in connections:
            conn.close()

    cycle()  # imports and one-time caches
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(3):
        cycle()
    gc.collect()
    wait_until(lambda: threading.active_count() <= threads and open_fds() <= fds, timeout=5,
               what=f"threads back to {threads} and fds to {fds} "
                    f"(now {threading.active_count()}, {open_fds()}: {threading.enumerate()})")


def test_a_token_the_transport_refuses_is_not_echoed(lab: Lab) -> None:
    """A kubeconfig token with a line break: Go's transport refuses the header by name."""
    raw = (lab.workdir / "kubeconfig.yaml").read_text().replace(f'token: "{lab.kube_token}"', 'token: "sec\\nret-x"')
    with hostapp(lab) as http:
        cid = http.post("/api/deploy/clusters", json={"name": "newline"}).json()["id"]
        assert http.post(f"/api/deploy/clusters/{cid}", params={"action": "attach-kubeconfig"},
                         json={"kubeconfig": raw}).status_code == 200
        answer = http.get(f"/api/cluster/{cid}/proxy/server/anything/")
    assert answer.status_code == 502 and "ret-x" not in answer.text
    assert answer.text == 'upstream error: net/http: invalid header field value for "Authorization"\n'


def test_namespaces_in_the_body_and_the_url_must_agree(kube: httpx.Client) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "where", "namespace": "kube-system"}}
    wrong = kube.post("/api/v1/namespaces/default/configmaps", json=cm)
    assert wrong.status_code == 400 and wrong.json()["reason"] == "BadRequest"
    assert wrong.json()["message"] == ("the namespace of the provided object does not match the namespace sent "
                                       "on the request")
    everywhere = kube.post("/api/v1/configmaps", json=cm)  # the all-namespaces path only lists and watches
    assert everywhere.status_code == 405 and everywhere.json()["reason"] == "MethodNotAllowed"
    assert kube.get("/api/v1/namespaces/kube-system/configmaps/where").status_code == 404


def test_a_table_watch_sends_table_rows(lab: Lab, kube: httpx.Client) -> None:
    """``kubectl get -w``: the events of a watch asked for as Table are one-row Tables."""
    rv = kube.get("/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]
    assert kube.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "watched"}}).status_code == 201
    with kube.stream("GET", "/api/v1/namespaces/default/configmaps", headers={"Accept": TABLE},
                     params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as stream:
        events = [json.loads(line) for line in stream.iter_lines() if line]
    assert [e["type"] for e in events] == ["ADDED"]
    shown = events[0]["object"]
    assert shown["kind"] == "Table" and [r["cells"][0] for r in shown["rows"]] == ["watched"]


def test_status_is_a_subresource_only_where_declared(kube: httpx.Client) -> None:
    """``/status`` exists for the built-in kinds that have one and for custom resources whose CRD
    declares ``subresources.status``; elsewhere it is a 404, and a write of the object may set
    ``status`` itself."""
    assert kube.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "nostatus"}}).is_success
    merge = {"Content-Type": "application/merge-patch+json"}
    missing = kube.patch("/api/v1/namespaces/default/configmaps/nostatus/status", content=b"{}", headers=merge)
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    cap = {"apiVersion": "guildnet.io/v1alpha1", "kind": "Capability", "metadata": {"name": "c1"},
           "spec": {"x": 1}, "status": {"seen": True}}
    made = kube.post("/apis/guildnet.io/v1alpha1/namespaces/default/capabilities", json=cap)
    assert made.status_code == 201 and made.json()["status"] == {"seen": True}
    assert kube.put("/apis/guildnet.io/v1alpha1/namespaces/default/capabilities/c1/status",
                    json=made.json()).status_code == 404
    ws = kube.patch("/apis/guildnet.io/v1alpha1/namespaces/default/workspaces/tabled/status",
                    content=json.dumps({"status": {"phase": "Failed"}}).encode(), headers=merge)
    assert ws.status_code == 200 and ws.json()["status"]["phase"] == "Failed"

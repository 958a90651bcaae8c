"""The bare lab (``Lab(bare=True)``, ``mgn lab up --bare``): a cluster without GuildNet and a Host
App with no cluster registered; installing GuildNet through the real ``kubernetes`` client makes
it serve Workspaces, run the operator and let ``POST /api/bootstrap`` reach RethinkDB."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config

from mgn_verify.lab import Lab
from mgn_verify.lab.cli import STATE_FILENAME
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.crds import crd
from tests.lab.helpers import wait_until
from tests.lab.test_lab_cli import pid_gone, run_lab

WS = ("guildnet.io", "v1alpha1")
RBAC = "rbac.authorization.k8s.io"


def kube_client(lab: Lab) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(lab.workdir / "kubeconfig.yaml"), client_configuration=cfg)
    cfg.retries = 0
    return client.ApiClient(cfg)


def hostapp(lab: Lab, timeout: float = 15.0) -> httpx.Client:
    return httpx.Client(base_url=lab.hostapp.url, verify=ssl.create_default_context(cafile=str(lab.ca.ca_path)),
                        timeout=timeout)


def crd_body(group: str, plural: str) -> dict[str, Any]:
    body = crd(kr.find_type(group, "v1alpha1", plural) or kr.RESOURCE_TYPES[0], kr.isotime())
    body.pop("status")
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"}, "spec": body["spec"]}


def workload(name: str, labels: dict[str, str], image: str, port: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name.split("-")[-1], "image": image,
                                                           "ports": [{"containerPort": port}]}]}}}}


def install(api: client.ApiClient) -> None:
    """What `mgn install` does (§3.3, §4.1), through the typed client: GET-then-create."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ext, rbac = client.ApiextensionsV1Api(api), client.RbacAuthorizationV1Api(api)
    for plural in ("workspaces", "capabilities"):
        ext.create_custom_resource_definition(crd_body("guildnet.io", plural))
    core.create_namespace({"metadata": {"name": "guildnet-system"}})
    core.create_namespaced_service_account("guildnet-system", {"metadata": {"name": "workspace-operator"}})
    rbac.create_cluster_role({"metadata": {"name": "workspace-operator"}, "rules": [
        {"apiGroups": ["guildnet.io"], "resources": ["workspaces", "workspaces/status"], "verbs": ["*"]}]})
    rbac.create_cluster_role_binding({
        "metadata": {"name": "workspace-operator"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "workspace-operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "workspace-operator", "namespace": "guildnet-system"}]})
    apps.create_namespaced_deployment("guildnet-system", workload(
        "workspace-operator", {"app": "workspace-operator"}, "guildnet/hostapp:local", 8080))
    apps.create_namespaced_stateful_set("default", {**workload("rethinkdb", {"app": "rethinkdb"}, "rethinkdb:2.4",
                                                               28015)})
    core.create_namespaced_service("default", {
        "metadata": {"name": "rethinkdb", "labels": {"app": "rethinkdb"}},
        "spec": {"type": "LoadBalancer", "selector": {"app": "rethinkdb"},
                 "ports": [{"name": "client", "port": 28015, "targetPort": 28015}]}})


@pytest.fixture(scope="module")
def bare_lab() -> Iterator[Lab]:
    with Lab(bare=True) as lab:
        yield lab


def test_bare_cluster_has_no_guildnet(bare_lab: Lab) -> None:
    api = kube_client(bare_lab)
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert "guildnet.io" not in groups and {"apps", "metallb.io", RBAC} <= groups
    with pytest.raises(client.ApiException) as err:
        client.CustomObjectsApi(api).list_namespaced_custom_object(*WS, "default", "workspaces")
    assert err.value.status == 404 and json.loads(err.value.body)["message"] == (
        "the server could not find the requested resource")
    core = client.CoreV1Api(api)
    assert "guildnet-system" not in {n.metadata.name for n in core.list_namespace().items}
    assert "rethinkdb" not in {s.metadata.name for s in core.list_namespaced_service("default").items}
    assert {d.metadata.name for d in client.AppsV1Api(api).list_deployment_for_all_namespaces().items} == {
        "coredns", "controller"}
    assert client.StorageV1Api(api).list_storage_class().items
    api.close()
    with hostapp(bare_lab) as http:
        assert http.get("/api/deploy/clusters").json() == []
        assert http.get("/api/health").json()["clusters"] == []
        assert http.get("/api/cluster/lab/servers").json() == []  # no clients: the degraded 200 []
    assert bare_lab.summary()["bare"] is True and "bare" in repr(bare_lab)


def test_bootstrap_needs_the_rethinkdb_service(bare_lab: Lab) -> None:
    kubeconfig = (bare_lab.workdir / "kubeconfig.yaml").read_text()
    with hostapp(bare_lab) as http:
        answer = http.post("/api/bootstrap", json={"cluster": {"kubeconfig": kubeconfig, "name": "lab"}})
        assert answer.status_code == 422
        assert answer.json()["code"] == "cluster_rdb" and "no in-cluster service address discovered for service " \
            "'rethinkdb' in namespace 'default'" in answer.json()["details"]
        assert http.get("/api/deploy/clusters").json() == []  # rolled back


def test_install_then_bootstrap_then_a_workspace_runs() -> None:
    with Lab(bare=True) as lab:
        api = kube_client(lab)
        install(api)
        apps = client.AppsV1Api(api)
        # Created CRDs are served at once; the workloads become ready after a short delay.
        ext = client.ApiextensionsV1Api(api)
        made = ext.read_custom_resource_definition("workspaces.guildnet.io")
        conds = {c.type: c.status for c in made.status.conditions}
        assert conds == {"NamesAccepted": "True", "Established": "True"}
        assert "guildnet.io" in {g.name for g in client.ApisApi(api).get_api_versions().groups}
        wait_until(lambda: apps.read_namespaced_deployment("workspace-operator", "guildnet-system").status
                   .available_replicas == 1, what="the operator Deployment available")
        wait_until(lambda: apps.read_namespaced_stateful_set("rethinkdb", "default").status.ready_replicas == 1,
                   what="the RethinkDB StatefulSet ready")
        log = client.CoreV1Api(api).read_namespaced_pod_log("rethinkdb-0", "default")
        assert "Server ready" in log
        kubeconfig = (lab.workdir / "kubeconfig.yaml").read_text()
        with hostapp(lab) as http:
            answer = http.post("/api/bootstrap", json={"cluster": {"kubeconfig": kubeconfig, "name": "lab"}})
            assert answer.status_code == 200, answer.text
            cid = answer.json()["clusterId"]
            assert http.get(f"/api/cluster/{cid}/db/health").json()["status"] == "ok"
            assert http.post(f"/api/cluster/{cid}/workspaces", json={"name": "w1", "image": "nginx"}).status_code == 202

            def running() -> bool:
                return (http.get(f"/api/cluster/{cid}/workspaces/w1").json().get("status") or {}).get(
                    "phase") == "Running"
            wait_until(running, timeout=8, what="the workspace Running")
        methods = [(m, p.split("?")[0]) for m, p, _ in lab.kube.requests]
        assert ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions") in methods
        api.close()


def test_rethinkdb_service_without_a_ready_pod_is_refused() -> None:
    with Lab(bare=True) as lab:
        api = kube_client(lab)
        client.CoreV1Api(api).create_namespaced_service("default", {
            "metadata": {"name": "rethinkdb"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "rethinkdb"}, "ports": [{"port": 28015}]}})
        with hostapp(lab) as http:
            answer = http.post("/api/bootstrap", json={"cluster": {
                "kubeconfig": (lab.workdir / "kubeconfig.yaml").read_text()}})
        assert answer.status_code == 422 and answer.json()["code"] == "cluster_rdb"
        assert "connect: connection refused" in answer.json()["details"]
        api.close()


def test_lab_up_bare(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    up = run_lab("up", "--bare", "--detach", "--state-dir", str(state_dir))
    try:
        assert up.returncode == 0, up.stderr
        assert "bare: GuildNet is not installed" in up.stdout
        state = json.loads((state_dir / STATE_FILENAME).read_text())
        assert state["bare"] is True
        status = run_lab("status", "--state-dir", str(state_dir))
        assert "bare:" in status.stdout
    finally:
        run_lab("down", "--state-dir", str(state_dir))
    assert pid_gone(int(state["pid"]))

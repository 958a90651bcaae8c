"""What ``mgn install`` asks of the Kubernetes simulator, through the real ``kubernetes`` client and
the real kubectl: create/get/list of namespaces, service accounts, RBAC, CRDs, Deployments,
StatefulSets and Services with the server's errors (409, 404, 422), the controllers that make
workloads ready, PATCH (merge and server-side apply), namespace deletion, and the workspace
operator that runs only while its Deployment is available."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from mgn_verify.lab import Lab
from tests.lab.helpers import wait_until
from tests.lab.test_lab_bare import WS, crd_body, install, kube_client, workload

APPLY = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(bare=True) as running:
        yield running


@pytest.fixture(scope="module")
def api(lab: Lab) -> Iterator[client.ApiClient]:
    api = kube_client(lab)
    yield api
    api.close()


def error(exc: pytest.ExceptionInfo[client.ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body)
    assert body["code"] == exc.value.status
    return body


def test_namespaced_objects_need_their_namespace_and_names_are_unique(api: client.ApiClient) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    with pytest.raises(client.ApiException) as missing:
        core.create_namespaced_service_account("nowhere", {"metadata": {"name": "sa1"}})
    assert error(missing)["message"] == 'namespaces "nowhere" not found'
    core.create_namespace({"metadata": {"name": "apps1"}})
    assert {s.metadata.name for s in core.list_namespaced_service_account("apps1").items} == {"default"}
    core.create_namespaced_service_account("apps1", {"metadata": {"name": "sa1"}})
    with pytest.raises(client.ApiException) as dup:
        core.create_namespaced_service_account("apps1", {"metadata": {"name": "sa1"}})
    assert dup.value.status == 409 and error(dup)["reason"] == "AlreadyExists"
    assert error(dup)["message"] == 'serviceaccounts "sa1" already exists'
    rbac.create_cluster_role({"metadata": {"name": "system:apps1"}, "rules": []})  # ':' is fine for RBAC
    with pytest.raises(client.ApiException) as dup_role:
        rbac.create_cluster_role({"metadata": {"name": "system:apps1"}, "rules": []})
    assert error(dup_role)["message"] == 'clusterroles.rbac.authorization.k8s.io "system:apps1" already exists'
    assert "cluster-admin" in {r.metadata.name for r in rbac.list_cluster_role().items}


def test_invalid_workloads_are_422_with_the_real_causes(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = workload("bad", {"app": "bad"}, "nginx", 80)
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as bad:
        apps.create_namespaced_deployment("default", body)
    status = error(bad)
    assert bad.value.status == 422 and status["reason"] == "Invalid"
    assert status["message"] == ('Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
                                 'map[string]string{"app":"other"}: `selector` does not match template `labels`')
    assert status["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    no_image = workload("noimg", {"app": "noimg"}, "", 80)
    with pytest.raises(client.ApiException) as bad2:
        apps.create_namespaced_stateful_set("default", no_image)
    assert "spec.template.spec.containers[0].image: Required value" in error(bad2)["message"]


def test_deployments_and_statefulsets_become_ready_with_owned_pods(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    created = apps.create_namespaced_deployment("default", workload("web-app", {"app": "web"}, "nginx:1.25", 80))
    assert created.status.ready_replicas is None and created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate" and created.spec.template.spec.dns_policy == "ClusterFirst"

    def ready() -> bool:
        s = apps.read_namespaced_deployment("web-app", "default").status
        return s.ready_replicas == 1 and s.available_replicas == 1 and s.updated_replicas == 1
    wait_until(ready, what="the Deployment ready")
    dep = apps.read_namespaced_deployment("web-app", "default")
    assert dep.status.observed_generation == 1
    assert {c.type: c.status for c in dep.status.conditions} == {"Available": "True", "Progressing": "True"}
    (pod,) = core.list_namespaced_pod("default", label_selector="app=web").items
    assert pod.status.phase == "Running" and pod.status.container_statuses[0].ready
    (owner,) = pod.metadata.owner_references
    rs = apps.read_namespaced_replica_set(owner.name, "default")
    assert owner.kind == "ReplicaSet" and rs.metadata.owner_references[0].uid == dep.metadata.uid
    assert pod.metadata.labels["pod-template-hash"] == rs.metadata.labels["pod-template-hash"]
    apps.create_namespaced_stateful_set("default", workload("cache-db", {"app": "cache"}, "redis:7", 6379))
    wait_until(lambda: apps.read_namespaced_stateful_set("cache-db", "default").status.ready_replicas == 1,
               what="the StatefulSet ready")
    sts_pod = core.read_namespaced_pod("cache-db-0", "default")
    assert sts_pod.metadata.owner_references[0].kind == "StatefulSet" and sts_pod.status.phase == "Running"
    apps.delete_namespaced_deployment("web-app", "default")
    assert core.list_namespaced_pod("default", label_selector="app=web").items == []  # garbage-collected


def test_services_get_cluster_ips_and_metallb_addresses(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    lb = core.create_namespaced_service("default", {"metadata": {"name": "front"}, "spec": {
        "type": "LoadBalancer", "selector": {"app": "front"}, "ports": [{"port": 80}]}})
    assert lb.spec.cluster_ip.startswith("10.96.") and lb.spec.ports[0].node_port >= 30000
    assert lb.status.load_balancer.ingress[0].ip.startswith("10.0.0.2")  # the pool 10.0.0.240-250
    cip = core.create_namespaced_service("default", {"metadata": {"name": "back"}, "spec": {
        "selector": {"app": "back"}, "ports": [{"port": 8080, "name": "http"}]}})
    assert cip.spec.type == "ClusterIP" and cip.spec.ports[0].target_port == 8080
    with pytest.raises(client.ApiException) as bad:
        core.create_namespaced_service("default", {"metadata": {"name": "noports"}, "spec": {}})
    assert error(bad)["message"] == 'Service "noports" is invalid: spec.ports: Required value'


def test_a_created_crd_is_served_until_deleted(api: client.ApiClient) -> None:
    ext, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    body = crd_body("guildnet.io", "capabilities")
    wrong = {**body, "metadata": {"name": "caps.guildnet.io"}}
    with pytest.raises(client.ApiException) as bad:
        ext.create_custom_resource_definition(wrong)
    assert 'must be spec.names.plural+"."+spec.group' in error(bad)["message"]
    made = ext.create_custom_resource_definition(body)
    assert made.status.accepted_names.kind == "Capability" and made.status.stored_versions == ["v1alpha1"]
    custom.create_namespaced_custom_object(*WS, "default", "capabilities",
                                           {"apiVersion": "guildnet.io/v1alpha1", "kind": "Capability",
                                            "metadata": {"name": "c1"}, "spec": {"actions": ["launch"]}})
    assert [c["metadata"]["name"] for c in custom.list_namespaced_custom_object(*WS, "default", "capabilities")[
        "items"]] == ["c1"]
    ext.delete_custom_resource_definition("capabilities.guildnet.io")
    with pytest.raises(client.ApiException) as gone:
        custom.list_namespaced_custom_object(*WS, "default", "capabilities")
    assert gone.value.status == 404


def test_merge_patch_and_server_side_apply(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "patches"}})
    patched = core.patch_namespace("patches", {"metadata": {"labels": {"team": "a"}}},
                                   _content_type="application/merge-patch+json")
    assert patched.metadata.labels["team"] == "a"
    config = {"apiVersion": "apps/v1", "kind": "Deployment", **workload("api-svc", {"app": "api"}, "api:1", 80)}
    config["metadata"]["name"] = "api-svc"
    apps.patch_namespaced_deployment("api-svc", "patches", config, field_manager="mgn",
                                     _content_type=APPLY)  # creates (201)
    wait_until(lambda: apps.read_namespaced_deployment("api-svc", "patches").status.ready_replicas == 1,
               what="the controller done")
    first = apps.read_namespaced_deployment("api-svc", "patches")
    again = apps.patch_namespaced_deployment("api-svc", "patches", config, field_manager="mgn", _content_type=APPLY)
    assert again.metadata.resource_version == first.metadata.resource_version  # a no-op apply
    assert {m.manager for m in again.metadata.managed_fields} == {"mgn"}
    changed = json.loads(json.dumps(config))
    changed["spec"]["replicas"] = 2
    with pytest.raises(client.ApiException) as conflict:
        apps.patch_namespaced_deployment("api-svc", "patches", changed, field_manager="other", _content_type=APPLY)
    assert conflict.value.status == 409 and error(conflict)["message"] == (
        'Apply failed with 1 conflict: conflict with "mgn" using apps/v1: .spec.replicas')
    forced = apps.patch_namespaced_deployment("api-svc", "patches", changed, field_manager="other", force=True,
                                              _content_type=APPLY)
    assert forced.spec.replicas == 2 and forced.metadata.generation == 2
    with pytest.raises(client.ApiException) as no_manager:
        apps.patch_namespaced_deployment("api-svc", "patches", config, _content_type=APPLY)
    assert no_manager.value.status == 422


def test_deleting_a_namespace_removes_its_objects(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    apps.create_namespaced_deployment("doomed", workload("x-app", {"app": "x"}, "x:1", 80))
    core.delete_namespace("doomed")
    assert "doomed" not in {n.metadata.name for n in core.list_namespace().items}
    assert apps.list_namespaced_deployment("doomed").items == []
    assert core.list_namespaced_service_account("doomed").items == []
    with pytest.raises(client.ApiException) as protected:
        core.delete_namespace("default")
    assert error(protected)["message"] == 'namespaces "default" is forbidden: this namespace may not be deleted'


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
def test_kubectl_lists_what_an_install_created(lab: Lab, api: client.ApiClient) -> None:
    install(api)
    kubeconfig = str(lab.workdir / "kubeconfig.yaml")

    def kubectl(*args: str) -> str:
        out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True,
                             timeout=30, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    listed = kubectl("get", "crd,ns,sa,deploy,sts,svc", "-A", "-o", "name").split()
    for name in ("customresourcedefinition.apiextensions.k8s.io/workspaces.guildnet.io", "namespace/guildnet-system",
                 "serviceaccount/workspace-operator", "deployment.apps/workspace-operator",
                 "statefulset.apps/rethinkdb", "service/rethinkdb"):
        assert name in listed
    assert "workspace-operator" in kubectl("get", "clusterroles", "-o", "name")
    assert kubectl("get", "clusterrolebinding", "workspace-operator", "-o", "jsonpath={.roleRef.name}") == (
        "workspace-operator")
    assert "No resources found" in subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "ws", "-A"],
                                                  capture_output=True, text=True, timeout=30).stderr


def test_workspaces_wait_for_the_operator() -> None:
    """Bare: a Workspace created before the operator exists gets no status until it is available."""
    with Lab(bare=True) as lab:
        api = kube_client(lab)
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd_body("guildnet.io", "workspaces"))
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(*WS, "default", "workspaces", {
            "apiVersion": "guildnet.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "early"},
            "spec": {"image": "nginx"}})
        assert "status" not in custom.get_namespaced_custom_object(*WS, "default", "workspaces", "early")
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "guildnet-system"}})
        client.AppsV1Api(api).create_namespaced_deployment("guildnet-system", workload(
            "workspace-operator", {"app": "workspace-operator"}, "guildnet/hostapp:local", 8080))
        wait_until(lambda: (custom.get_namespaced_custom_object(*WS, "default", "workspaces", "early").get("status")
                            or {}).get("phase") == "Running", timeout=8, what="the workspace Running")
        api.close()


def test_operator_down_stops_reconciling() -> None:
    with Lab(faults=["kubernetes.operator_down"]) as lab:
        api = kube_client(lab)
        custom = client.CustomObjectsApi(api)
        born = time.monotonic()
        custom.create_namespaced_custom_object(*WS, "default", "workspaces", {
            "apiVersion": "guildnet.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "stuck"},
            "spec": {"image": "nginx"}})
        assert lab.kube.state.operator.available() is False
        # Past the moment a healthy operator would have written Pending, there is still no status.
        wait_until(lambda: time.monotonic() - born > lab.kube.state.operator.pending_delay * 2, what="time")
        assert "status" not in custom.get_namespaced_custom_object(*WS, "default", "workspaces", "stuck")
        lab.clear("kubernetes.operator_down")
        wait_until(lambda: (custom.get_namespaced_custom_object(*WS, "default", "workspaces", "stuck").get("status")
                            or {}).get("phase") == "Running", timeout=8, what="the workspace Running")
        api.close()

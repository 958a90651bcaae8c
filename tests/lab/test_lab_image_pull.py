"""A workspace whose image cannot be pulled, as a real cluster shows it (through the Host App API
and the real ``kubernetes`` client): the pod stays Pending with its container waiting in
``ErrImagePull`` then ``ImagePullBackOff`` and the kubelet's events, the Deployment is unavailable,
the Workspace stays Pending without ``readyReplicas``, the proxy cannot reach it. A registry under
``.invalid`` never resolves, a malformed reference is ``InvalidImageName``, and the
``kubernetes.image_pull_failing`` fault makes every new workspace's pull fail until cleared."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from mgn_verify.lab import Lab
from mgn_verify.lab.kube.images import pull_failure
from tests.helpers import Run
from tests.lab.helpers import wait_until
from tests.lab.test_lab_bare import WS, hostapp, kube_client

BAD = "registry.invalid/nope/doesnotexist:0.0.0"
NO_SUCH_HOST = (f'failed to pull and unpack image "{BAD}": failed to resolve reference "{BAD}": failed to do request: '
                'Head "https://registry.invalid/v2/nope/doesnotexist/manifests/0.0.0": dial tcp: lookup '
                "registry.invalid on 10.0.0.1:53: no such host")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        operator = running.kube.state.operator
        operator.pending_delay, operator.running_delay, operator.pull_backoff = 0.1, 0.3, 0.4
        yield running


@pytest.fixture(scope="module")
def http(lab: Lab) -> Iterator[httpx.Client]:
    with hostapp(lab) as client_:
        yield client_


@pytest.fixture(scope="module")
def core(lab: Lab) -> Iterator[client.CoreV1Api]:
    api = kube_client(lab)
    yield client.CoreV1Api(api)
    api.close()


def create(http: httpx.Client, name: str, image: str) -> None:
    answer = http.post("/api/cluster/lab/workspaces", json={
        "name": name, "image": image, "ports": [{"containerPort": 8080, "name": "http"}]})
    assert answer.status_code == 202, answer.text


def status(http: httpx.Client, name: str) -> dict[str, Any]:
    found: dict[str, Any] = http.get(f"/api/cluster/lab/workspaces/{name}").json().get("status") or {}
    return found


def pod_of(core: client.CoreV1Api, name: str) -> client.V1Pod:
    (pod,) = core.list_namespaced_pod("default", label_selector=f"guildnet.io/workspace={name}").items
    return pod


def waiting(core: client.CoreV1Api, name: str) -> client.V1ContainerStateWaiting | None:
    pods = core.list_namespaced_pod("default", label_selector=f"guildnet.io/workspace={name}").items
    statuses = (pods[0].status.container_statuses or []) if pods else []
    return statuses[0].state.waiting if statuses else None


def reason(core: client.CoreV1Api, name: str) -> str | None:
    state = waiting(core, name)
    return state.reason if state is not None else None


def events(core: client.CoreV1Api, pod: client.V1Pod) -> list[tuple[str, str, str]]:
    name = pod.metadata.name if pod.metadata is not None else ""
    found = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
    return [(e.type, e.reason, e.message) for e in found]


def test_an_invalid_registry_is_err_image_pull_then_back_off(lab: Lab, http: httpx.Client,
                                                             core: client.CoreV1Api) -> None:
    create(http, "bad", BAD)
    wait_until(lambda: reason(core, "bad") == "ErrImagePull", timeout=5, what="ErrImagePull")
    state = waiting(core, "bad")
    assert state is not None and state.message == NO_SUCH_HOST
    wait_until(lambda: reason(core, "bad") == "ImagePullBackOff", timeout=5, what="ImagePullBackOff")
    state = waiting(core, "bad")
    assert state is not None and state.message == f'Back-off pulling image "{BAD}"'
    pod = pod_of(core, "bad")
    assert pod.status.phase == "Pending" and pod.status.pod_ip
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions["Ready"] == "False" and conditions["ContainersReady"] == "False"
    assert not pod.status.container_statuses[0].ready
    seen = events(core, pod)
    assert ("Warning", "Failed", f'Failed to pull image "{BAD}": {NO_SUCH_HOST}') in seen
    assert ("Warning", "Failed", "Error: ErrImagePull") in seen
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in seen
    assert ("Normal", "BackOff", f'Back-off pulling image "{BAD}"') in seen  # kubelet records it as Normal
    warnings = core.list_namespaced_event("default", field_selector="type=Warning").items
    assert {e.involved_object.name for e in warnings if e.reason == "Failed"} >= {pod.metadata.name}


def test_the_deployment_and_workspace_stay_unavailable(lab: Lab, http: httpx.Client, core: client.CoreV1Api) -> None:
    create(http, "bad2", BAD)
    wait_until(lambda: reason(core, "bad2") == "ImagePullBackOff", timeout=5, what="ImagePullBackOff")
    api = kube_client(lab)
    try:
        dep = client.AppsV1Api(api).read_namespaced_deployment("bad2", "default")
        ws = client.CustomObjectsApi(api).get_namespaced_custom_object(*WS, "default", "workspaces", "bad2")
    finally:
        api.close()
    assert not dep.status.ready_replicas and not dep.status.available_replicas
    available = next(c for c in dep.status.conditions if c.type == "Available")
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")
    assert ws["status"]["phase"] == "Pending" and "readyReplicas" not in ws["status"]
    assert status(http, "bad2")["phase"] == "Pending"
    servers = {s["id"]: s["status"] for s in http.get("/api/cluster/lab/servers").json()}
    assert servers["bad2"] == "pending"
    # The API server's proxy reaches the pod's address, where nothing listens.
    answer = http.get("/api/cluster/lab/proxy/server/bad2/")
    assert answer.status_code == 503 and "connect: connection refused" in answer.json()["message"]
    with pytest.raises(client.ApiException) as refused:
        core.read_namespaced_pod_log(pod_of(core, "bad2").metadata.name, "default")
    assert refused.value.status == 400 and "is waiting to start: trying and failing to pull image" in str(
        refused.value.body)


def test_a_malformed_reference_is_invalid_image_name(http: httpx.Client, core: client.CoreV1Api) -> None:
    create(http, "typo", "nginx::1.25")
    wait_until(lambda: reason(core, "typo") == "InvalidImageName", timeout=5, what="InvalidImageName")
    state = waiting(core, "typo")
    assert state is not None and state.message == ('Failed to apply default image tag "nginx::1.25": couldn\'t parse '
                                                   'image reference "nginx::1.25": invalid reference format')
    pod = pod_of(core, "typo")
    assert pod.status.phase == "Pending"
    seen = events(core, pod)
    assert ("Warning", "Failed", "Error: InvalidImageName") in seen
    assert any(r == "InspectFailed" and t == "Warning" for t, r, _ in seen)
    assert status(http, "typo")["phase"] == "Pending"


def test_the_fault_fails_every_new_pull_until_cleared(lab: Lab, http: httpx.Client, core: client.CoreV1Api) -> None:
    create(http, "good", "nginx:1.25")
    wait_until(lambda: status(http, "good").get("phase") == "Running", timeout=5, what="good Running")
    lab.inject("kubernetes.image_pull_failing")
    try:
        create(http, "blocked", "nginx:1.25")
        wait_until(lambda: reason(core, "blocked") == "ImagePullBackOff", timeout=5, what="ImagePullBackOff")
        fail = [m for t, r, m in events(core, pod_of(core, "blocked")) if m.startswith("Failed to")]
        assert fail and fail[0].endswith("lookup registry-1.docker.io on 10.0.0.1:53: no such host")
        assert 'image "docker.io/library/nginx:1.25"' in fail[0]
        assert status(http, "blocked")["phase"] == "Pending"
        assert status(http, "good")["phase"] == "Running"  # a started container keeps running
    finally:
        lab.clear("kubernetes.image_pull_failing")
    # The kubelet's next pull succeeds.
    wait_until(lambda: status(http, "blocked").get("phase") == "Running", timeout=5, what="blocked Running")
    assert status(http, "blocked")["readyReplicas"] == 1
    assert http.get("/api/cluster/lab/proxy/server/blocked/").status_code == 200


def test_only_unpullable_images_fail() -> None:
    assert pull_failure("nginx:1.25") is None and pull_failure("ghcr.io/org/app@sha256:" + "a" * 64) is None
    assert pull_failure("localhost:5000/app") is None
    invalid = pull_failure("Nginx")
    assert invalid is not None and invalid.reason == "InvalidImageName" and "must be lowercase" in invalid.error
    assert (failure := pull_failure("x.invalid:5000/app")) is not None and failure.reason == "ErrImagePull"
    assert 'Head "https://x.invalid:5000/v2/app/manifests/latest"' in failure.error


def test_the_kubernetes_layer_ignores_a_workspace_pod(lab: Lab, http: httpx.Client, core: client.CoreV1Api,
                                                      mgn: Callable[..., Run]) -> None:
    """A workspace pod in ``default`` is not a platform pod: the platform checks stay green."""
    create(http, "bad3", BAD)
    wait_until(lambda: reason(core, "bad3") == "ImagePullBackOff", timeout=5, what="ImagePullBackOff")
    run = mgn("verify", "kubernetes", "--check", "kubernetes.pods.*", "--check", "kubernetes.events.*",
              "--config", str(lab.config_path))
    assert run.statuses["kubernetes.pods.platform[lab]"] == "pass", run.stdout
    assert run.statuses["kubernetes.events.warnings[lab]"] == "pass", run.stdout

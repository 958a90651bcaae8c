"""The Host App's workspace proxy (§2.9.8) through the Kubernetes simulator's service proxy to the
lab's pod network: a running workspace answers, the API server's errors come back as Status
objects, and a cluster the Host App cannot reach is ``502 upstream error``."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client

from mgn_verify.lab import Lab
from tests.lab.helpers import wait_until
from tests.lab.test_lab_bare import hostapp, kube_client

PROXY = "/api/cluster/lab/proxy/server"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture(scope="module")
def http(lab: Lab) -> Iterator[httpx.Client]:
    with hostapp(lab) as client_:
        yield client_


def running(http: httpx.Client, name: str) -> bool:
    return (http.get(f"/api/cluster/lab/workspaces/{name}").json().get("status") or {}).get("phase") == "Running"


@pytest.fixture(scope="module")
def demo(http: httpx.Client) -> str:
    assert http.post("/api/cluster/lab/workspaces", json={
        "name": "demo", "image": "nginx:1.25", "ports": [{"containerPort": 8080, "name": "http"}]}).status_code == 202
    wait_until(lambda: running(http, "demo"), timeout=8, what="the workspace Running")
    return "demo"


def test_a_running_workspace_answers_through_the_api_server(lab: Lab, http: httpx.Client, demo: str) -> None:
    page = http.get(f"{PROXY}/{demo}/", params={"q": "1", "to": "dropped"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Workspace demo" in page.text and "image: nginx:1.25" in page.text
    assert page.headers["content-security-policy"] == "frame-ancestors *"
    assert page.headers["service-worker-allowed"] == f"{PROXY}/demo"
    # The API server was asked with the Service's first port and the cluster's own credentials.
    (target,) = [t for m, t, _ in lab.kube.requests if "/proxy" in t][-1:]
    assert target == "/api/v1/namespaces/default/services/http:demo:8080/proxy/?q=1"
    seen = lab.kube.pod_network.requests[-1]
    assert seen.headers["x-forwarded-prefix"] == f"{PROXY}/demo" and "authorization" not in seen.headers
    assert seen.path == "/?q=1" and seen.headers["host"].startswith("10.244.")
    missing = http.get(f"{PROXY}/{demo}/nope")
    assert missing.status_code == 404 and "404 Not Found" in missing.text


def test_the_service_proxy_resolves_ports_as_kube_apiserver(lab: Lab, demo: str) -> None:
    with httpx.Client(base_url=lab.kube.url, verify=ssl.create_default_context(cafile=str(lab.ca.ca_path)),
                      headers={"Authorization": f"Bearer {lab.kube_token}"}) as kube:
        base = "/api/v1/namespaces/default/services"
        assert "Workspace demo" in kube.get(f"{base}/demo:http/proxy/").text  # by port name
        wrong_port = kube.get(f"{base}/http:demo:81/proxy/")
        assert wrong_port.status_code == 503 and wrong_port.json()["message"] == (
            'no service port 81 found for service "demo"')
        refused = kube.get(f"{base}/https:demo:8080/proxy/")  # the pod speaks plain HTTP
        assert refused.status_code == 503 and refused.json()["message"].startswith(
            "error trying to reach service: dial tcp 10.244.")
        assert kube.get(f"{base}/ftp:demo:8080/proxy/").status_code == 400


def test_a_service_without_ready_endpoints_is_503(lab: Lab, http: httpx.Client) -> None:
    api = kube_client(lab)
    client.CoreV1Api(api).create_namespaced_service("default", {"metadata": {"name": "empty"}, "spec": {
        "selector": {"app": "nothing-here"}, "ports": [{"port": 80}]}})
    answer = http.get(f"{PROXY}/empty/")
    assert answer.status_code == 503
    status = answer.json()
    assert status["reason"] == "ServiceUnavailable" and status["message"] == (
        'no endpoints available for service "empty"')
    api.close()


def test_a_deleted_workspace_gives_the_real_error(http: httpx.Client) -> None:
    assert http.post("/api/cluster/lab/workspaces", json={"name": "brief", "image": "nginx"}).status_code == 202
    wait_until(lambda: running(http, "brief"), timeout=8, what="the workspace Running")
    assert http.get(f"{PROXY}/brief/").status_code == 200
    assert http.delete("/api/cluster/lab/workspaces/brief").status_code == 200
    gone = http.get(f"{PROXY}/brief/")
    assert gone.status_code == 404 and gone.json()["message"] == 'services "brief" not found'


def test_a_caller_authorization_header_reaches_the_api_server(http: httpx.Client, demo: str) -> None:
    """client-go keeps an Authorization header the request already has: the caller's token is
    what the API server judges (a Host App token is no kube token)."""
    answer = http.get(f"{PROXY}/{demo}/", headers={"Authorization": "Bearer not-a-kube-token"})
    assert answer.status_code == 401 and json.loads(answer.text)["reason"] == "Unauthorized"


def test_an_unreachable_api_server_is_502(lab: Lab, http: httpx.Client, demo: str) -> None:
    lab.inject("kubernetes.down")
    try:
        answer = http.get(f"{PROXY}/{demo}/")
    finally:
        lab.clear("kubernetes.down")
    assert answer.status_code == 502
    assert answer.text == f"upstream error: dial tcp 127.0.0.1:{lab.kube.port}: connect: connection refused\n"
    assert http.get(f"{PROXY}/").status_code == 400  # no service named

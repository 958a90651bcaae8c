"""The Host App client (mgn_verify.clients.hostapp) against the lab's Host App simulator: real
HTTPS with the lab CA, real httpx, no mocks. One lab is shared by the module; faults and the
simulator's request log are reset around each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mgn_verify._exceptions import ApiError, AuthError, ClientError, UnreachableError
from mgn_verify.clients.hostapp import (
    ClusterStatus,
    DbHealth,
    DegradedError,
    HealthReport,
    HostAppClient,
    TlsVerificationError,
    Unreachable,
)
from mgn_verify.lab import Lab
from mgn_verify.lab._tls import LabCA
from mgn_verify.testing import make_config

SECRET = "tok-do-not-print-7c1f0e9a"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def hostapp(lab: Lab) -> Iterator[HostAppClient]:
    lab.clear_all()
    lab.hostapp.clear_requests()
    lab.hostapp.simulate_remote_peer = False
    with HostAppClient(lab.hostapp.url, token=SECRET, ca_bundle=str(lab.ca.ca_path), timeout=5.0,
                       retries=2, backoff=0.01) as client:
        yield client
    lab.clear_all()
    lab.hostapp.simulate_remote_peer = False


def _calls(lab: Lab, method: str, path: str) -> list[int]:
    return [r.status for r in lab.hostapp.requests if r.method == method and r.path.split("?")[0] == path]


def test_read_side_models(hostapp: HostAppClient, lab: Lab) -> None:
    assert hostapp.healthz() == "ok"
    report = hostapp.health()
    assert isinstance(report, HealthReport) and report.headscale == ()
    entry = report.cluster("lab")
    assert entry is not None and entry.ok and entry.code is None
    [record] = hostapp.clusters()
    assert (record.id, record.name, record.state) == ("lab", "lab", "imported")
    assert hostapp.cluster("lab") == record and hostapp.cluster("nope") is None
    status = hostapp.cluster_status("lab")
    assert isinstance(status, ClusterStatus) and status.ok and status.recommended_action is None
    db = hostapp.db_health("lab")
    assert isinstance(db, DbHealth) and db.ok and db.addr.endswith(str(lab.rethinkdb.port))
    assert isinstance(hostapp.servers("lab"), list)
    assert hostapp.workspace("lab", "no-such-workspace") is None
    # The dead /health route is never what the client asks for cluster state.
    assert "GET /api/cluster/lab/status" in {f"{r.method} {r.path}" for r in lab.hostapp.requests}
    assert "/api/cluster/lab/health" not in {r.path for r in lab.hostapp.requests}


def test_json_is_parsed_whatever_the_content_type(hostapp: HostAppClient, lab: Lab) -> None:
    raw = hostapp._transport.request("GET", "/api/deploy/clusters")
    assert raw.headers["content-type"].startswith("text/plain")  # Go's sniffed type
    assert [r.id for r in hostapp.clusters()] == ["lab"]


def test_retries_503_then_succeeds(hostapp: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_transient(503, 2)
    assert hostapp.health().cluster("lab") is not None
    assert _calls(lab, "GET", "/api/health") == [503, 503, 200]


def test_retries_give_up_with_the_status(hostapp: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_transient(502, 3)
    with pytest.raises(ApiError) as caught:
        hostapp.clusters()
    assert caught.value.status == 502 and "HTTP 502" in str(caught.value)
    assert _calls(lab, "GET", "/api/deploy/clusters") == [502, 502, 502]


def test_post_is_never_retried(hostapp: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_transient(503, 1)
    with pytest.raises(ApiError) as caught:
        hostapp.create_workspace("lab", "never-retried", "nginx:1.25")
    assert caught.value.status == 503
    assert _calls(lab, "POST", "/api/cluster/lab/workspaces") == [503]
    assert hostapp.workspace("lab", "never-retried") is None


def test_workspace_create_get_delete(hostapp: HostAppClient, lab: Lab) -> None:
    name = hostapp.create_workspace("lab", "client-ws", "nginx:1.25", ports=[{"containerPort": 8080}])
    assert name == "client-ws"
    workspace = hostapp.workspace("lab", name)
    assert workspace is not None and workspace.name == name
    assert workspace.phase in (None, "Pending", "Running")  # no status until the first reconcile
    assert hostapp.delete_workspace("lab", name) is True
    assert hostapp.delete_workspace("lab", name) is False  # the Host App's 404 not_found


def test_structured_errors_are_typed(hostapp: HostAppClient, lab: Lab) -> None:
    lab.inject("hostapp.http_500")
    with pytest.raises(ApiError) as caught:
        hostapp.health()
    assert (caught.value.status, caught.value.code) == (500, "internal_error")
    assert "internal server error" in str(caught.value) and caught.value.component == "hostapp"
    assert _calls(lab, "GET", "/api/health") == [500]  # 500 is an answer, not a hiccup


def test_non_loopback_mutation_is_an_auth_error(hostapp: HostAppClient, lab: Lab) -> None:
    lab.hostapp.simulate_remote_peer = True
    with pytest.raises(AuthError, match="loopback"):
        hostapp.create_workspace("lab", "remote", "nginx:1.25")


def test_degraded_200_empty_list_is_not_success(hostapp: HostAppClient, lab: Lab) -> None:
    lab.inject("hostapp.no_kubeconfig")
    with pytest.raises(DegradedError) as caught:
        hostapp.db_health("lab")
    assert caught.value.status == 200 and caught.value.code == "no_k8s_clients"
    with pytest.raises(DegradedError):
        hostapp.workspace("lab", "anything")
    status = hostapp.cluster_status("lab")  # /status answers without kube clients
    assert not status.kubeconfig_present and status.recommended_action == "attach_kubeconfig"
    assert hostapp.servers("lab") == []  # ambiguous by design of the API: documented


def test_mutation_without_kube_clients_is_503_no_k8s_clients_not_retried(hostapp: HostAppClient, lab: Lab) -> None:
    lab.inject("hostapp.no_kubeconfig")
    with pytest.raises(DegradedError) as caught:
        hostapp.delete_workspace("lab", "whatever")  # DELETE is idempotent, yet not retried
    assert (caught.value.status, caught.value.code) == (503, "no_k8s_clients")
    assert _calls(lab, "DELETE", "/api/cluster/lab/workspaces/whatever") == [503]


def test_down_is_unreachable_and_retried(hostapp: HostAppClient, lab: Lab) -> None:
    lab.inject("hostapp.down")
    with pytest.raises(UnreachableError) as caught:
        hostapp.healthz()
    assert isinstance(caught.value, Unreachable) and caught.value.reason == "refused"
    assert caught.value.target == lab.hostapp.url


def test_wrong_ca_fails_verification_without_retry(lab: Lab, tmp_path: Path) -> None:
    lab.clear_all()
    lab.hostapp.clear_requests()
    other = LabCA(tmp_path / "other-pki")
    with HostAppClient(lab.hostapp.url, ca_bundle=str(other.ca_path), token=SECRET, retries=2,
                       backoff=0.01) as client, pytest.raises(TlsVerificationError) as caught:
        client.healthz()
    assert not caught.value.expired and "TLS verification failed" in str(caught.value)
    assert lab.hostapp.requests == []  # the handshake failed: no request was ever sent


def test_expired_certificate_is_flagged(hostapp: HostAppClient, lab: Lab) -> None:
    lab.inject("tls.expired")
    with pytest.raises(TlsVerificationError) as caught:
        hostapp.healthz()
    assert caught.value.expired and "expired" in str(caught.value)


def test_token_is_sent_but_never_shown(hostapp: HostAppClient, lab: Lab) -> None:
    assert hostapp._transport._client.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(hostapp) and SECRET not in repr(hostapp._transport)
    errors: list[ClientError] = []
    cases = (("hostapp.http_500", "health"), ("hostapp.no_kubeconfig", "db_health"), ("tls.expired", "healthz"),
             ("hostapp.down", "healthz"), ("remote", "create_workspace"))
    for fault, method in cases:
        lab.clear_all()
        lab.hostapp.simulate_remote_peer = fault == "remote"
        if fault != "remote":
            lab.inject(fault)
        # A fresh client each time: a kept-alive connection would outlive a TLS fault.
        with HostAppClient(lab.hostapp.url, token=SECRET, ca_bundle=str(lab.ca.ca_path), retries=0) as client:
            args = {"health": (), "healthz": (), "db_health": ("lab",), "create_workspace": ("lab", "x", "nginx")}
            with pytest.raises(ClientError) as caught:
                getattr(client, method)(*args[method])
        errors.append(caught.value)
    assert {type(e).__name__ for e in errors} >= {"ServerError", "DegradedError", "TlsVerificationError", "AuthError"}
    for error in errors:
        assert SECRET not in str(error) and SECRET not in repr(error.args) and SECRET not in error.target


def test_from_config(lab: Lab) -> None:
    config = make_config({"api.base_url": lab.hostapp.url, "api.ca_bundle": str(lab.ca.ca_path),
                          "api.token": SECRET, "api.timeout": 4.0})
    with HostAppClient.from_config(config) as client:
        assert client.base_url == lab.hostapp.url and client.healthz() == "ok"
        assert client._transport.timeout == 4.0


def test_slow_answer_is_a_timeout_not_retried(lab: Lab) -> None:
    """A server that takes the request and never answers: one request, then ``timeout``."""
    import socket
    import ssl
    import threading

    from mgn_verify.lab._tls import server_ssl_context

    ctx = server_ssl_context(lab.ca.issue_server_cert("silent"))
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    held: list[ssl.SSLSocket] = []

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            tls = ctx.wrap_socket(raw, server_side=True)
            received.append(tls.recv(65536))  # the request; never answered
            held.append(tls)

    threading.Thread(target=serve, daemon=True).start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with HostAppClient(url, ca_bundle=str(lab.ca.ca_path), timeout=0.5, retries=2, backoff=0.01) as client, \
                pytest.raises(Unreachable) as caught:
            client.health()
        assert caught.value.reason == "timeout" and "no answer within 0.5 s" in str(caught.value)
        assert len(received) == 1 and received[0].startswith(b"GET /api/health ")
    finally:
        listener.close()
        for sock in held:
            sock.close()

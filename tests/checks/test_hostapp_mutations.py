"""The mutating side of the Host App client (mgn_verify.clients.hostapp) against the lab's Host
App simulator: real HTTPS, real httpx. The simulator's request log is the witness of what was
sent (a request whose connection the simulator closed unanswered is logged with status 0)."""

from __future__ import annotations

import secrets
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from mgn_verify._exceptions import (
    ApiError,
    AuthError,
    ClientTimeoutError,
    ConflictError,
    NotFoundError,
    ServerError,
    UnavailableError,
    UsageError,
)
from mgn_verify.clients.hostapp import DegradedError, HostAppClient, LogLine, Unreachable, loopback_note
from mgn_verify.config.redact import Redactor
from mgn_verify.lab import Lab
from tests.helpers import wait_until

SECRET = "tok-do-not-print-2b9d41c7"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def api(lab: Lab) -> Iterator[HostAppClient]:
    lab.clear_all()
    lab.hostapp.clear_requests()
    lab.hostapp.simulate_remote_peer = False
    with HostAppClient(lab.hostapp.url, token=SECRET, ca_bundle=str(lab.ca.ca_path), timeout=5.0, retries=2,
                       backoff=0.01, redactor=Redactor()) as client:
        yield client
    lab.clear_all()
    lab.hostapp.simulate_remote_peer = False


def calls(lab: Lab, method: str, path: str) -> list[int]:
    """Statuses of the logged ``method path`` requests (the query string included when given)."""
    def key(p: str) -> str:
        return p if "?" in path else p.split("?")[0]
    return [r.status for r in lab.hostapp.requests if r.method == method and key(r.path) == path]


def mutations(lab: Lab) -> list[str]:
    return [f"{r.method} {r.path}" for r in lab.hostapp.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def kubeconfig(lab: Lab) -> str:
    return lab.kube.kubeconfig_text(embed_ca=True)


def name() -> str:
    return f"t-{secrets.token_hex(3)}"


# -- retries ------------------------------------------------------------------------------------


def test_get_retries_injected_503s(api: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_transient(503, 2)
    assert api.cluster_by_name("lab") is not None
    assert calls(lab, "GET", "/api/deploy/clusters") == [503, 503, 200]


def test_get_retries_connection_resets(api: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_reset(2)
    assert api.cluster_status("lab").ok
    assert calls(lab, "GET", "/api/cluster/lab/status") == [0, 0, 200]


def test_resets_give_up_as_unreachable(api: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_reset(3)
    with pytest.raises(Unreachable) as caught:
        api.servers("lab")
    assert caught.value.reason == "reset" and "GET " in str(caught.value)
    assert calls(lab, "GET", "/api/cluster/lab/servers") == [0, 0, 0]


def test_delete_and_attach_kubeconfig_are_retried(api: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_reset(1)
    assert api.delete_workspace("lab", "never-there") is False  # reset, then the Host App's 404
    assert calls(lab, "DELETE", "/api/cluster/lab/workspaces/never-there") == [0, 404]
    lab.hostapp.inject_transient(503, 1)
    api.attach_kubeconfig("lab", kubeconfig(lab))  # it replaces a value: safe to send again
    assert calls(lab, "POST", "/api/deploy/clusters/lab?action=attach-kubeconfig") == [503, 200]


def test_429_honours_retry_after_within_its_bound(api: HostAppClient, lab: Lab) -> None:
    waits: list[float] = []
    api._transport.sleep = waits.append  # record the waits instead of sleeping them
    lab.hostapp.inject_transient(429, 1, retry_after="1.5")
    assert api.clusters()
    assert calls(lab, "GET", "/api/deploy/clusters") == [429, 200] and waits == [1.5]
    lab.hostapp.clear_requests()
    lab.hostapp.inject_transient(429, 1, retry_after="3600")  # past retry_after_max: not waited
    with pytest.raises(UnavailableError) as caught:
        api.clusters()
    assert caught.value.status == 429 and caught.value.retry_after == 3600
    assert "retry after 3600 s" in str(caught.value) and calls(lab, "GET", "/api/deploy/clusters") == [429]


def test_post_create_is_never_retried(api: HostAppClient, lab: Lab) -> None:
    lab.hostapp.inject_transient(503, 1)
    with pytest.raises(UnavailableError) as caught:
        api.bootstrap(kubeconfig(lab), allow_duplicate=True)  # no lookup: the POST meets the 503
    assert caught.value.status == 503 and caught.value.code == ""
    assert calls(lab, "POST", "/api/bootstrap") == [503]
    lab.hostapp.inject_reset(1)
    with pytest.raises(Unreachable) as reset:
        api.create_workspace("lab", {"image": "nginx:1.25"})  # nameless: no lookup either
    assert reset.value.reason == "reset"
    assert calls(lab, "POST", "/api/cluster/lab/workspaces") == [0]


# -- typed errors --------------------------------------------------------------------------------


def test_404_is_not_found(api: HostAppClient, lab: Lab) -> None:
    with pytest.raises(NotFoundError) as caught:
        api.workspace_logs("lab", "no-such-ws")
    assert caught.value.code == "no_pods" and caught.value.status == 404
    assert str(caught.value).startswith("GET /api/cluster/lab/workspaces/no-such-ws/logs?limit=200: HTTP 404")
    assert api.workspace_resource("lab", "no-such-ws") is None and api.cluster_kubeconfig("nope") is None


def test_401_says_mutations_are_loopback_only(api: HostAppClient, lab: Lab) -> None:
    lab.hostapp.simulate_remote_peer = True
    with pytest.raises(AuthError) as caught:
        api.delete_workspace("lab", "anything")
    text = str(caught.value)
    assert text.startswith("DELETE /api/cluster/lab/workspaces/anything: HTTP 401")
    assert "mutations are accepted only from a loopback peer" in text and SECRET not in text
    assert calls(lab, "DELETE", "/api/cluster/lab/workspaces/anything") == [401]  # an answer: not retried


def test_loopback_is_told_before_acting(lab: Lab) -> None:
    for url in ("https://127.0.0.1:8090", "https://127.9.0.1", "https://localhost:8090", "https://[::1]:8090"):
        with HostAppClient(url) as local:
            assert local.loopback and local.loopback_note() is None
    with HostAppClient("https://100.64.0.1:8090") as remote:
        note = remote.loopback_note()
        assert not remote.loopback and note is not None and note == loopback_note(remote.base_url)
        assert "only from a loopback peer" in note and "100.64.0.1" in note


def test_422_bootstrap_codes_are_clear(api: HostAppClient, lab: Lab) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    elsewhere = kubeconfig(lab).replace(lab.kube.url, f"https://127.0.0.1:{port}")
    with pytest.raises(ConflictError) as connect:
        api.bootstrap(elsewhere, name=name())
    assert connect.value.status == 422 and connect.value.code == "cluster_connect"
    assert "could not connect to the cluster with this kubeconfig: " in str(connect.value)
    assert "nothing was registered" in str(connect.value)
    probe = lab.hostapp.rdb_probe
    lab.hostapp.rdb_probe = lambda host, port: "dial tcp: connection refused"
    try:
        with pytest.raises(ConflictError) as rdb:
            api.bootstrap(kubeconfig(lab), name=name())
    finally:
        lab.hostapp.rdb_probe = probe
    assert rdb.value.code == "cluster_rdb"
    assert "could not reach the cluster's RethinkDB (Service rethinkdb): connect rethinkdb failed" in str(rdb.value)
    assert calls(lab, "POST", "/api/bootstrap") == [422, 422]
    assert lab.kube.token not in str(connect.value) + str(rdb.value)


def test_unparseable_kubeconfig_never_shows_its_secret(api: HostAppClient, lab: Lab) -> None:
    broken = "users:\n- user:\n    token: sekrit-kube-token-91ac\n  : [unclosed\n"
    with pytest.raises(ConflictError) as caught:
        api.bootstrap(broken, name=name())
    assert caught.value.code == "cluster_connect" and "sekrit-kube-token-91ac" not in str(caught.value)
    for bad, code, said in (("", "missing_kubeconfig", "empty kubeconfig"),
                            (broken, "bad_kubeconfig", "could not parse the kubeconfig")):
        with pytest.raises(ApiError) as attach:
            api._call("POST", "/api/deploy/clusters/lab?action=attach-kubeconfig", json={"kubeconfig": bad},
                      idempotent=True)
        assert attach.value.code == code and said in str(attach.value)
        assert "sekrit-kube-token-91ac" not in str(attach.value)
    with pytest.raises(UsageError):
        api.bootstrap("   ")  # nothing to send: refused before any request


def test_500_create_failed_shows_the_kubernetes_reason(api: HostAppClient, lab: Lab) -> None:
    with pytest.raises(ServerError) as invalid:
        api.create_workspace("lab", {"name": "Not_A_Valid_Name", "image": "nginx:1.25"})
    assert invalid.value.status == 500 and invalid.value.code == "create_failed"
    assert invalid.value.reason == "Invalid" and "Kubernetes said Invalid" in str(invalid.value)
    taken = name()
    api.create_workspace("lab", taken, "nginx:1.25")  # the smoke check's form: no lookup first
    try:
        with pytest.raises(ServerError) as exists:
            api.create_workspace("lab", taken, "nginx:1.25")
        assert exists.value.reason == "AlreadyExists" and "already exists" in str(exists.value)
    finally:
        api.delete_workspace("lab", taken)


def test_a_mutation_without_kube_clients_is_degraded(api: HostAppClient, lab: Lab) -> None:
    lab.inject("hostapp.no_kubeconfig")
    with pytest.raises(DegradedError) as caught:
        api.create_workspace("lab", {"name": name(), "image": "nginx:1.25"})  # the lookup sees 200 []
    assert isinstance(caught.value, UnavailableError) and mutations(lab) == []


def test_a_request_without_answer_in_time_is_a_client_timeout(lab: Lab) -> None:
    server_ctx = _silent_context(lab)  # a TLS listener that reads the request and never answers
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[ssl.SSLSocket] = []

    def serve() -> None:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        tls = server_ctx.wrap_socket(raw, server_side=True)
        tls.recv(65536)
        held.append(tls)

    threading.Thread(target=serve, daemon=True).start()
    try:
        with HostAppClient(f"https://127.0.0.1:{listener.getsockname()[1]}", ca_bundle=str(lab.ca.ca_path),
                           timeout=0.3) as client, pytest.raises(ClientTimeoutError) as caught:
            client.delete_workspace("lab", "slow")
        assert "DELETE " in str(caught.value) and "no answer within 0.3 s" in str(caught.value)
    finally:
        listener.close()
        for sock in held:
            sock.close()


def _silent_context(lab: Lab) -> ssl.SSLContext:
    from mgn_verify.lab._tls import server_ssl_context

    return server_ssl_context(lab.ca.issue_server_cert("silent-hostapp"))


def test_settings_puts_are_refused_without_a_request(api: HostAppClient, lab: Lab) -> None:
    with pytest.raises(UsageError, match="shut down"):
        api._call("PUT", "/api/settings/global", json={})
    assert lab.hostapp.requests == []


# -- round trips -----------------------------------------------------------------------------------


def test_bootstrap_round_trip_registers_a_usable_cluster(api: HostAppClient, lab: Lab) -> None:
    text, cluster_name = kubeconfig(lab), name()
    cluster_id = api.bootstrap(text, name=cluster_name)
    try:
        record = api.cluster(cluster_id)
        assert record is not None and (record.name, record.state) == (cluster_name, "imported")
        assert api.cluster_status(cluster_id).ok  # the raw YAML was usable by the Host App
        assert api.cluster_by_name(cluster_name) == record
        assert api.cluster_kubeconfig(cluster_id) == text
        assert lab.kube.token not in api.redactor.text(text)  # its secrets are marked
        with pytest.raises(ConflictError, match="already registered") as again:
            api.bootstrap(text, name=cluster_name)
        assert again.value.code == "already_exists" and again.value.details == {"id": cluster_id,
                                                                               "name": cluster_name}
        assert calls(lab, "POST", "/api/bootstrap") == [200]
    finally:
        api.delete_cluster(cluster_id)
    assert api.cluster(cluster_id) is None and api.cluster_by_name(cluster_name) is None


def test_register_then_attach_kubeconfig(api: HostAppClient, lab: Lab) -> None:
    cluster_name = name()
    cluster_id = api.register_cluster(cluster_name)
    try:
        record = api.cluster(cluster_id)
        assert record is not None and record.name == cluster_name
        assert not api.cluster_status(cluster_id).kubeconfig_present
        api.attach_kubeconfig(cluster_id, kubeconfig(lab))
        assert api.cluster_status(cluster_id).ok
        with pytest.raises(ConflictError, match="already registered"):
            api.register_cluster(cluster_name)
        assert calls(lab, "POST", "/api/deploy/clusters") == [202]
    finally:
        api.delete_cluster(cluster_id)


def test_workspace_create_get_logs_delete(api: HostAppClient, lab: Lab) -> None:
    ws = name()
    body = {"name": ws, "image": "nginx:1.25", "ports": [{"containerPort": 8080, "name": "http"}]}
    assert api.create_workspace("lab", body) == {"id": ws, "status": "pending"}
    try:
        raw = api.workspace_resource("lab", ws)
        assert raw is not None and raw["kind"] == "Workspace" and raw["metadata"]["name"] == ws
        assert ws in {s.name for s in api.servers("lab")}
        wait_until(lambda: getattr(api.workspace("lab", ws), "phase", None) == "Running", timeout=10,
                   what=f"workspace {ws} Running")
        lines = api.workspace_logs("lab", ws, limit=1)
        assert len(lines) == 1 and isinstance(lines[0], LogLine) and lines[0].msg.startswith(f"[{ws}-")
        assert calls(lab, "GET", f"/api/cluster/lab/workspaces/{ws}/logs?limit=1") == [200]
        with pytest.raises(ConflictError, match="already exists") as again:
            api.create_workspace("lab", body)
        assert again.value.code == "already_exists"
        assert calls(lab, "POST", "/api/cluster/lab/workspaces") == [202]  # one POST, ever
    finally:
        assert api.delete_workspace("lab", ws) is True
    assert api.delete_workspace("lab", ws) is False and api.workspace_resource("lab", ws) is None


def test_proxy_get_passes_any_status_through(api: HostAppClient, lab: Lab) -> None:
    answer = api.proxy_get("lab", "no-such-service", "/index.html?x=1", timeout=3.0)
    [logged] = [r for r in lab.hostapp.requests if "/proxy/server/no-such-service/" in r.path]
    assert logged.path == "/api/cluster/lab/proxy/server/no-such-service/index.html?x=1"
    assert answer.status == logged.status and answer.status >= 400  # returned, not raised, not retried
    status, text = answer
    assert (status, text) == (answer.status, answer.text) and answer.ok is False

"""The Headscale simulator, exercised with httpx on 127.0.0.1."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._tailnet import Tailnet
from mgn_verify.lab.headscale import HeadscaleSimulator, generate_api_key
from mgn_verify.lab.tailscale import TailscaleSimulator, render_status
from tests.lab.helpers import wait_until

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "frame-ancestors 'none'",
}


@pytest.fixture
def sim() -> Iterator[HeadscaleSimulator]:
    faults = FaultSet(HeadscaleSimulator.FAULTS + TailscaleSimulator.FAULTS)
    with HeadscaleSimulator(faults=faults, api_key="hskey-api-abcdefghijkl-" + "s" * 64) as simulator:
        yield simulator


def api(sim: HeadscaleSimulator, path: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or sim.api_key}"}
    return httpx.get(sim.url + path, headers=headers)


def probe(url: str) -> str:
    """ "refused", "ok", or "transient" (reset while the listener is being closed)."""
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return "refused"
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return "transient"
    return "ok"


def refused(url: str) -> bool:
    return probe(url) == "refused"


def test_health_is_unauthenticated(sim: HeadscaleSimulator) -> None:
    response = httpx.get(sim.url + "/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json; charset=utf-8"
    assert response.content == b'{"status":"pass"}\n'
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_version(sim: HeadscaleSimulator) -> None:
    response = httpx.get(sim.url + "/version")
    assert response.status_code == 200
    assert response.json()["version"] == "v0.29.2"
    assert set(response.json()) == {"version", "commit", "buildTime", "go", "dirty"}


def test_url_is_loopback_with_a_free_port(sim: HeadscaleSimulator) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer hskey-api-wrongwrongwr-" + "x" * 64},
        {"Authorization": "bearer hskey-api-abcdefghijkl-" + "s" * 64},  # the prefix is case-sensitive
        {"Authorization": "hskey-api-abcdefghijkl-" + "s" * 64},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["no-key", "bad-key", "lowercase-bearer", "no-bearer", "basic"],
)
@pytest.mark.parametrize("path", ["/api/v1/node", "/api/v1/user", "/api/v1/preauthkey", "/api/v1/nope"])
def test_api_needs_the_bearer_key(sim: HeadscaleSimulator, headers: dict[str, str], path: str) -> None:
    response = httpx.get(sim.url + path, headers=headers)
    assert response.status_code == 401
    assert response.content == b"Unauthorized"  # plain text, no JSON, no newline
    assert response.headers["content-type"].startswith("text/plain")


def test_nodes(sim: HeadscaleSimulator) -> None:
    response = api(sim, "/api/v1/node")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    nodes = response.json()["nodes"]
    assert [node["name"] for node in nodes] == [
        "mgn-operator",
        "guildnet-host",
        "talos-cp-1",
        "talos-worker-1",
    ]
    node = nodes[0]
    assert list(node) == [
        "id",
        "machineKey",
        "nodeKey",
        "discoKey",
        "ipAddresses",
        "name",
        "user",
        "lastSeen",
        "expiry",
        "preAuthKey",
        "createdAt",
        "registerMethod",
        "givenName",
        "online",
        "approvedRoutes",
        "availableRoutes",
        "subnetRoutes",
        "tags",
    ]
    assert node["id"] == "1"  # uint64 as a string
    assert node["machineKey"].startswith("mkey:") and node["discoKey"].startswith("discokey:")
    assert node["ipAddresses"] == ["100.64.0.1", "fd7a:115c:a1e0::1"]
    assert node["user"]["id"] == "1" and node["user"]["name"] == "guildnet"
    assert node["preAuthKey"] is None
    assert node["registerMethod"] == "REGISTER_METHOD_AUTH_KEY"
    assert node["online"] is True
    assert node["tags"] == [] and node["approvedRoutes"] == []
    assert node["createdAt"].endswith("Z") and node["expiry"].endswith("Z")
    assert all(n["online"] for n in nodes)


def test_node_filter_and_single_node(sim: HeadscaleSimulator) -> None:
    assert len(api(sim, "/api/v1/node?user=guildnet").json()["nodes"]) == 4
    assert api(sim, "/api/v1/node?user=nobody").json() == {"nodes": []}
    assert api(sim, "/api/v1/node/2").json()["node"]["name"] == "guildnet-host"
    missing = api(sim, "/api/v1/node/99")
    assert missing.status_code == 404
    assert missing.json() == {"code": 5, "message": "node not found", "details": []}


def test_users(sim: HeadscaleSimulator) -> None:
    users = api(sim, "/api/v1/user").json()["users"]
    assert users == [
        {
            "id": "1",
            "name": "guildnet",
            "createdAt": users[0]["createdAt"],
            "displayName": "",
            "email": "",
            "providerId": "",
            "provider": "",
            "profilePicUrl": "",
        }
    ]
    assert api(sim, "/api/v1/user?name=guildnet").json()["users"] == users
    assert api(sim, "/api/v1/user?id=1").json()["users"] == users
    assert api(sim, "/api/v1/user?name=other").json() == {"users": []}


def test_preauth_keys_are_masked(sim: HeadscaleSimulator) -> None:
    keys = api(sim, "/api/v1/preauthkey").json()["preAuthKeys"]
    assert len(keys) == 1
    key = keys[0]
    assert re.fullmatch(r"hskey-auth-[A-Za-z0-9]{12}-\*\*\*", key["key"])
    assert key["id"] == "1" and key["user"]["name"] == "guildnet"
    assert key["aclTags"] == [] and key["used"] is True


def test_api_health_and_gateway_errors(sim: HeadscaleSimulator) -> None:
    assert api(sim, "/api/v1/health").json() == {"databaseConnectivity": True}
    unknown = api(sim, "/api/v1/nope")
    assert unknown.status_code == 404
    assert unknown.json() == {"code": 5, "message": "Not Found", "details": []}
    with httpx.Client() as c:
        post = c.post(sim.url + "/api/v1/user", headers={"Authorization": f"Bearer {sim.api_key}"})
    assert post.status_code == 405 and post.json()["code"] == 12
    plain = httpx.get(sim.url + "/nope")
    assert (plain.status_code, plain.text) == (404, "404 page not found\n")


def test_nodes_match_the_tailscale_sims_peers(sim: HeadscaleSimulator) -> None:
    status = render_status(sim.tailnet)
    nodes = {node["nodeKey"]: node for node in api(sim, "/api/v1/node").json()["nodes"]}
    assert status["Self"]["PublicKey"] in nodes
    assert set(status["Peer"]) <= set(nodes)
    for key, peer in status["Peer"].items():
        assert nodes[key]["ipAddresses"] == peer["TailscaleIPs"]
        assert nodes[key]["givenName"] == peer["HostName"]
        assert nodes[key]["id"] == peer["ID"]
    assert nodes[status["Self"]["PublicKey"]]["expiry"] == status["Self"]["KeyExpiry"]


@pytest.mark.parametrize("fault", ["tailscale.down", "tailscale.needs_login", "tailscale.key_expired"])
def test_tailscale_faults_take_this_host_offline(sim: HeadscaleSimulator, fault: str) -> None:
    sim.faults.inject(fault)
    nodes = api(sim, "/api/v1/node").json()["nodes"]
    assert nodes[0]["online"] is False
    assert all(node["online"] for node in nodes[1:])
    expiry = datetime.fromisoformat(nodes[0]["expiry"])
    assert (expiry < datetime.now(UTC)) is (fault == "tailscale.key_expired")


def test_generated_api_key_format() -> None:
    assert re.fullmatch(r"hskey-api-[A-Za-z0-9]{12}-[A-Za-z0-9]{64}", generate_api_key())
    assert generate_api_key() != generate_api_key()


def test_default_api_key_and_private_fault_set() -> None:
    with HeadscaleSimulator(tailnet=Tailnet.default()) as simulator:
        assert api(simulator, "/api/v1/node").status_code == 200
    assert refused(simulator.url + "/health")


# -- faults -------------------------------------------------------------------------------


def test_down_refuses_connections_and_comes_back_on_the_same_port(sim: HeadscaleSimulator) -> None:
    url = sim.url
    sim.faults.inject("headscale.down")
    sim.sync_faults()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health")
    sim.faults.clear("headscale.down")
    sim.sync_faults()
    assert sim.url == url
    assert httpx.get(url + "/health").status_code == 200


def test_down_is_applied_by_the_watcher(sim: HeadscaleSimulator) -> None:
    sim.faults.inject("headscale.down")
    wait_until(lambda: probe(sim.url + "/health") == "refused")
    sim.faults.clear("headscale.down")
    wait_until(lambda: probe(sim.url + "/health") == "ok")


def test_down_from_the_start_still_has_a_url() -> None:
    faults = FaultSet(HeadscaleSimulator.FAULTS, ["headscale.down"])
    with HeadscaleSimulator(faults=faults) as simulator:
        assert refused(simulator.url + "/health")
        faults.clear("headscale.down")
        simulator.sync_faults()
        assert httpx.get(simulator.url + "/health").status_code == 200


def test_stop_frees_the_port(sim: HeadscaleSimulator) -> None:
    port = sim.port
    sim.stop()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # would raise EADDRINUSE if still listening


def test_routes_are_node_fields(sim: HeadscaleSimulator) -> None:
    nodes = {n["name"]: n for n in api(sim, "/api/v1/node").json()["nodes"]}
    router = nodes["talos-cp-1"]
    assert router["availableRoutes"] == router["approvedRoutes"] == router["subnetRoutes"] == [
        "10.96.0.0/12",
        "10.244.0.0/16",
    ]
    assert all(n["availableRoutes"] == [] for name, n in nodes.items() if name != "talos-cp-1")


def test_route_disabled_agrees_with_tailscaled(sim: HeadscaleSimulator) -> None:
    sim.faults.inject("headscale.route_disabled")
    router = api(sim, "/api/v1/node/3").json()["node"]
    assert router["availableRoutes"] == ["10.96.0.0/12", "10.244.0.0/16"]
    assert router["approvedRoutes"] == router["subnetRoutes"] == ["10.96.0.0/12"]
    peers = render_status(sim.tailnet, sim.faults.active)["Peer"]
    seen = next(p for p in peers.values() if p["HostName"] == "talos-cp-1")
    assert seen["PrimaryRoutes"] == ["10.96.0.0/12"]
    assert "10.244.0.0/16" not in seen["AllowedIPs"]


def test_peer_offline_agrees_with_tailscaled(sim: HeadscaleSimulator) -> None:
    sim.faults.inject("tailscale.peer_offline")
    worker = api(sim, "/api/v1/node/4").json()["node"]
    assert worker["online"] is False
    assert datetime.fromisoformat(worker["lastSeen"]) < datetime.now(UTC)
    peers = render_status(sim.tailnet, sim.faults.active)["Peer"]
    assert next(p for p in peers.values() if p["HostName"] == "talos-worker-1")["Online"] is False


@pytest.mark.parametrize(
    ("fault", "online"),
    [("tailscale.stopped", False), ("tailscale.needs_machine_auth", True), ("tailscale.key_expiring", True),
     ("tailscale.derp_only", True)],
)
def test_self_as_control_sees_it(sim: HeadscaleSimulator, fault: str, online: bool) -> None:
    sim.faults.inject(fault)
    me = api(sim, "/api/v1/node/1").json()["node"]
    assert me["online"] is online
    status = render_status(sim.tailnet, sim.faults.active)
    assert me["expiry"] == status["Self"]["KeyExpiry"]
    assert me["online"] is status["Self"]["Online"]


def test_db_unavailable(sim: HeadscaleSimulator) -> None:
    sim.faults.inject("headscale.db_unavailable")
    health = httpx.get(sim.url + "/health")
    assert (health.status_code, health.content) == (500, b'{"status":"fail"}\n')
    assert health.headers["content-type"] == "application/health+json; charset=utf-8"
    # Headscale cannot validate the key without its database: the API answers 401.
    response = api(sim, "/api/v1/node")
    assert (response.status_code, response.content) == (401, b"Unauthorized")


def test_api_key_revoked(sim: HeadscaleSimulator) -> None:
    sim.faults.inject("headscale.api_key_revoked")
    assert httpx.get(sim.url + "/health").status_code == 200
    response = api(sim, "/api/v1/health")
    assert (response.status_code, response.content) == (401, b"Unauthorized")


def test_fault_names(sim: HeadscaleSimulator) -> None:
    assert set(HeadscaleSimulator.FAULTS) == {
        "headscale.down",
        "headscale.route_disabled",
        "headscale.db_unavailable",
        "headscale.api_key_revoked",
    }

"""The LocalAPI and Headscale clients: httpx over the simulator's real Unix socket, real HTTP(S)."""

from __future__ import annotations

import gc
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mgn_verify import ApiError, AuthError, NotConfiguredError, UnreachableError
from mgn_verify.clients.headscale import HeadscaleClient
from mgn_verify.clients.tailscale import LocalAPIClient, is_cgnat, parse_go_time, version_tuple
from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._tailnet import Tailnet
from mgn_verify.lab.headscale import HeadscaleSimulator
from mgn_verify.lab.tailscale import TailscaleSimulator


@pytest.fixture(scope="module")
def tailnet() -> Tailnet:
    return Tailnet.default()


@pytest.fixture(scope="module")
def faults() -> FaultSet:
    return FaultSet([*TailscaleSimulator.FAULTS, *HeadscaleSimulator.FAULTS])


@pytest.fixture(scope="module")
def tailscaled(tailnet: Tailnet, faults: FaultSet) -> Iterator[TailscaleSimulator]:
    with TailscaleSimulator(faults=faults, tailnet=tailnet) as sim:
        yield sim


@pytest.fixture(scope="module")
def headscale(tailnet: Tailnet, faults: FaultSet) -> Iterator[HeadscaleSimulator]:
    with HeadscaleSimulator(faults=faults, tailnet=tailnet) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _no_faults(faults: FaultSet) -> Iterator[None]:
    yield
    for name in faults.snapshot():
        faults.clear(name)


# -- LocalAPI --------------------------------------------------------------------------------


def test_status_is_typed_and_read_once(tailscaled: TailscaleSimulator) -> None:
    with LocalAPIClient(tailscaled.socket_path) as client:
        status = client.status()
        assert client.status() is status
    assert status.backend_state == "Running" and status.has_netmap
    assert status.version.startswith("1.82.5") and status.cap_version == 115
    assert status.tailscale_ips == ("100.64.0.1", "fd7a:115c:a1e0::1")
    assert status.self.hostname == "mgn-operator" and status.self.online
    assert status.self.key_expiry is not None and not status.self.expired
    assert status.tailnet == "guildnet" and status.health == ()
    assert [p.label for p in status.peers] == ["guildnet-host", "talos-cp-1", "talos-worker-1"]
    router = status.find_peer("TALOS-CP-1.guildnet.lab.")
    assert router is not None and router.direct and router.relay == "fra"
    assert router.primary_routes == ("10.96.0.0/12", "10.244.0.0/16")
    assert status.find_peer("100.64.0.2") is status.find_peer("guildnet-host") is not None
    assert status.find_peer("talos") is None


def test_peers_false_and_an_unknown_path(tailscaled: TailscaleSimulator) -> None:
    with LocalAPIClient(tailscaled.socket_path) as client:
        assert client.fetch_status(peers=False).peers == ()
        with pytest.raises(ApiError, match="HTTP 404: 404 page not found") as info:
            client._get("/localapi/v0/nope")
    assert info.value.status == 404


def test_a_missing_socket_is_not_configured(tmp_path: Path) -> None:
    path = str(tmp_path / "tailscaled.sock")
    with LocalAPIClient(path) as client, pytest.raises(NotConfiguredError, match="tailscaled is not running"):
        client.status()
    gc.collect()  # no unclosed socket may be left behind (ResourceWarning is an error here)


def test_a_stale_socket_refuses(tmp_path: Path) -> None:
    path = tmp_path / "tailscaled.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # a socket file nobody listens on: what a crashed daemon leaves
        with LocalAPIClient(str(path)) as client:
            with pytest.raises(UnreachableError, match="refuses connections"):
                client.status()
            with pytest.raises(UnreachableError):
                client.status()  # the error is kept: no retry storm
    gc.collect()


def test_faults_show_in_the_typed_status(tailscaled: TailscaleSimulator, faults: FaultSet) -> None:
    faults.inject("tailscale.derp_only")
    faults.inject("tailscale.peer_offline")
    with LocalAPIClient(tailscaled.socket_path) as client:
        status = client.status()
    relayed, offline = status.find_peer("talos-cp-1"), status.find_peer("talos-worker-1")
    assert relayed is not None and relayed.online and relayed.active and not relayed.direct
    assert offline is not None and not offline.online and offline.last_seen is not None


def test_helpers() -> None:
    assert parse_go_time("0001-01-01T00:00:00Z") is None
    moment = parse_go_time("2025-07-01T00:00:00.123456789Z")
    assert moment is not None and moment.microsecond == 123456
    assert is_cgnat("100.64.0.1") and is_cgnat("100.127.255.254")
    assert not is_cgnat("100.128.0.1") and not is_cgnat("fd7a:115c:a1e0::1") and not is_cgnat("x")
    assert version_tuple("1.82.5-t1a2b3c4d5-g6e7f8a9b0c") == (1, 82, 5)
    assert version_tuple("v0.29.2") == (0, 29, 2) and version_tuple("1.80") == (1, 80, 0)
    assert version_tuple("devel") is None


# -- Headscale -------------------------------------------------------------------------------


def test_headscale_read_side(headscale: HeadscaleSimulator) -> None:
    with HeadscaleClient(headscale.url, headscale.api_key) as client:
        assert client.health() == "pass" and client.api_health() is True
        assert client.version().version == "v0.29.2"
        nodes = client.nodes()
        routes = client.routes()
    assert [n.name for n in nodes] == ["mgn-operator", "guildnet-host", "talos-cp-1", "talos-worker-1"]
    me = nodes[0]
    assert me.id == "1" and me.user == "guildnet" and me.online and me.has_route_fields
    assert me.node_key.startswith("nodekey:") and me.ip_addresses == ("100.64.0.1", "fd7a:115c:a1e0::1")
    assert {(r.prefix, r.node_name, r.advertised, r.enabled, r.primary) for r in routes} == {
        ("10.96.0.0/12", "talos-cp-1", True, True, True),
        ("10.244.0.0/16", "talos-cp-1", True, True, True),
    }


def test_headscale_route_disabled(headscale: HeadscaleSimulator, faults: FaultSet) -> None:
    faults.inject("headscale.route_disabled")
    with HeadscaleClient(headscale.url, headscale.api_key) as client:
        routes = {r.prefix: r for r in client.routes()}
    assert routes["10.244.0.0/16"].advertised and not routes["10.244.0.0/16"].enabled
    assert not routes["10.244.0.0/16"].primary and routes["10.96.0.0/12"].enabled


@pytest.mark.parametrize("key", ["", "hskey-api-wrongwrongwr-" + "x" * 64])
def test_a_bad_key_is_an_auth_error_without_the_key(headscale: HeadscaleSimulator, key: str) -> None:
    with HeadscaleClient(headscale.url, key) as client:
        assert client.health() == "pass"
        with pytest.raises(AuthError) as info:
            client.nodes()
        assert not key or key not in repr(client)
    assert not key or key not in str(info.value)
    assert info.value.component == "headscale"
    assert "API key" in str(info.value) or "api_key" in str(info.value)


def test_database_down_looks_like_a_bad_key_to_the_api(headscale: HeadscaleSimulator, faults: FaultSet) -> None:
    faults.inject("headscale.db_unavailable")
    with HeadscaleClient(headscale.url, headscale.api_key) as client:
        with pytest.raises(ApiError, match="database ping failed") as info:
            client.health()
        with pytest.raises(AuthError):
            client.api_health()
    assert (info.value.status, info.value.code) == (500, "fail")


def test_headscale_not_configured_and_down(headscale: HeadscaleSimulator, faults: FaultSet) -> None:
    with pytest.raises(NotConfiguredError):
        HeadscaleClient("", "key")
    faults.inject("headscale.down")
    headscale.sync_faults()
    with HeadscaleClient(headscale.url, headscale.api_key) as client, pytest.raises(
            UnreachableError, match="connection refused"):
        client.health()
    faults.clear("headscale.down")
    headscale.sync_faults()


def test_tls_is_verified_against_the_ca_bundle(tls_lab: Any) -> None:  # conftest.TlsLab
    base = tls_lab.urls["valid"].rsplit("/", 1)[0]
    with HeadscaleClient(base, "k", ca_bundle=tls_lab.ca_bundle) as client, pytest.raises(
            ApiError, match=r"HTTP 200 with status None"):
        client.health()  # TLS passed: the test server is simply not Headscale
    for url, bundle in ((base, None), (tls_lab.urls["unknownca"].rsplit("/", 1)[0], tls_lab.ca_bundle)):
        with HeadscaleClient(url, "k", ca_bundle=bundle) as client, pytest.raises(
                UnreachableError, match="TLS certificate verification failed"):
            client.health()


class _LegacyHeadscale(http.server.BaseHTTPRequestHandler):
    """A v0.25 API: no route fields on nodes, routes under /api/v1/routes."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        node = {"id": "7", "name": "router", "givenName": "router", "nodeKey": "nodekey:ab", "online": True,
                "forcedTags": ["tag:router"], "user": {"id": "1", "name": "ops"}}
        bodies = {"/api/v1/node": {"nodes": [node]},
                  "/api/v1/routes": {"routes": [{"id": "12", "node": node, "prefix": "10.0.0.0/8",
                                                 "advertised": True, "enabled": False, "isPrimary": False}]}}
        body = json.dumps(bodies.get(self.path, {})).encode()
        self.send_response(200 if self.path in bodies else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_legacy_routes_api() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LegacyHeadscale)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with HeadscaleClient(f"http://127.0.0.1:{server.server_address[1]}", "k") as client:
            (node,) = client.nodes()
            (route,) = client.routes()
            with pytest.raises(ApiError, match=r"added in v0\.27"):
                client.version()
    finally:
        server.shutdown()
        server.server_close()
    assert node.tags == ("tag:router",) and not node.has_route_fields
    assert (route.prefix, route.route_id, route.node_name, route.enabled) == ("10.0.0.0/8", "12", "router", False)

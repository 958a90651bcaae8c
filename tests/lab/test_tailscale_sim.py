"""The tailscaled LocalAPI simulator, exercised with real httpx over its Unix socket."""

from __future__ import annotations

import gc
import json
import os
import re
import stat
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mgn_verify.lab._faults import FaultSet, UnknownFaultError
from mgn_verify.lab._tailnet import Tailnet
from mgn_verify.lab.tailscale import LOCALAPI_HOST, TailscaleSimulator, _go_json
from tests.lab.helpers import wait_until

STATUS = "/localapi/v0/status"


@pytest.fixture
def sim() -> Iterator[TailscaleSimulator]:
    with TailscaleSimulator() as simulator:
        yield simulator


def client(sim: TailscaleSimulator) -> httpx.Client:
    # The documented recipe (protocols.md §3.1): httpx sends Host from the base URL.
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=sim.socket_path), base_url=f"http://{LOCALAPI_HOST}"
    )


def get_status(sim: TailscaleSimulator, path: str = STATUS) -> httpx.Response:
    with client(sim) as c:
        return c.get(path)


def connect_error(sim: TailscaleSimulator) -> str:
    """The ConnectError message of a status request that cannot connect."""
    # httpcore does not close its socket when connect() on a Unix socket fails (sync backend,
    # connect_unix_socket). Collect it here, ignoring its ResourceWarning, so the warning
    # (an error under filterwarnings=error) is not blamed on whatever test runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            get_status(sim)
        except httpx.ConnectError as exc:
            message = str(exc)
        else:
            pytest.fail("the status request connected")
        gc.collect()
    return message


def test_running_status_has_the_daemon_shape(sim: TailscaleSimulator) -> None:
    response = get_status(sim)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["tailscale-version"]
    assert int(response.headers["tailscale-cap"]) > 0
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in response.headers
    # json.Encoder with SetIndent("", "\t"): tab indentation and a trailing newline.
    assert response.text.startswith('{\n\t"Version": ')
    assert response.text.endswith("}\n")
    status = response.json()
    assert list(status)[:7] == [
        "Version",
        "TUN",
        "BackendState",
        "HaveNodeKey",
        "AuthURL",
        "TailscaleIPs",
        "Self",
    ]
    assert status["BackendState"] == "Running"
    assert status["Health"] == []
    assert status["AuthURL"] == ""
    me = status["Self"]
    assert status["TailscaleIPs"] == me["TailscaleIPs"] == ["100.64.0.1", "fd7a:115c:a1e0::1"]
    assert me["Online"] is True
    assert isinstance(me["NodeID"], int) and isinstance(me["UserID"], int)
    assert isinstance(me["ID"], str)
    assert me["PublicKey"].startswith("nodekey:") and len(me["PublicKey"]) == len("nodekey:") + 64
    assert me["DNSName"] == f"{me['HostName']}.{status['MagicDNSSuffix']}."
    assert "Expired" not in me  # omitempty
    assert datetime.fromisoformat(me["KeyExpiry"]) > datetime.now(UTC)
    assert status["CurrentTailnet"] == {
        "Name": "guildnet",
        "MagicDNSSuffix": status["MagicDNSSuffix"],
        "MagicDNSEnabled": True,
    }
    assert status["CertDomains"] == [me["DNSName"].rstrip(".")]
    assert status["ClientVersion"] is None
    assert status["User"] == {
        "1": {"ID": 1, "LoginName": "guildnet", "DisplayName": "guildnet", "ProfilePicURL": ""}
    }


def test_peers_are_keyed_by_node_key_and_reachable_directly(sim: TailscaleSimulator) -> None:
    peers = get_status(sim).json()["Peer"]
    names = {peer["HostName"] for peer in peers.values()}
    assert names == {"guildnet-host", "talos-cp-1", "talos-worker-1"}
    for key, peer in peers.items():
        assert key == peer["PublicKey"] and key.startswith("nodekey:")
        assert peer["Online"] is True and peer["Active"] is True
        assert peer["CurAddr"] and peer["Relay"] == "fra"
        assert peer["PeerAPIURL"] is None
        # Headscale sends LastSeen only for offline nodes: zero time for an online peer.
        assert peer["LastSeen"] == "0001-01-01T00:00:00Z"
        assert peer["LastHandshake"] != "0001-01-01T00:00:00Z"
    router = next(p for p in peers.values() if p["HostName"] == "talos-cp-1")
    assert router["PrimaryRoutes"] == ["10.96.0.0/12", "10.244.0.0/16"]
    assert router["AllowedIPs"][-2:] == router["PrimaryRoutes"]
    assert list(router).index("PrimaryRoutes") == list(router).index("AllowedIPs") + 1  # Go struct order
    assert all("PrimaryRoutes" not in p for p in peers.values() if p is not router)  # omitempty


@pytest.mark.parametrize("query", ["?peers=false", "?peers=0", "?peers=f"])
def test_peers_false_gives_null_peer(sim: TailscaleSimulator, query: str) -> None:
    status = get_status(sim, STATUS + query).json()
    assert status["Peer"] is None
    assert status["BackendState"] == "Running"


def test_no_peers_encodes_null_not_an_empty_object() -> None:
    tailnet = Tailnet.default()
    lonely = Tailnet(
        tailnet.users, tailnet.nodes[:1], tailnet.base_domain, tailnet.key_expiry, tailnet.expired_at
    )
    with TailscaleSimulator(tailnet=lonely) as simulator:
        assert '"Peer": null' in get_status(simulator).text


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "localhost"},
        {"Host": "127.0.0.1:80"},
        {"Host": "evil.example.com"},
        {"Origin": "http://evil.example.com"},
        {"Referer": "http://evil.example.com/page"},
    ],
)
def test_browser_like_requests_are_rejected(sim: TailscaleSimulator, headers: dict[str, str]) -> None:
    with client(sim) as c:
        response = c.get(STATUS, headers=headers)
    assert response.status_code == 403
    assert response.text == "invalid localapi request\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_wrong_host_from_base_url_is_rejected(sim: TailscaleSimulator) -> None:
    transport = httpx.HTTPTransport(uds=sim.socket_path)
    with httpx.Client(transport=transport, base_url="http://localhost") as c:
        response = c.get(STATUS)
    assert (response.status_code, response.text) == (403, "invalid localapi request\n")


def test_unknown_path_is_go_404(sim: TailscaleSimulator) -> None:
    response = get_status(sim, "/localapi/v0/nope")
    assert (response.status_code, response.text) == (404, "404 page not found\n")


def test_socket_is_world_accessible_and_removed_on_stop() -> None:
    simulator = TailscaleSimulator()
    simulator.start()
    path = Path(simulator.socket_path)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666
    simulator.stop()
    assert not path.exists()
    assert not path.parent.exists()  # its private temp dir is gone too


def test_explicit_socket_path_replaces_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "ts.sock"
    path.write_text("stale")
    with TailscaleSimulator(socket_path=path) as simulator:
        assert simulator.socket_path == str(path)
        assert get_status(simulator).status_code == 200
    assert not path.exists()
    assert tmp_path.exists()  # a caller's directory is left alone


def test_too_long_socket_path_is_a_clear_error(tmp_path: Path) -> None:
    simulator = TailscaleSimulator(socket_path=tmp_path / ("x" * 120) / "tailscaled.sock")
    with pytest.raises(ValueError, match="too long"):
        simulator.start()


def test_not_started_has_no_socket_path() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = TailscaleSimulator().socket_path


# -- faults -------------------------------------------------------------------------------


def test_down_removes_the_socket_and_comes_back(sim: TailscaleSimulator) -> None:
    path = sim.socket_path
    sim.faults.inject("tailscale.down")
    sim.sync_faults()
    assert not os.path.exists(path)
    assert "[Errno 2] No such file or directory" in connect_error(sim)
    sim.faults.clear("tailscale.down")
    sim.sync_faults()
    assert get_status(sim).json()["BackendState"] == "Running"


def test_down_is_applied_by_the_watcher_without_sync(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.down")
    wait_until(lambda: not os.path.exists(sim.socket_path))
    sim.faults.clear("tailscale.down")
    wait_until(lambda: os.path.exists(sim.socket_path))
    assert get_status(sim).status_code == 200


def test_down_from_the_start_then_cleared() -> None:
    faults = FaultSet(TailscaleSimulator.FAULTS, ["tailscale.down"])
    with TailscaleSimulator(faults=faults) as simulator:
        assert "No such file or directory" in connect_error(simulator)
        faults.clear("tailscale.down")
        simulator.sync_faults()
        assert get_status(simulator).status_code == 200


def test_needs_login(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.needs_login")
    status = get_status(sim).json()
    assert status["BackendState"] == "NeedsLogin"
    # Headscale's registration URL: <server>/register/hskey-authreq-<24 URL-safe characters>.
    assert re.fullmatch(re.escape(sim.login_server) + r"/register/hskey-authreq-[\w-]{24}", status["AuthURL"])
    assert status["TailscaleIPs"] is None
    assert status["CurrentTailnet"] is None
    assert status["Peer"] is None and status["User"] is None
    assert status["MagicDNSSuffix"] == ""
    assert status["Health"] == ["You are logged out."]
    me = status["Self"]
    assert me["Online"] is False and me["HostName"] == "mgn-operator" and me["OS"] == "linux"
    assert me["TailscaleIPs"] is None and me["ID"] == "" and me["NodeID"] == 0
    assert "KeyExpiry" not in me
    # The pending login keeps its URL until it completes.
    assert get_status(sim).json()["AuthURL"] == status["AuthURL"]
    sim.faults.clear("tailscale.needs_login")
    assert get_status(sim).json()["BackendState"] == "Running"


def test_key_expired(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.key_expired")
    status = get_status(sim).json()
    assert status["BackendState"] == "NeedsLogin"
    assert status["AuthURL"] == ""
    assert status["Health"] == ["You are logged out."]
    me = status["Self"]
    assert me["Expired"] is True
    assert datetime.fromisoformat(me["KeyExpiry"]) < datetime.now(UTC)
    assert me["KeyExpiry"].endswith("Z")
    assert me["Online"] is False
    # The network map is still there: addresses and tailnet are known.
    assert status["TailscaleIPs"] == me["TailscaleIPs"]
    assert status["CurrentTailnet"] is not None
    sim.faults.clear("tailscale.key_expired")
    me = get_status(sim).json()["Self"]
    assert "Expired" not in me and me["Online"] is True


def test_needs_login_wins_over_key_expired(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.key_expired")
    sim.faults.inject("tailscale.needs_login")
    status = get_status(sim).json()
    assert status["BackendState"] == "NeedsLogin" and status["TailscaleIPs"] is None


def test_fault_names_are_validated(sim: TailscaleSimulator) -> None:
    assert set(TailscaleSimulator.FAULTS) == {
        "tailscale.down",
        "tailscale.needs_login",
        "tailscale.key_expired",
        "tailscale.key_expiring",
        "tailscale.stopped",
        "tailscale.needs_machine_auth",
        "tailscale.peer_offline",
        "tailscale.derp_only",
        "tailscale.accept_routes_off",
        "tailscale.outdated",
    }
    with pytest.raises(UnknownFaultError, match=r"did you mean 'tailscale\.down'"):
        sim.faults.inject("tailscale.dwn")


def test_go_json_escapes_like_encoding_json() -> None:
    encoded = _go_json({"URL": "https://x/?a=1&b=<2>"})
    assert encoded == b'{\n\t"URL": "https://x/?a=1\\u0026b=\\u003c2\\u003e"\n}\n'
    assert json.loads(encoded) == {"URL": "https://x/?a=1&b=<2>"}


def peer(status: dict[str, object], name: str) -> dict[str, object]:
    peers = status["Peer"]
    assert isinstance(peers, dict)
    return next(p for p in peers.values() if p["HostName"] == name)


def test_key_expiring(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.key_expiring")
    status = get_status(sim).json()
    assert status["BackendState"] == "Running" and status["Health"] == []
    left = datetime.fromisoformat(status["Self"]["KeyExpiry"]) - datetime.now(UTC)
    assert 2 < left.total_seconds() / 86400 <= 3
    assert "Expired" not in status["Self"]


def test_stopped_keeps_the_map_and_drops_the_engine(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.stopped")
    status = get_status(sim).json()
    assert status["BackendState"] == "Stopped"
    assert status["Health"] == ["Tailscale is stopped."]
    assert status["TailscaleIPs"] == ["100.64.0.1", "fd7a:115c:a1e0::1"]
    assert status["Self"]["Online"] is False and status["Self"]["InNetworkMap"] is True
    for p in status["Peer"].values():
        assert p["CurAddr"] == "" and p["Active"] is False and p["InEngine"] is False


def test_needs_machine_auth(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.needs_machine_auth")
    status = get_status(sim).json()
    assert status["BackendState"] == "NeedsMachineAuth"
    assert status["AuthURL"] == "" and status["Health"] == []
    # Registered and polling control, but an unauthorized machine is sent no peers.
    assert status["Self"]["Online"] is True and status["TailscaleIPs"]
    assert status["Peer"] is None


def test_peer_offline(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.peer_offline")
    status = get_status(sim).json()
    worker = peer(status, "talos-worker-1")
    assert worker["Online"] is False and worker["Active"] is False and worker["CurAddr"] == ""
    assert datetime.fromisoformat(worker["LastSeen"]) < datetime.now(UTC)
    assert peer(status, "talos-cp-1")["Online"] is True


def test_derp_only(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.derp_only")
    relayed = peer(get_status(sim).json(), "talos-cp-1")
    # As `tailscale status` shows "active; relay "fra"": traffic flows, no direct address.
    assert relayed["Online"] is True and relayed["Active"] is True
    assert relayed["CurAddr"] == "" and relayed["Relay"] == "fra"
    assert relayed["Addrs"] and relayed["LastHandshake"] != "0001-01-01T00:00:00Z"


def test_accept_routes_off(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.accept_routes_off")
    status = get_status(sim).json()
    assert status["Health"] == ["Some peers are advertising routes but --accept-routes is false"]
    assert status["BackendState"] == "Running"


def test_outdated_version_in_body_and_headers(sim: TailscaleSimulator) -> None:
    sim.faults.inject("tailscale.outdated")
    response = get_status(sim)
    assert response.json()["Version"].startswith("1.74.")
    assert response.headers["tailscale-version"] == response.json()["Version"]
    assert response.headers["tailscale-cap"] == "106"

"""The Lab orchestrator and its pytest plugin."""

from __future__ import annotations

import gc
import importlib.metadata
import os
import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from mgn_verify.lab import Lab, UnknownFaultError, known_faults
from tests.lab.helpers import open_fds, refused, wait_until

pytest_plugins = ["pytester"]


def ts_client(lab: Lab) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=lab.tailscale.socket_path), base_url="http://local-tailscaled.sock"
    )


def test_config_file(tmp_path: Path) -> None:
    with Lab() as lab:
        config = yaml.safe_load(lab.config_path.read_text())
        assert list(config) == [
            "api",
            "defaults",
            "kubernetes",
            "rethinkdb",
            "tailscale",
            "headscale",
            "network",
        ]
        ca = lab.ca.ca_path
        assert config["api"] == {"base_url": lab.hostapp.url, "token": lab.api_token, "ca_bundle": str(ca)}
        assert config["api"]["token"] and Path(config["api"]["ca_bundle"]).is_file()
        assert config["defaults"] == {"cluster": "lab"}
        kubeconfig = yaml.safe_load(Path(config["kubernetes"]["kubeconfig"]).read_text())
        assert config["kubernetes"]["context"] in [c["name"] for c in kubeconfig["contexts"]]
        # The connection keys; the rethinkdb layer may add its own settings next to them.
        assert {k: config["rethinkdb"][k] for k in ("host", "port", "user", "password")} == {
            "host": "127.0.0.1",
            "port": lab.rethinkdb.port,
            "user": "admin",
            "password": lab.rethinkdb_password,
        }
        assert config["tailscale"]["socket"] == lab.tailscale.socket_path
        assert config["tailscale"]["expected_peers"] == ["guildnet-host", "talos-cp-1.guildnet.lab", "talos-worker-1"]
        assert Path(config["tailscale"]["socket"]).parent == lab.workdir
        assert config["headscale"] == {"url": lab.headscale.url, "api_key": lab.headscale.api_key,
                                       "expected_routes": ["10.96.0.0/12", "10.244.0.0/16"]}
        network = config["network"]
        assert network["ca_bundle"] == str(ca)
        assert network["https_endpoints"] == [f"{lab.hostapp.url}/healthz", f"{lab.kube.url}/livez"]
        for endpoint in network["tcp_endpoints"]:
            host, port = endpoint.rsplit(":", 1)
            assert host == "127.0.0.1"
            socket.create_connection((host, int(port)), timeout=2).close()
        assert f"127.0.0.1:{lab.rethinkdb.port}" in network["tcp_endpoints"]
        for url in network["https_endpoints"]:
            verify = ssl.create_default_context(cafile=network["ca_bundle"])
            assert httpx.get(url, verify=verify).status_code == 200


def test_real_clients_accept_the_config() -> None:
    import rethinkdb
    from kubernetes import client
    from kubernetes import config as kube_config

    with Lab() as lab:
        config = yaml.safe_load(lab.config_path.read_text())
        rdb = config["rethinkdb"]
        r = rethinkdb.RethinkDB()
        conn = r.connect(host=rdb["host"], port=rdb["port"], user=rdb["user"], password=rdb["password"])
        try:
            assert "rethinkdb" in r.db_list().run(conn)
        finally:
            conn.close()
        api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=config["kubernetes"]["kubeconfig"], context=config["kubernetes"]["context"]
        )
        with api:
            assert client.VersionApi(api).get_code().git_version
        with ts_client(lab) as ts:
            assert ts.get("/localapi/v0/status").json()["BackendState"] == "Running"
        headers = {"Authorization": f"Bearer {config['headscale']['api_key']}"}
        assert httpx.get(config["headscale"]["url"] + "/api/v1/node", headers=headers).status_code == 200


def test_rethinkdb_service_points_at_the_lab_database() -> None:
    from kubernetes import client
    from kubernetes import config as kube_config

    with Lab() as lab:
        config = yaml.safe_load(lab.config_path.read_text())
        api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=config["kubernetes"]["kubeconfig"], context=config["kubernetes"]["context"]
        )
        with api:
            service = client.CoreV1Api(api).read_namespaced_service("rethinkdb", "default")
        assert service.spec.type == "LoadBalancer"
        assert [ingress.ip for ingress in service.status.load_balancer.ingress] == ["127.0.0.1"]
        assert [port.port for port in service.spec.ports] == [lab.rethinkdb.port]
        assert service.spec.ports[0].target_port == lab.rethinkdb.port
        # The Host App discovers the database through that Service and probes the real port.
        addr = f"127.0.0.1:{lab.rethinkdb.port}"
        verify = ssl.create_default_context(cafile=str(lab.ca.ca_path))
        with httpx.Client(base_url=lab.hostapp.url, verify=verify) as hostapp:
            assert hostapp.get("/api/cluster/lab/db/health").json() == {"status": "ok", "addr": addr}
            lab.inject("rethinkdb.down")
            assert hostapp.get("/api/cluster/lab/db/health").json() == {
                "status": "unavailable",
                "addr": addr,
                "error": f"dial tcp {addr}: connect: connection refused",
            }


def test_tailscale_and_headscale_share_one_tailnet() -> None:
    with Lab() as lab, ts_client(lab) as ts:
        status = ts.get("/localapi/v0/status").json()
        headers = {"Authorization": f"Bearer {lab.headscale.api_key}"}
        nodes = httpx.get(lab.headscale.url + "/api/v1/node", headers=headers).json()["nodes"]
        keys = {node["nodeKey"] for node in nodes}
        assert {status["Self"]["PublicKey"], *status["Peer"]} == keys
        lab.inject("tailscale.needs_login")
        assert ts.get("/localapi/v0/status").json()["AuthURL"].startswith(lab.headscale.url + "/register/")


def test_inject_and_clear_every_tailscale_and_headscale_fault() -> None:
    with Lab() as lab:
        socket_path = lab.tailscale.socket_path
        lab.inject("tailscale.down")
        assert lab.faults == {"tailscale.down"}
        assert not os.path.exists(socket_path)
        lab.clear("tailscale.down")
        assert os.path.exists(socket_path)
        with ts_client(lab) as ts:
            for fault in ("tailscale.needs_login", "tailscale.key_expired"):
                lab.inject(fault)
                assert ts.get("/localapi/v0/status").json()["BackendState"] == "NeedsLogin"
                lab.clear(fault)
                assert ts.get("/localapi/v0/status").json()["BackendState"] == "Running"
        lab.inject("headscale.down")
        assert refused(lab.headscale.port)
        lab.clear("headscale.down")
        assert httpx.get(lab.headscale.url + "/health").status_code == 200
        assert lab.faults == frozenset()


def test_faults_reach_the_other_simulators_too() -> None:
    with Lab() as lab:
        lab.inject("rethinkdb.down")
        wait_until(lambda: refused(lab.rethinkdb.port))
        # The Host App's database probe sees the same outage.
        assert (
            lab._probe_rethinkdb("10.0.0.5", 28015) == "dial tcp 10.0.0.5:28015: connect: connection refused"
        )
        lab.clear("rethinkdb.down")
        wait_until(lambda: not refused(lab.rethinkdb.port))
        assert lab._probe_rethinkdb("10.0.0.5", 28015) is None
        lab.inject("kubernetes.down")
        assert refused(lab.kube.port)
        lab.clear_all()
        assert lab.faults == frozenset()
        assert not refused(lab.kube.port)


def test_start_with_faults() -> None:
    with Lab(faults=["tailscale.down", "headscale.down"]) as lab:
        assert lab.faults == {"tailscale.down", "headscale.down"}
        config = yaml.safe_load(lab.config_path.read_text())
        # The config still names where they will come back.
        assert not os.path.exists(config["tailscale"]["socket"])
        assert refused(lab.headscale.port)
        lab.clear("tailscale.down")
        lab.clear("headscale.down")
        assert os.path.exists(config["tailscale"]["socket"])
        assert httpx.get(config["headscale"]["url"] + "/health").status_code == 200


def test_unknown_fault_names_fail_clearly() -> None:
    with pytest.raises(
        UnknownFaultError, match=r"unknown fault 'rethinkdb\.dwn' \(did you mean 'rethinkdb\.down'\?\)"
    ):
        Lab(faults=["rethinkdb.dwn"])
    lab = Lab()
    with pytest.raises(UnknownFaultError, match=r"did you mean 'tailscale\.down'"):
        lab.inject("tailscale.donw")
    with pytest.raises(UnknownFaultError, match="unknown fault 'nonsense'"):
        lab.clear("nonsense")
    assert isinstance(UnknownFaultError("x"), ValueError)


def test_known_faults_cover_all_five_simulators() -> None:
    names = known_faults()
    assert {"tailscale.down", "tailscale.needs_login", "tailscale.key_expired", "headscale.down"} <= names
    assert {name.split(".")[0] for name in names} >= {
        "kubernetes",
        "hostapp",
        "rethinkdb",
        "tailscale",
        "headscale",
    }
    assert Lab().known_faults == names


def test_hostapp_requests_are_logged() -> None:
    with Lab() as lab:
        assert lab.hostapp_requests == []
        verify = ssl.create_default_context(cafile=str(lab.ca.ca_path))
        assert httpx.get(lab.hostapp.url + "/healthz", verify=verify).status_code == 200
        assert len(lab.hostapp_requests) == 1


def test_explicit_workdir_is_kept(tmp_path: Path) -> None:
    workdir = tmp_path / "lab"
    with Lab(workdir=workdir) as lab:
        assert lab.workdir == workdir.resolve()
        assert lab.config_path == workdir.resolve() / "mgn-lab.yaml"
    assert workdir.is_dir()
    assert not (workdir / "tailscaled.sock").exists()


def test_long_workdir_puts_the_socket_elsewhere(tmp_path: Path) -> None:
    workdir = tmp_path / ("d" * 100)
    with Lab(workdir=workdir) as lab:
        assert len(lab.tailscale.socket_path) < 108
        assert os.path.exists(lab.tailscale.socket_path)


def test_lifecycle_misuse() -> None:
    lab = Lab()
    assert not lab.running and "stopped" in repr(lab)
    with pytest.raises(RuntimeError, match="not running"):
        _ = lab.config_path
    lab.stop()  # stopping a stopped lab is a no-op
    lab.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            lab.start()
    finally:
        lab.stop()
    lab.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = lab.kube


def test_failed_start_stops_what_already_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from mgn_verify.lab.headscale import HeadscaleSimulator

    running: dict[str, object] = {}

    def broken_start(self: HeadscaleSimulator) -> None:
        # By now the CA, Kubernetes, RethinkDB and the Host App are up.
        running.update(ports=[lab.kube.port, lab.hostapp.port, lab.rethinkdb.port], workdir=lab.workdir)
        raise OSError("headscale would not start")

    lab = Lab()
    monkeypatch.setattr(HeadscaleSimulator, "start", broken_start)
    threads_before = threading.active_count()
    with pytest.raises(OSError, match="headscale would not start"):
        lab.start()
    assert not lab.running
    ports = running["ports"]
    assert isinstance(ports, list) and all(refused(port) for port in ports)
    workdir = running["workdir"]
    assert isinstance(workdir, Path) and not workdir.exists()
    assert threading.active_count() == threads_before
    with pytest.raises(RuntimeError, match="not running"):
        _ = lab.kube


def test_start_stop_ten_times_leaks_nothing() -> None:
    with Lab():
        pass  # warm-up: lazy imports, certifi, thread-local caches
    gc.collect()
    threads_before = threading.active_count()
    fds_before = open_fds()
    workdirs: list[Path] = []
    ports: list[int] = []
    for _ in range(10):
        with Lab(faults=["tailscale.key_expired"]) as lab:
            workdirs.append(lab.workdir)
            ports += [lab.kube.port, lab.hostapp.port, lab.rethinkdb.port, lab.headscale.port]
            with ts_client(lab) as ts:
                assert ts.get("/localapi/v0/status").status_code == 200
    gc.collect()
    wait_until(lambda: threading.active_count() == threads_before)
    wait_until(lambda: open_fds() <= fds_before)
    assert not any(path.exists() for path in workdirs)
    assert all(refused(port) for port in ports)


# -- the pytest plugin ----------------------------------------------------------------------


def plugin_args() -> list[str]:
    # Once mgn-verify is installed the pytest11 entry point loads the plugin; naming it with -p
    # as well would register the module twice.
    installed = any(ep.name == "mgn_verify" for ep in importlib.metadata.entry_points(group="pytest11"))
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    return [] if installed and autoload else ["-p", "mgn_verify.kit.pytest_plugin"]


def test_mgn_lab_fixture_and_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest

        seen = []

        @pytest.mark.mgn_lab_faults("tailscale.needs_login", "headscale.down")
        def test_with_faults(mgn_lab):
            assert mgn_lab.faults == {"tailscale.needs_login", "headscale.down"}
            seen.append(mgn_lab)

        def test_fresh_lab_without_faults(mgn_lab):
            assert mgn_lab.faults == frozenset()
            assert mgn_lab.config_path.is_file()
            assert seen and seen[0] is not mgn_lab and not seen[0].running
            mgn_lab.inject("rethinkdb.down")
            seen.append(mgn_lab)

        def test_previous_lab_is_gone():
            assert not seen[1].running

        @pytest.mark.mgn_lab_faults("rethinkdb.dwn")
        def test_typo(mgn_lab):
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", *plugin_args())
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*unknown fault 'rethinkdb.dwn' (did you mean 'rethinkdb.down'?)*"])


def test_mgn_lab_session_fixture_resets_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        labs = []

        def test_first(mgn_lab_session):
            labs.append(mgn_lab_session)
            assert mgn_lab_session.faults == frozenset()
            mgn_lab_session.inject("kubernetes.down")

        @pytest.mark.mgn_lab_faults("headscale.down")
        def test_marker(mgn_lab_session):
            assert mgn_lab_session is labs[0]
            assert mgn_lab_session.faults == {"headscale.down"}

        def test_clean_again(mgn_lab_session):
            assert mgn_lab_session is labs[0]
            assert mgn_lab_session.faults == frozenset()
            assert mgn_lab_session.running

        def test_not_using_it():
            assert labs[0].running and labs[0].faults == frozenset()
        """
    )
    result = pytester.runpytest("--strict-markers", *plugin_args())
    result.assert_outcomes(passed=4)


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers", *plugin_args())
    result.stdout.fnmatch_lines(["@pytest.mark.mgn_lab_faults(*names):*"])


# -- several clusters ---------------------------------------------------------------------------


def test_two_cluster_lab_config_and_isolated_faults() -> None:
    with Lab(clusters=("lab", "lab-2")) as lab:
        assert lab.cluster_ids == ("lab", "lab-2") and lab.cluster_id == "lab"
        config = yaml.safe_load(lab.config_path.read_text())
        first, second = config["clusters"]
        assert first["id"] == "lab" and first["kubeconfig"] == config["kubernetes"]["kubeconfig"]
        assert first["context"] == config["kubernetes"]["context"]
        assert first["rethinkdb"] == {k: config["rethinkdb"][k] for k in ("host", "port", "user", "password")}
        other = lab.cluster("lab-2")
        assert other.kube is not None and other.rethinkdb is not None and other.kubeconfig_path is not None
        assert second["id"] == "lab-2" and second["kubeconfig"] == str(other.kubeconfig_path)
        assert second["rethinkdb"] == {"host": "127.0.0.1", "port": other.rethinkdb.port, "user": "admin",
                                       "password": other.rethinkdb_password}
        assert other.kube.port != lab.kube.port and other.rethinkdb.port != lab.rethinkdb.port
        assert other.kube_token not in lab.cluster("lab").kubeconfig_path.read_text()  # type: ignore[union-attr]
        # The Host App manages both clusters, each through its own API server.
        verify = ssl.create_default_context(cafile=str(lab.ca.ca_path))
        health = httpx.get(f"{lab.hostapp.url}/api/health", verify=verify).json()
        assert {c["id"]: c["status"] for c in health["clusters"]} == {"lab": "ok", "lab-2": "ok"}
        # A fault on lab-2 stays on lab-2.
        lab.inject("kubernetes.down", cluster="lab-2")
        assert refused(other.kube.port) and not refused(lab.kube.port)
        assert lab.faults == frozenset() and lab.cluster_faults("lab-2") == {"kubernetes.down"}
        health = httpx.get(f"{lab.hostapp.url}/api/health", verify=verify).json()
        statuses = {c["id"]: (c["status"], c.get("code")) for c in health["clusters"]}
        assert statuses == {"lab": ("ok", None), "lab-2": ("error", "cluster_unreachable")}
        lab.inject("hostapp.no_kubeconfig", cluster="lab-2")  # the Host App lost lab-2's kubeconfig only
        status = httpx.get(f"{lab.hostapp.url}/api/cluster/lab-2/status", verify=verify).json()
        assert status["kubeconfigPresent"] is False
        assert httpx.get(f"{lab.hostapp.url}/api/cluster/lab/status", verify=verify).json()["k8sReachable"]
        lab.inject("rethinkdb.down", cluster="lab-2")
        wait_until(lambda: refused(other.rethinkdb.port))
        assert not refused(lab.rethinkdb.port)
        lab.clear("kubernetes.down", cluster="lab-2")
        assert not refused(other.kube.port)
        lab.clear_all()
        assert lab.cluster_faults("lab-2") == frozenset()
        wait_until(lambda: not refused(other.rethinkdb.port))
        assert "lab-2" in lab.summary()["clusters"]


def test_cluster_fault_errors() -> None:
    lab = Lab(clusters=["a", "b"])
    with pytest.raises(ValueError, match="unknown cluster 'c'"):
        lab.inject("kubernetes.down", cluster="c")
    with pytest.raises(UnknownFaultError):  # tailscaled is shared: not a per-cluster fault
        lab.inject("tailscale.down", cluster="b")
    lab.inject("kubernetes.down", cluster="b")  # before start: applies from the start
    assert lab.cluster_faults("b") == {"kubernetes.down"} and lab.faults == frozenset()
    with pytest.raises(ValueError, match="distinct"):
        Lab(clusters=["a", "a"])
    assert Lab().cluster_ids == ("lab",)  # one cluster by default, as before


def test_mgn_lab_clusters_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mgn_lab_clusters("east", "west")
        def test_two(mgn_lab):
            assert mgn_lab.cluster_ids == ("east", "west")
            mgn_lab.inject("kubernetes.down", cluster="west")

        def test_default(mgn_lab):
            assert mgn_lab.cluster_ids == ("lab",)
        """
    )
    pytester.runpytest(*plugin_args(), "--strict-markers").assert_outcomes(passed=2)

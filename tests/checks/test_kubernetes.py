"""The kubernetes layer end to end: the real ``mgn verify kubernetes`` (a subprocess; console,
JSON and JUnit) against the lab's Kubernetes API simulator, with the real ``kubernetes`` client.
One lab is shared by the module; faults are cleared around each test."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mgn_verify.lab import Lab
from mgn_verify.testing import VerifyRun, run_verify

CHECKS = (
    "kubernetes.config", "kubernetes.api.reachable", "kubernetes.api.livez", "kubernetes.api.readyz",
    "kubernetes.api.latency", "kubernetes.version", "kubernetes.version.skew", "kubernetes.rbac.read",
    "kubernetes.rbac", "kubernetes.nodes.ready", "kubernetes.nodes.resources", "kubernetes.distribution",
    "kubernetes.dns", "kubernetes.network", "kubernetes.storage.default_class", "kubernetes.loadbalancer",
    "kubernetes.crds", "kubernetes.operator", "kubernetes.pods.platform", "kubernetes.events.warnings",
)
#: Pin the client version so the skew check does not depend on this machine's kubectl.
SAME_CLIENT = ("--set", "kubernetes.client_version=1.30")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(lab: Lab) -> Iterator[None]:
    lab.clear_all()
    yield
    lab.clear_all()


def verify(lab: Lab, tmp_path: Path, *args: str, layer: str = "kubernetes",
           env: dict[str, str] | None = None) -> tuple[VerifyRun, str]:
    """The run and its JUnit XML."""
    junit = tmp_path / "junit.xml"
    run = run_verify([layer, "--config", str(lab.config_path), *SAME_CLIENT, "--junit", str(junit), *args],
                     env=env)
    return run, junit.read_text() if junit.exists() else ""


def dependents(run: VerifyRun, root: str) -> set[str]:
    """Every result that requires ``root``, directly or through another result."""
    assert run.report is not None
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for result in run.report["results"]:
            if result["id"] not in found and any(r == root or r in found for r in result.get("requires") or []):
                found.add(result["id"])
                grew = True
    return found


def assert_no_secret(lab: Lab, run: VerifyRun, junit: str, *secrets: str) -> None:
    for secret in (lab.kube_token, *secrets):
        assert secret not in run.stdout and secret not in run.stderr
        assert secret not in str(run.report) and secret not in junit


def test_healthy_lab_is_green_and_leaks_nothing(lab: Lab, tmp_path: Path) -> None:
    run, junit = verify(lab, tmp_path)
    statuses = run.statuses()
    assert {f"{c}[lab]" for c in CHECKS} <= set(statuses), sorted(statuses)
    assert {k: v for k, v in statuses.items() if v != "pass"} == {}
    assert run.exit_code == 0
    config = run.result("kubernetes.config[lab]")
    assert "context 'mgn-lab' (user 'mgn-lab-admin')" in config["message"]
    assert config["target"] == "lab"
    assert "kubeadm (ConfigMap kube-system/kubeadm-config)" in run.result("kubernetes.distribution[lab]")["message"]
    assert "MetalLB pools: default-pool" in run.result("kubernetes.loadbalancer[lab]")["message"]
    assert "kube-flannel/kube-flannel-ds" in run.result("kubernetes.network[lab]")["message"]
    assert_no_secret(lab, run, junit)


#: fault → (the check that catches it, its status, what its message must say)
FAULTS = {
    "kubernetes.down": ("kubernetes.api.reachable", "fail", "unreachable: connection refused"),
    "tls.expired": ("kubernetes.api.reachable", "fail", "TLS verification failed: certificate has expired"),
    "kubernetes.readyz_failing": ("kubernetes.api.livez", "fail", "/livez answered 500: [-]etcd failed"),
    "kubernetes.shutting_down": ("kubernetes.api.readyz", "fail", "/readyz answered 500: [-]shutdown failed"),
    "kubernetes.forbidden": ("kubernetes.rbac.read", "fail", "'mgn-lab-admin' may not: list nodes, list pods"),
    "kubernetes.node_not_ready": ("kubernetes.nodes.ready", "fail", "node lab-worker: Ready=False (KubeletNotReady"),
    "kubernetes.pod_crashloop": ("kubernetes.pods.platform", "fail",
                                 "kube-system/tailscale-subnet-router-w2c6r: container tailscale CrashLoopBackOff "
                                 "(7 restarts, last exit 1 Error)"),
    "kubernetes.operator_down": ("kubernetes.operator", "fail",
                                 "guildnet-system/workspace-operator: 0/1 ready (MinimumReplicasUnavailable"),
    "kubernetes.no_default_storageclass": ("kubernetes.storage.default_class", "fail",
                                           "no default StorageClass (classes: standard)"),
}
#: Warning events that a fault's state logs too: info severity, never counted.
EVENT_FAULTS = {"kubernetes.pod_crashloop": "BackOff", "kubernetes.operator_down": "Unhealthy"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_caught_by_its_check_and_blocks_dependents(lab: Lab, tmp_path: Path, fault: str) -> None:
    check_id, status, message = FAULTS[fault]
    lab.inject(fault)
    run, junit = verify(lab, tmp_path)
    root = f"{check_id}[lab]"
    result = run.result(root)
    assert result["status"] == status and message in result["message"], result
    blocked = dependents(run, root)
    for dep in blocked:
        assert run.statuses()[dep] == "blocked", (dep, run.result(dep))
    others = {k: v for k, v in run.statuses().items() if k != root and k not in blocked and v != "pass"}
    if fault in EVENT_FAULTS:
        events = others.pop("kubernetes.events.warnings[lab]")
        assert events == "warn"
        assert EVENT_FAULTS[fault] in run.result("kubernetes.events.warnings[lab]")["message"]
    assert others == {}, others
    assert run.exit_code == 1
    assert root in run.stdout  # the summary names the root cause
    assert_no_secret(lab, run, junit)


def test_readyz_failing_blocks_everything_that_reads(lab: Lab, tmp_path: Path) -> None:
    lab.inject("kubernetes.readyz_failing")
    run, _ = verify(lab, tmp_path)
    assert run.statuses()["kubernetes.api.readyz[lab]"] == "blocked"
    assert run.statuses()["kubernetes.nodes.ready[lab]"] == "blocked"
    assert run.statuses()["kubernetes.version[lab]"] == "pass"  # /version does not touch etcd


def test_slow_api_is_a_latency_warning(lab: Lab, tmp_path: Path) -> None:
    lab.inject("kubernetes.slow")
    run, _ = verify(lab, tmp_path, "--check", "kubernetes.api.*")
    latency = run.result("kubernetes.api.latency[lab]")
    assert latency["status"] == "warn" and "above kubernetes.latency_warn=1 s" in latency["message"]
    assert run.statuses()["kubernetes.api.reachable[lab]"] == "pass"
    assert run.exit_code == 0


def test_slow_api_ends_at_the_check_deadline(lab: Lab, tmp_path: Path) -> None:
    lab.inject("kubernetes.slow")
    run, _ = verify(lab, tmp_path, "--timeout", "1.5")
    reachable = run.result("kubernetes.api.reachable[lab]")
    assert reachable["status"] == "error" and reachable["message"] == "timed out after 1.5 s"
    assert reachable["duration_s"] < 2.5
    assert run.statuses()["kubernetes.nodes.ready[lab]"] == "blocked"
    assert run.exit_code == 3


def test_client_skew_warns(lab: Lab, tmp_path: Path) -> None:
    run, _ = verify(lab, tmp_path, "--check", "kubernetes.version*", "--set", "kubernetes.client_version=1.32")
    skew = run.result("kubernetes.version.skew[lab]")
    assert skew["status"] == "warn" and "outside kubectl's ±1 minor skew policy" in skew["message"]
    run, _ = verify(lab, tmp_path, "--check", "kubernetes.version", "--set", "kubernetes.max_version=1.29")
    version = run.result("kubernetes.version[lab]")
    assert version["status"] == "fail" and "outside the supported range 1.28-1.29" in version["message"]


# -- credentials -----------------------------------------------------------------------------------


def _kubeconfig(lab: Lab, tmp_path: Path, user: dict[str, str], name: str = "robot") -> Path:
    data = yaml.safe_load((lab.workdir / "kubeconfig.yaml").read_text())
    data["users"] = [{"name": name, "user": user}]
    data["contexts"][0]["context"]["user"] = name
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(data))
    return path


def _expired_client_cert() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "robot")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=400))
            .not_valid_after(now - dt.timedelta(days=35)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return (base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
            base64.b64encode(key_pem).decode())


def test_expired_client_certificate_names_the_user(lab: Lab, tmp_path: Path) -> None:
    cert, key = _expired_client_cert()
    path = _kubeconfig(lab, tmp_path, {"client-certificate-data": cert, "client-key-data": key}, "cert-robot")
    run, junit = verify(lab, tmp_path, "--set", f"kubernetes.kubeconfig={path}")
    result = run.result("kubernetes.config[lab]")
    assert result["status"] == "fail"
    assert "the client certificate of kubeconfig user 'cert-robot' expired on" in result["message"]
    assert run.statuses()["kubernetes.api.reachable[lab]"] == "blocked"
    assert_no_secret(lab, run, junit, key, base64.b64decode(key).decode().splitlines()[1])


def test_rejected_token_names_the_user(lab: Lab, tmp_path: Path) -> None:
    token = "not-the-lab-token-5f2c9e"  # a wrong credential on purpose
    path = _kubeconfig(lab, tmp_path, {"token": token}, "token-robot")
    run, junit = verify(lab, tmp_path, "--set", f"kubernetes.kubeconfig={path}")
    result = run.result("kubernetes.api.reachable[lab]")
    assert result["status"] == "fail"
    assert "rejected the credentials of kubeconfig user 'token-robot' (401 Unauthorized)" in result["message"]
    assert run.statuses()["kubernetes.config[lab]"] == "pass"
    assert run.statuses()["kubernetes.nodes.ready[lab]"] == "blocked"
    assert_no_secret(lab, run, junit, token)


def test_malformed_kubeconfig_is_one_line_naming_the_file(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: v1\ncontexts: [\n")
    run, _ = verify(lab, tmp_path, "--set", f"kubernetes.kubeconfig={path}")
    result = run.result("kubernetes.config[lab]")
    assert result["status"] == "fail" and result["message"] == f"kubeconfig {path} is not valid YAML (line 3)"


# -- nothing configured, several clusters ---------------------------------------------------------


def test_nothing_configured_skips_in_all_and_fails_when_named(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "KUBECONFIG": ""}
    run = run_verify(["all", "--check", "kubernetes.*"], env=env)
    config = run.result("kubernetes.config[default]")
    assert config["status"] == "skip"
    assert config["message"].startswith("not configured: set kubernetes.kubeconfig (or KUBECONFIG)")
    assert set(run.statuses().values()) == {"skip"} and run.exit_code == 0
    run = run_verify(["kubernetes"], env=env)
    config = run.result("kubernetes.config[default]")
    assert config["status"] == "fail" and "set kubernetes.kubeconfig (or KUBECONFIG)" in config["message"]
    assert run.statuses()["kubernetes.api.reachable[default]"] == "blocked" and run.exit_code == 1


def test_kubeconfig_from_the_environment_is_reported(lab: Lab, tmp_path: Path) -> None:
    config = yaml.safe_load(lab.config_path.read_text())
    del config["kubernetes"]
    path = tmp_path / "mgn.yaml"
    path.write_text(yaml.safe_dump(config))
    kubeconfig = lab.workdir / "kubeconfig.yaml"
    run = run_verify(["kubernetes", "--config", str(path), "--check", "kubernetes.api.reachable"],
                     env={"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)})
    assert f"of {kubeconfig} (from KUBECONFIG)" in run.result("kubernetes.config[lab]")["message"]
    assert run.statuses()["kubernetes.api.reachable[lab]"] == "pass"


def test_two_clusters_one_broken_are_reported_per_cluster(lab: Lab, tmp_path: Path) -> None:
    config = yaml.safe_load(lab.config_path.read_text())
    config["clusters"] = [{"id": "good", "kubeconfig": str(lab.workdir / "kubeconfig.yaml")},
                          {"id": "gone", "kubeconfig": str(tmp_path / "missing.yaml")}]
    path = tmp_path / "mgn.yaml"
    path.write_text(yaml.safe_dump(config))
    run = run_verify(["kubernetes", "--config", str(path), *SAME_CLIENT])
    statuses = run.statuses()
    assert all(statuses[f"{c}[good]"] == "pass" for c in CHECKS)
    assert statuses["kubernetes.config[gone]"] == "fail"
    assert "no kubeconfig found at" in run.result("kubernetes.config[gone]")["message"]
    assert all(statuses[f"{c}[gone]"] == "blocked" for c in CHECKS if c != "kubernetes.config")
    assert run.result("kubernetes.nodes.ready[gone]")["target"] == "gone"


def test_exec_plugin_without_credentials_names_the_user(lab: Lab, tmp_path: Path) -> None:
    plugin = {"apiVersion": "client.authentication.k8s.io/v1", "command": "false", "interactiveMode": "Never"}
    path = _kubeconfig(lab, tmp_path, {"exec": plugin}, "exec-robot")  # type: ignore[dict-item]
    run, _ = verify(lab, tmp_path, "--set", f"kubernetes.kubeconfig={path}", "--check", "kubernetes.config")
    result = run.result("kubernetes.config[lab]")
    assert result["status"] == "fail"
    assert result["message"] == "the exec plugin 'false' of kubeconfig user 'exec-robot' gave no credentials"


def test_connect_registers_the_token_file_as_secret_and_closes(lab: Lab, tmp_path: Path) -> None:
    from mgn_verify.checks._clusters import ClusterTarget, RethinkTarget

    from mgn_verify.clients import kube
    from mgn_verify.testing import make_config

    token_file = tmp_path / "token"
    token_file.write_text(lab.kube_token)
    path = _kubeconfig(lab, tmp_path, {"tokenFile": str(token_file)}, "file-robot")
    config = make_config({})
    target = ClusterTarget(id="lab", kubeconfig=str(path), context=None, origin="config",
                           rethinkdb=RethinkTarget("", 28015, "admin", "", "rethinkdb", "default"))
    conn = kube.connect(target, config=config, timeout=2.0)
    try:
        assert (conn.path, conn.source, conn.context, conn.user) == (path, "kubernetes.kubeconfig", "mgn-lab",
                                                                     "file-robot")
        assert conn.server == lab.kube.url.rstrip("/") and conn.api_client.configuration.verify_ssl is True
        assert lab.kube_token not in config.redactor.text(f"token {lab.kube_token}")
    finally:
        kube.close(conn)


def test_daemonsets_scheduled_nowhere_are_fine_and_names_match_whole_words() -> None:
    from mgn_verify.checks._kube_platform import _named, daemonset_problem

    def ds(name: str, desired: int, ready: int) -> dict[str, object]:
        return {"metadata": {"name": name, "namespace": "kube-system"},
                "status": {"desiredNumberScheduled": desired, "numberReady": ready}}

    assert daemonset_problem(ds("calico-node-windows", 0, 0)) is None  # no Windows node: nothing to run
    assert daemonset_problem(ds("calico-node", 3, 3)) is None
    assert daemonset_problem(ds("calico-node", 3, 1)) == "kube-system/calico-node: 1/3 pods ready"
    assert _named("calico-node-windows", "calico-node") and _named("kube-flannel-ds", "kube-flannel")
    assert not _named("calico-nodes", "calico-node")

"""The guildnet layer end to end: the real ``mgn verify guildnet`` (a subprocess, JSON + JUnit +
console) against the lab's Host App. One single-cluster lab and one two-cluster lab are shared
by the module; faults are cleared around each run."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mgn_verify.lab import Lab
from mgn_verify.testing import VerifyRun, make_config, run_verify

CLUSTER_CHECKS = ("registered", "health", "status", "db_health", "smoke_test")
HOST_CHECKS = ("guildnet.hostapp.reachable", "guildnet.hostapp.certificate", "guildnet.hostapp.api")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture(scope="module")
def lab2() -> Iterator[Lab]:
    with Lab(clusters=("lab", "lab-2")) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> Iterator[None]:
    labs = [request.getfixturevalue(n) for n in ("lab", "lab2") if n in request.fixturenames]
    for each in labs:
        each.clear_all()
    yield
    for each in labs:
        each.clear_all()


@dataclass(frozen=True)
class Run:
    verify: VerifyRun
    junit: str

    @property
    def statuses(self) -> dict[str, str]:
        return self.verify.statuses()

    def result(self, check_id: str) -> dict[str, object]:
        return self.verify.result(check_id)

    def everything(self) -> str:
        return "\n".join((self.verify.stdout, self.verify.stderr, json.dumps(self.verify.report), self.junit))


def verify(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    junit = tmp_path / "junit.xml"
    run = run_verify([*args, "--junit", str(junit), "-v"], env=env)
    assert run.report is not None, run.stderr
    return Run(run, junit.read_text() if junit.exists() else "")


def cluster_ids(cluster: str) -> list[str]:
    return [f"guildnet.cluster.{name}[{cluster}]" for name in CLUSTER_CHECKS]


def test_green_with_the_smoke_test(lab: Lab, tmp_path: Path) -> None:
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path), "--set", "guildnet.smoke_test=true")
    assert run.verify.exit_code == 0, run.verify.stdout
    assert set(run.statuses) == {*HOST_CHECKS, *cluster_ids("lab")}
    assert set(run.statuses.values()) == {"pass"}, run.statuses
    smoke = run.result("guildnet.cluster.smoke_test[lab]")
    assert "Running after" in str(smoke["message"]) and smoke["target"] == "lab"
    name = str(smoke["message"]).split()[1]
    assert not any(r.method == "DELETE" and r.status != 200 for r in lab.hostapp.requests if name in r.path)
    assert any(r.method == "DELETE" and name in r.path for r in lab.hostapp.requests)  # cleaned up
    assert str(run.result("guildnet.hostapp.reachable")["message"]).startswith(lab.hostapp.url)


def test_smoke_test_is_opt_in(lab: Lab, tmp_path: Path) -> None:
    lab.hostapp.clear_requests()
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path))
    assert run.statuses["guildnet.cluster.smoke_test[lab]"] == "skip"
    assert "guildnet.smoke_test=true" in str(run.result("guildnet.cluster.smoke_test[lab]")["message"])
    assert not any(r.method == "POST" for r in lab.hostapp.requests if "/workspaces" in r.path)


# fault -> (the check that catches it, its status, a piece of its message, checks it blocks)
FAULTS = {
    "hostapp.down": ("guildnet.hostapp.reachable", "fail", "connection refused",
                     ["guildnet.hostapp.api", *cluster_ids("lab")]),
    "hostapp.http_500": ("guildnet.hostapp.api", "fail", "HTTP 500 internal_error", cluster_ids("lab")),
    "tls.expired": ("guildnet.hostapp.certificate", "fail", "certificate expired on",
                    ["guildnet.hostapp.api", *cluster_ids("lab")]),
    "hostapp.no_kubeconfig": ("guildnet.cluster.health[lab]", "fail",
                              "attach a kubeconfig: mgn cluster bootstrap --kubeconfig PATH",
                              ["guildnet.cluster.status[lab]", "guildnet.cluster.db_health[lab]",
                               "guildnet.cluster.smoke_test[lab]"]),
    "kubernetes.down": ("guildnet.cluster.health[lab]", "fail", "(cluster_unreachable): Get ",
                        ["guildnet.cluster.status[lab]", "guildnet.cluster.db_health[lab]",
                         "guildnet.cluster.smoke_test[lab]"]),
    # A Workspace needs no database: the smoke test still runs (and passes).
    "rethinkdb.down": ("guildnet.cluster.db_health[lab]", "fail", "connection refused", []),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_caught_and_blocks_its_dependents(lab: Lab, tmp_path: Path, fault: str) -> None:
    check_id, status, message, blocked = FAULTS[fault]
    lab.inject(fault)
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path), "--set", "guildnet.smoke_test=true")
    assert run.verify.exit_code == 1
    result = run.result(check_id)
    assert result["status"] == status, result
    assert message in str(result["message"]), result["message"]
    for dependent in blocked:
        assert run.statuses[dependent] == "blocked", (dependent, run.statuses)
    assert check_id in run.verify.stdout  # named in the console summary


def test_expired_certificate_is_also_why_the_app_is_unreachable(lab: Lab, tmp_path: Path) -> None:
    lab.inject("tls.expired")
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path))
    reachable = run.result("guildnet.hostapp.reachable")
    assert reachable["status"] == "fail" and "certificate has expired" in str(reachable["message"])
    assert run.result("guildnet.cluster.registered[lab]")["blocked_by"] == ["guildnet.hostapp.reachable"]


def test_no_kubeconfig_status_names_the_recommended_action(lab: Lab, tmp_path: Path) -> None:
    lab.inject("hostapp.no_kubeconfig")
    # Waiving the /api/health finding lets /status run too (a waived check blocks nothing).
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path),
                 "--ignore-preflight-errors", "guildnet.cluster.health[lab]")
    assert run.statuses["guildnet.cluster.health[lab]"] == "waived"
    status = run.result("guildnet.cluster.status[lab]")
    assert status["status"] == "fail"
    assert "recommendedAction attach_kubeconfig" in str(status["message"])
    assert run.statuses["guildnet.hostapp.api"] == "pass"


def test_certificate_within_the_margin_warns(lab: Lab, tmp_path: Path) -> None:
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path), "--set", "guildnet.cert_warn_days=5000",
                 "--check", "guildnet.hostapp.*")
    result = run.result("guildnet.hostapp.certificate")
    assert result["status"] == "warn" and "within the 5000-day margin" in str(result["message"])
    assert run.verify.exit_code == 0


def test_wrong_ca_fails_reachable(lab: Lab, tmp_path: Path) -> None:
    from mgn_verify.lab._tls import LabCA

    other = LabCA(tmp_path / "other-pki")
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path), "--set", f"api.ca_bundle={other.ca_path}")
    reachable = run.result("guildnet.hostapp.reachable")
    assert reachable["status"] == "fail"
    assert "TLS verification failed" in str(reachable["message"]) and "api.ca_bundle" in str(reachable["message"])
    assert run.statuses["guildnet.cluster.health[lab]"] == "blocked"
    certificate = run.result("guildnet.hostapp.certificate")  # its fix is the trust anchor, not a renewal
    assert certificate["status"] == "fail" and "set api.ca_bundle" in str(certificate["message"]), certificate


def _port_8090_free() -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", 8090)) != 0


@pytest.mark.skipif(not _port_8090_free(), reason="something listens on 127.0.0.1:8090")
def test_nothing_configured_skips_in_all_and_fails_when_named(tmp_path: Path) -> None:
    run = verify(tmp_path, "all", "--check", "guildnet.*")
    reachable = run.result("guildnet.hostapp.reachable")
    assert reachable["status"] == "skip" and "not configured" in str(reachable["message"])
    assert "api.base_url" in str(reachable["message"])
    assert run.statuses["guildnet.cluster.health[default]"] == "skip" and run.verify.exit_code == 0
    named = verify(tmp_path, "guildnet")
    assert named.result("guildnet.hostapp.reachable")["status"] == "fail"
    assert named.statuses["guildnet.cluster.health[default]"] == "blocked" and named.verify.exit_code == 1


def test_discovered_cluster_gets_its_own_checks(lab: Lab, tmp_path: Path) -> None:
    import httpx

    with httpx.Client(verify=ssl.create_default_context(cafile=str(lab.ca.ca_path))) as http:
        created = http.post(f"{lab.hostapp.url}/api/deploy/clusters", json={"name": "extra"}).json()
        try:
            run = verify(tmp_path, "guildnet", "--config", str(lab.config_path))
        finally:
            http.delete(f"{lab.hostapp.url}/api/deploy/clusters/{created['id']}")
    extra = created["id"]
    assert set(cluster_ids(extra)) <= set(run.statuses)
    assert run.result(f"guildnet.cluster.registered[{extra}]")["status"] == "pass"
    assert run.result(f"guildnet.cluster.registered[{extra}]")["target"] == extra
    health = run.result(f"guildnet.cluster.health[{extra}]")
    assert health["status"] == "fail" and "no_kubeconfig" in str(health["message"])
    assert run.statuses["guildnet.cluster.health[lab]"] == "pass"  # one broken cluster blocks only itself


def test_discovery_asks_once_per_config_and_never_fails(lab: Lab) -> None:
    from mgn_verify.checks._clusters import discovered_cluster_ids

    lab.hostapp.clear_requests()
    # The session behind make_config registers the checks: that is the one time it asks.
    config = make_config({"api.base_url": lab.hostapp.url, "api.ca_bundle": str(lab.ca.ca_path)})
    assert discovered_cluster_ids(config, ["guildnet"]) == ["lab"]
    assert discovered_cluster_ids(config, ["kubernetes"]) == ["lab"]
    assert [r.path for r in lab.hostapp.requests] == ["/api/deploy/clusters"]
    assert discovered_cluster_ids(config, ["system"]) == []  # not a per-cluster layer: not asked
    # A proxy's 502 on the cluster list: /api/health's clusters instead (no retry: one 502).
    lab.hostapp.clear_requests()
    lab.hostapp.inject_transient(502, 1)
    other = make_config({"api.base_url": lab.hostapp.url, "api.ca_bundle": str(lab.ca.ca_path)})
    assert discovered_cluster_ids(other, ["all"]) == ["lab"]
    assert [(r.path, r.status) for r in lab.hostapp.requests] == [("/api/deploy/clusters", 502), ("/api/health", 200)]
    lab.inject("hostapp.down")
    down = make_config({"api.base_url": lab.hostapp.url, "api.ca_bundle": str(lab.ca.ca_path)})
    assert discovered_cluster_ids(down, ["guildnet"]) == []


# -- two clusters -----------------------------------------------------------------------------


def lab_secrets(lab: Lab) -> list[str]:
    found = [lab.api_token, lab.kube_token, lab.rethinkdb_password, lab.headscale.api_key]
    for cluster_id in lab.cluster_ids:
        cluster = lab.cluster(cluster_id)
        found += [cluster.kube_token, cluster.rethinkdb_password]
        assert cluster.kubeconfig_path is not None
        for user in yaml.safe_load(cluster.kubeconfig_path.read_text())["users"]:
            found += [str(v) for k, v in user["user"].items() if k in ("token", "client-key-data", "password")]
    return [s for s in found if s]


def test_two_clusters_one_broken(lab2: Lab, tmp_path: Path) -> None:
    lab2.inject("kubernetes.down", cluster="lab-2")
    run = verify(tmp_path, "guildnet", "--config", str(lab2.config_path))
    s = run.statuses
    assert run.verify.exit_code == 1
    for name in ("registered", "health", "status", "db_health"):
        assert s[f"guildnet.cluster.{name}[lab]"] == "pass", (name, s)
    assert s["guildnet.cluster.registered[lab-2]"] == "pass"
    # /api/health names the problem; /status of the same cluster would only say it again.
    assert s["guildnet.cluster.health[lab-2]"] == "fail" and s["guildnet.cluster.status[lab-2]"] == "blocked"
    assert s["guildnet.cluster.db_health[lab-2]"] == "blocked"
    assert run.result("guildnet.cluster.db_health[lab-2]")["blocked_by"] == ["guildnet.cluster.health[lab-2]"]
    assert "cluster_unreachable" in str(run.result("guildnet.cluster.health[lab-2]")["message"])
    assert run.result("guildnet.cluster.health[lab-2]")["target"] == "lab-2"
    everything = run.everything()
    for secret in lab_secrets(lab2):
        assert secret not in everything


def test_per_cluster_database_fault_and_cluster_narrowing(lab2: Lab, tmp_path: Path) -> None:
    lab2.inject("rethinkdb.down", cluster="lab-2")
    run = verify(tmp_path, "guildnet", "--config", str(lab2.config_path), "--cluster", "lab-2")
    assert run.statuses["guildnet.cluster.db_health[lab-2]"] == "fail"
    assert not any(cid.endswith("[lab]") for cid in run.statuses)  # narrowed to lab-2
    assert lab2.cluster_faults("lab") == frozenset()


def test_no_secret_in_any_output(lab: Lab, tmp_path: Path) -> None:
    lab.inject("hostapp.no_kubeconfig")
    run = verify(tmp_path, "guildnet", "--config", str(lab.config_path), "--set", "guildnet.smoke_test=true")
    assert run.junit and run.verify.report
    everything = run.everything()
    for secret in lab_secrets(lab):
        assert secret not in everything

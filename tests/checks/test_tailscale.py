"""The tailscale layer end to end: the real ``mgn verify tailscale`` (a subprocess) against the
lab's tailscaled (httpx over its Unix socket) and Headscale (real HTTP), one run per scenario."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mgn_verify.lab import Lab
from mgn_verify.testing import VerifyRun, run_verify

TAILSCALED = ["tailscale.key.expiry", "tailscale.backend.running", "tailscale.self.online", "tailscale.health",
              "tailscale.version", "headscale.node.registered", "tailscale.peer.online[guildnet-host]",
              "tailscale.peer.direct[talos-worker-1]"]
LOGGED_OUT = ["tailscale.self.online", "tailscale.health", "headscale.node.registered",
              "tailscale.peer.online[talos-cp-1.guildnet.lab]", "tailscale.peer.direct[guildnet-host]"]
HEADSCALE = ["headscale.api.auth", "headscale.version", "headscale.node.registered",
             "headscale.route[10.96.0.0/12]", "headscale.route[10.244.0.0/16]"]


@dataclass(frozen=True)
class Case:
    check: str
    status: str
    message: str  # a regular expression the check's message must match
    blocks: tuple[str, ...] = ()


CASES: dict[str, Case] = {
    "tailscale.down": Case("tailscale.daemon", "fail", r"no tailscaled socket at .*tailscaled is not running",
                           ("tailscale.key.expiry", "tailscale.backend.running", *TAILSCALED[2:])),
    "tailscale.needs_login": Case(
        "tailscale.backend.running", "fail",
        r"logged out \(BackendState NeedsLogin\).*`headscale nodes register --user <user> --key hskey-authreq-"
        r"[\w-]{24}`, or log in with `tailscale up --login-server=http://127\.0\.0\.1:\d+`", tuple(LOGGED_OUT)),
    "tailscale.key_expired": Case(
        "tailscale.key.expiry", "fail",
        r"node key of mgn-operator expired .*ago\).*`tailscale up --login-server=http://127\.0\.0\.1:\d+ "
        r"--force-reauth`", ("tailscale.backend.running", *LOGGED_OUT)),
    "tailscale.key_expiring": Case("tailscale.key.expiry", "warn",
                                   r"expires .*\(in 3 days\), within tailscale.key_expiry_warn_days=14"),
    "tailscale.stopped": Case("tailscale.backend.running", "fail",
                              r"Tailscale is stopped on mgn-operator \(BackendState Stopped.*run `tailscale up`",
                              tuple(LOGGED_OUT)),
    "tailscale.needs_machine_auth": Case(
        "tailscale.backend.running", "fail",
        r"waits for the tailnet admin's approval \(BackendState NeedsMachineAuth\).*headscale nodes register",
        tuple(LOGGED_OUT)),
    "tailscale.peer_offline": Case("tailscale.peer.online[talos-worker-1]", "fail",
                                   r"talos-worker-1 \(100\.64\.0\.4\) is offline: .*last seen .* ago\)",
                                   ("tailscale.peer.direct[talos-worker-1]",)),
    "tailscale.derp_only": Case("tailscale.peer.direct[talos-cp-1.guildnet.lab]", "warn",
                                r"talos-cp-1 is reached only through the DERP relay region 'fra'"),
    "tailscale.accept_routes_off": Case("tailscale.health", "warn",
                                        r"--accept-routes is false \(fix: `tailscale set --accept-routes`\)"),
    "tailscale.outdated": Case("tailscale.version", "warn", r"tailscaled 1\.74\.1-\S+ is older than .*1\.80\.0"),
    "headscale.down": Case("headscale.reachable", "fail",
                           r"cannot connect to Headscale at http://127\.0\.0\.1:\d+: connection refused",
                           tuple(HEADSCALE)),
    "headscale.db_unavailable": Case("headscale.reachable", "fail", r"HTTP 500 .*database ping failed",
                                     tuple(HEADSCALE)),
    "headscale.api_key_revoked": Case("headscale.api.auth", "fail", r"rejected the API key \(HTTP 401",
                                      ("headscale.node.registered", "headscale.route[10.96.0.0/12]")),
    "headscale.route_disabled": Case(
        "headscale.route[10.244.0.0/16]", "fail",
        r"advertised by talos-cp-1 \(node 3\) but not approved.*`headscale nodes approve-routes --identifier 3 "
        r"--routes 10\.96\.0\.0/12,10\.244\.0\.0/16`"),
}


def verify(lab: Lab, *extra: str) -> VerifyRun:
    return run_verify(["tailscale", "--config", str(lab.config_path), *extra])


def test_every_tailscale_and_headscale_fault_has_a_case() -> None:
    from mgn_verify.lab.headscale import HeadscaleSimulator
    from mgn_verify.lab.tailscale import TailscaleSimulator

    assert set(CASES) == {*TailscaleSimulator.FAULTS, *HeadscaleSimulator.FAULTS}


def test_healthy_lab_is_green(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session, "-v")
    statuses = run.statuses()
    assert run.exit_code == 0, run.stdout
    assert set(statuses.values()) == {"pass"}, {k: v for k, v in statuses.items() if v != "pass"}
    assert len(statuses) == 18
    assert run.result("headscale.node.registered")["message"] == (
        "mgn-operator (Headscale node 1, user guildnet) is registered and online")
    assert run.result("tailscale.self.online")["message"] == "mgn-operator is online as 100.64.0.1, fd7a:115c:a1e0::1"
    assert run.result("tailscale.peer.direct[talos-cp-1.guildnet.lab]")["message"] == (
        "talos-cp-1 is reached directly at 192.0.2.13:41641")
    assert run.result("headscale.route[10.244.0.0/16]")["message"] == (
        "10.244.0.0/16 is advertised, approved and served by talos-cp-1")
    assert re.fullmatch(r"the node key of mgn-operator expires .* \(in 150 days\)",
                        run.result("tailscale.key.expiry")["message"])
    for result in run.report["results"] if run.report else []:
        assert result["layer"] == "tailscale", result["id"]


@pytest.mark.parametrize("fault", sorted(CASES))
def test_fault_is_caught_by_its_check(mgn_lab_session: Lab, fault: str) -> None:
    case = CASES[fault]
    mgn_lab_session.inject(fault)
    run = verify(mgn_lab_session)
    result = run.result(case.check)
    assert result["status"] == case.status, result
    assert re.search(case.message, result["message"]), result["message"]
    assert result["remediation"]
    statuses = run.statuses()
    for blocked in case.blocks:
        assert statuses[blocked] == "blocked", (blocked, statuses[blocked])
        assert run.result(blocked)["blocked_by"] == [case.check]
    others = {cid: s for cid, s in statuses.items() if cid != case.check and cid not in case.blocks}
    assert set(others.values()) <= {"pass", "blocked"}, others
    assert run.report is not None
    causes = [cause["id"] for cause in run.report["summary"]["root_causes"]]
    # Every fail is a root cause (blocking something or not); a warning is not.
    assert causes == ([case.check] if case.status in ("fail", "error") else [])
    assert run.exit_code == (1 if case.status == "fail" else 0)
    if case.blocks:
        assert f"{case.check} (fail) blocks" in run.stdout


def test_the_headscale_key_never_shows(mgn_lab_session: Lab, tmp_path: Path) -> None:
    key = mgn_lab_session.headscale.api_key
    junit = tmp_path / "report.xml"
    outputs = []
    for fault in (None, "headscale.api_key_revoked"):
        if fault:
            mgn_lab_session.inject(fault)
        run = verify(mgn_lab_session, "-v", "--junit", str(junit))
        outputs += [run.stdout, run.stderr, str(run.report), junit.read_text()]
    explain = subprocess.run([sys.executable, "-m", "mgn_verify", "verify", "explain", "headscale.api.auth",
                              "--config", str(mgn_lab_session.config_path)], capture_output=True, text=True,
                             env={**os.environ, "MGN_CONFIG": os.devnull}, timeout=60)
    assert explain.returncode == 0 and 'headscale.api_key = "***"' in explain.stdout
    outputs += [explain.stdout, explain.stderr]
    assert all(key not in text for text in outputs)
    secret = key.rsplit("-", 1)[1]
    assert all(secret not in text for text in outputs)


def test_nothing_configured_skips_in_all_and_fails_when_named(tmp_path: Path) -> None:
    if os.path.exists("/var/run/tailscale/tailscaled.sock"):
        pytest.skip("a real tailscaled listens here")
    checks = ["--check", "tailscale.daemon", "--check", "headscale.reachable"]
    everything = run_verify(["all", *checks])
    assert everything.result("tailscale.daemon")["status"] == "skip"
    assert everything.result("tailscale.daemon")["message"].startswith("not configured: set tailscale.socket")
    assert everything.result("headscale.reachable")["message"] == (
        "not configured: set headscale.url (no Headscale URL configured)")
    assert everything.exit_code == 0
    named = run_verify(["tailscale", *checks])
    assert named.result("tailscale.daemon")["status"] == "fail"
    assert named.result("headscale.reachable")["message"] == "no Headscale URL configured: set headscale.url"
    assert named.exit_code == 1
    # A socket named explicitly and missing is a failure even in a run of everything.
    missing = str(tmp_path / "nope.sock")
    explicit = run_verify(["all", *checks, "--set", f"tailscale.socket={missing}"])
    assert explicit.result("tailscale.daemon")["status"] == "fail"
    assert missing in explicit.result("tailscale.daemon")["message"]


def test_no_expected_peers_or_routes_skip_with_the_setting_named(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session, "--set", "tailscale.expected_peers=[]", "--set", "headscale.expected_routes=[]")
    assert run.result("tailscale.peer.online")["message"] == "tailscale.expected_peers is empty: nothing configured"
    assert run.result("headscale.route")["message"] == "headscale.expected_routes is empty: nothing configured"
    assert run.exit_code == 0


def test_an_unknown_peer_and_an_unadvertised_route_are_named(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session, "--set", 'tailscale.expected_peers=["ghost", "100.64.0.2"]',
                 "--set", 'headscale.expected_routes=["192.168.50.0/24"]')
    assert run.result("tailscale.peer.online[ghost]")["message"] == (
        "ghost is not a peer of this node (peers: guildnet-host, talos-cp-1, talos-worker-1)")
    assert run.result("tailscale.peer.online[100.64.0.2]")["status"] == "pass"
    route = run.result("headscale.route[192.168.50.0/24]")
    assert route["status"] == "fail"
    assert "no node advertises 192.168.50.0/24" in route["message"]

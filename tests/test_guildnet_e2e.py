"""End to end: the real ``mgn verify`` against the lab, all six layers, every fault.

One lab is shared by the module (faults are injected and cleared around each run); each run is
the real CLI in a subprocess with a JSON report, a JUnit report and the console on stdout.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mgn_verify.lab import Lab, known_faults
from mgn_verify.testing import VerifyRun, run_verify
from tests.guildnet_faults import EXPECTED, Expectation

LAYERS = ("system", "network", "kubernetes", "tailscale", "rethinkdb", "guildnet")


@dataclass(frozen=True)
class FullRun:
    verify: VerifyRun
    junit: str

    @property
    def statuses(self) -> dict[str, str]:
        return self.verify.statuses()

    def everything(self) -> str:
        return "\n".join((self.verify.stdout, self.verify.stderr, json.dumps(self.verify.report), self.junit))


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    lab.clear_all()
    yield lab
    lab.clear_all()


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verify(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> FullRun:
    junit = tmp_path / "junit.xml"
    run = run_verify([*args, "--junit", str(junit)], env=env)
    return FullRun(run, junit.read_text() if junit.exists() else "")


def lab_secrets(lab: Lab) -> list[str]:
    """Every credential the lab config holds or points at."""
    config = yaml.safe_load(lab.config_path.read_text())
    kubeconfig = yaml.safe_load(Path(config["kubernetes"]["kubeconfig"]).read_text())
    users = [entry["user"] for entry in kubeconfig.get("users", [])]
    from_kubeconfig = [str(value) for user in users for key, value in user.items()
                       if key in ("token", "client-key-data", "password")]
    found = [lab.api_token, lab.kube_token, lab.rethinkdb_password, lab.headscale.api_key, *from_kubeconfig]
    return [secret for secret in found if secret]


def test_all_six_layers_are_green_against_the_lab(clean_lab: Lab, tmp_path: Path) -> None:
    run = verify(tmp_path, "all", "--config", str(clean_lab.config_path))
    statuses = run.statuses
    assert run.verify.exit_code == 0, run.verify.stdout[-3000:]
    by_layer = {layer: [cid for cid in statuses if cid.split(".", 1)[0] == layer] for layer in LAYERS}
    for layer in ("kubernetes", "tailscale", "rethinkdb", "guildnet"):
        assert len(by_layer[layer]) >= 6, (layer, by_layer[layer])
        ran = [cid for cid in by_layer[layer] if statuses[cid] in ("pass", "warn")]
        assert ran, f"nothing of {layer} ran: {[(c, statuses[c]) for c in by_layer[layer]]}"
    bad = {cid: status for cid, status in statuses.items() if status in ("fail", "error", "blocked")}
    assert not bad, bad
    # The per-cluster checks carry the cluster as their target.
    assert statuses["kubernetes.api.reachable[lab]"] == "pass"
    assert run.verify.result("kubernetes.nodes.ready[lab]")["target"] == "lab"


def test_no_secret_of_the_lab_appears_in_console_json_or_junit(clean_lab: Lab, tmp_path: Path) -> None:
    clean_lab.inject("rethinkdb.bad_password")  # a failing login is where a password likes to leak
    run = verify(tmp_path, "all", "--config", str(clean_lab.config_path), "-v")
    text = run.everything()
    assert run.junit and run.verify.report is not None
    for secret in lab_secrets(clean_lab):
        assert secret not in text


@pytest.mark.parametrize("fault", sorted(known_faults()))
def test_each_fault_is_caught_by_its_layer(clean_lab: Lab, fault: str, tmp_path: Path) -> None:
    expectation = EXPECTED[fault]
    clean_lab.inject(fault)
    run = verify(tmp_path, *expectation.layers, "--config", str(clean_lab.config_path))
    check_expectation(run, expectation)


def check_expectation(run: FullRun, expectation: Expectation) -> None:
    statuses = run.statuses
    result = run.verify.result(expectation.check)
    assert result["status"] in expectation.statuses, (expectation.check, result["status"], result["message"])
    if expectation.message:
        assert re.search(expectation.message, result["message"]), result["message"]
    report: dict[str, Any] = run.verify.report or {}
    roots = {root["id"]: root for root in report["summary"]["root_causes"]}
    if result["status"] in ("fail", "error"):
        assert expectation.check in roots, (expectation.check, list(roots))
        blocked = [cid for cid, status in statuses.items() if status == "blocked"]
        for cid in blocked:  # whatever is blocked names a root cause, never a symptom
            assert set(run.verify.result(cid)["blocked_by"]) <= set(roots), cid
        for dependent in expectation.blocks:
            assert statuses[dependent] == "blocked", (dependent, statuses[dependent])
            assert expectation.check in run.verify.result(dependent)["blocked_by"]
    assert run.verify.exit_code == expectation.exit_code, (run.verify.exit_code, run.verify.stdout[-2000:])


def test_every_lab_fault_has_an_expectation() -> None:
    assert set(EXPECTED) == set(known_faults())


def test_verify_all_lab_is_the_one_command_demonstration(tmp_path: Path) -> None:
    run = verify(tmp_path, "all", "--lab", "--fault", "rethinkdb.down")
    assert run.verify.exit_code == 1
    assert run.statuses["rethinkdb.reachable[lab]"] == "fail"
    assert "mgn: lab started with faults rethinkdb.down" in run.verify.stderr
    config = re.search(r"config (\S+mgn-lab\.yaml)", run.verify.stderr)
    assert config and not os.path.exists(config.group(1))  # the lab is gone after the run
    bad = run_verify(["all", "--lab", "--fault", "rethinkdb.dwon"])
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "mgn: error: unknown fault 'rethinkdb.dwon' (did you mean 'rethinkdb.down'?)")


def _defaults_are_free() -> bool:
    import socket

    for port in (8090, 28015):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return not os.path.exists("/var/run/tailscale/tailscaled.sock")


@pytest.mark.skipif(not _defaults_are_free(), reason="a GuildNet component listens at a default location here")
def test_nothing_configured_skips_in_all_and_fails_when_named(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "KUBECONFIG": ""}  # no config file, no kubeconfig anywhere
    named = verify(tmp_path, "kubernetes", "tailscale", "rethinkdb", "guildnet", env=env)
    assert named.verify.exit_code == 1  # named explicitly: a missing target is a failure
    failed = sorted(cid for cid, status in named.statuses.items() if status == "fail")
    # One root cause per component (and cluster), everything else blocked or skipped.
    assert failed == ["guildnet.hostapp.reachable", "headscale.reachable", "kubernetes.config[default]",
                      "rethinkdb.reachable[default]", "tailscale.daemon"], failed
    assert "not configured" not in named.verify.result("kubernetes.config[default]")["message"]
    everything = verify(tmp_path, "all", "-p", "no:system", "-p", "no:network", env=env)
    assert everything.verify.exit_code == 0, everything.verify.stdout[-2000:]
    results = (everything.verify.report or {})["results"]
    assert {r["status"] for r in results} == {"skip"}
    messages = {r["id"]: r["message"] for r in results}
    assert messages["kubernetes.config[default]"].startswith("not configured: set kubernetes.kubeconfig")


def test_lab_and_config_do_not_mix() -> None:
    run = run_verify(["all", "--lab", "--config", "/dev/null"])
    assert run.exit_code == 2 and "--lab brings its own config" in run.stderr
    assert run_verify(["all", "--fault", "rethinkdb.down"]).stderr.startswith("mgn: error: --fault needs --lab")

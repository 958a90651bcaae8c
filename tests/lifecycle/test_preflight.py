"""run_preflight against the lab: pass, refuse (exit codes, JSON report, no mutation), audited
overrides, checks that cannot be waived, an audit log that cannot be written, no secret logged."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mgn_verify.lab import Lab
from mgn_verify.lifecycle.context import CommandContext
from mgn_verify.lifecycle.preflight import Preflight, PreflightOutcome, run_preflight
from tests.helpers import REPO, REPORT_SCHEMA, statuses, wait_for_file

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def faults(lab: Lab) -> Iterator[Any]:
    """``faults("kubernetes.readyz_failing")``: injected for this test only."""
    injected: list[str] = []

    def inject(*names: str) -> None:
        for name in names:
            lab.inject(name)
            injected.append(name)

    yield inject
    for name in injected:
        lab.clear(name)


def preflight(lab: Lab, tmp_path: Path, *, config: Path | None = None, argv: tuple[str, ...] = (),
              settings: dict[str, Any] | None = None, **fields: Any) -> PreflightOutcome:
    """Run the workspace.create gate for ``lab`` (fields override), with a JSON report."""
    ctx = CommandContext(str(config or lab.config_path), {k: (v, False) for k, v in (settings or {}).items()},
                         argv=["mgn", "workspace", "create", "lab", *argv])
    request = {"gate": "workspace.create", "clusters": ("lab",), "command": "workspace create",
               "json_path": str(tmp_path / "preflight.json"), **fields}
    return run_preflight(Preflight(**request), ctx)


def report(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "preflight.json").read_text())
    jsonschema.validate(data, json.loads(REPORT_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())
    return data


def audit_lines(home: Path) -> list[dict[str, Any]]:
    path = home / ".metaguildnet" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def mutations(lab: Lab, since: int) -> list[Any]:
    return [r for r in lab.hostapp_requests[since:] if r.method in MUTATING]


def test_a_passing_gate_proceeds_with_a_one_line_verdict(lab: Lab, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = len(lab.hostapp_requests)
    outcome = preflight(lab, tmp_path)
    assert (outcome.proceed, outcome.exit_code, outcome.overrides) == (True, 0, [])
    err = capsys.readouterr().err.strip()
    assert err.startswith("preflight workspace.create [lab]: ") and "checks passed" in err
    assert len(err.splitlines()) == 1, err
    data = report(tmp_path)
    assert data["schema_version"] == "1.2"
    assert data["gate"] == {"name": "workspace.create", "command": "workspace create", "clusters": ["lab"],
                            "decision": "proceed", "overrides": [], "reason": "", "audit_path": None,
                            "removed": [], "notes": []}
    ids = set(statuses(data))
    assert {"guildnet.hostapp.reachable", "guildnet.cluster.status[lab]", "kubernetes.crds[lab]",
            "kubernetes.operator[lab]", "kubernetes.nodes.ready[lab]"} <= ids
    assert "kubernetes.config[lab]" in ids  # a dependency of the members runs too
    assert not any(i.startswith(("system.", "network.", "rethinkdb.")) for i in ids)
    assert mutations(lab, before) == []


@pytest.mark.parametrize(("fault", "root"), [("kubernetes.readyz_failing", "kubernetes.api.livez[lab]"),
                                             ("hostapp.no_kubeconfig", "guildnet.cluster.health[lab]")])
def test_a_failing_check_refuses_with_exit_1_and_the_report_first(
        lab: Lab, tmp_path: Path, faults: Any, capsys: pytest.CaptureFixture[str], fault: str, root: str) -> None:
    faults(fault)
    before = len(lab.hostapp_requests)
    outcome = preflight(lab, tmp_path)
    assert (outcome.proceed, outcome.exit_code) == (False, 1)
    err = capsys.readouterr().err
    assert err.startswith("preflight workspace.create [lab]: root causes (fix these first):")
    assert root in err.splitlines()[1] and "fix:" in err.splitlines()[2]
    assert "Summary:" in err  # the full console report follows
    assert "refused" in err.strip().splitlines()[-1]
    data = report(tmp_path)
    assert data["gate"]["decision"] == "refuse" and data["summary"]["exit_code"] == 1
    assert data["results"] and statuses(data)[root] == "fail"
    assert mutations(lab, before) == []
    assert audit_lines(tmp_path / "home") == []


def test_an_override_with_a_reason_proceeds_and_is_audited(lab: Lab, tmp_path: Path, faults: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    faults("kubernetes.readyz_failing")
    outcome = preflight(lab, tmp_path, ignore=("kubernetes.api.*", "kubernetes.crds", "kubernetes.nodes.ready",
                                               "kubernetes.operator"), reason="OPS-42 etcd maintenance")
    assert (outcome.proceed, outcome.exit_code) == (True, 0)
    waived = {o["id"] for o in outcome.overrides}
    assert {"kubernetes.api.livez[lab]", "kubernetes.api.readyz[lab]"} <= waived
    err = capsys.readouterr().err
    assert "~ kubernetes.api.readyz[lab]" in err or "[waived]" in err  # the full report is shown
    assert "without --reason" not in err
    [line] = audit_lines(tmp_path / "home")
    assert line["gate"] == "workspace.create" and line["clusters"] == ["lab"]
    assert line["command"] == "workspace create" and line["decision"] == "proceed"
    assert line["reason"] == "OPS-42 etcd maintenance" and line["user"] and line["host"]
    assert line["time"].endswith("Z") and line["argv"][:3] == ["mgn", "workspace", "create"]
    livez = next(o for o in line["overrides"] if o["id"] == "kubernetes.api.livez[lab]")
    assert livez["status"] == "fail" and "500" in livez["message"]
    path = tmp_path / "home" / ".metaguildnet" / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = report(tmp_path)
    assert data["gate"]["decision"] == "proceed" and data["gate"]["audit_path"] == str(path)
    assert {o["id"] for o in data["gate"]["overrides"]} == waived
    assert statuses(data)["kubernetes.api.readyz[lab]"] == "waived"
    assert "OPS-42" in next(r for r in data["results"] if r["id"] == "kubernetes.api.readyz[lab]")["message"]


def test_an_override_without_reason_warns_and_a_second_one_appends(lab: Lab, tmp_path: Path, faults: Any,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    faults("hostapp.no_kubeconfig")
    for _ in range(2):
        assert preflight(lab, tmp_path, ignore=("all",)).proceed
    assert "without --reason" in capsys.readouterr().err
    assert len(audit_lines(tmp_path / "home")) == 2


def test_a_dry_run_records_nothing_in_the_audit_log(lab: Lab, tmp_path: Path, faults: Any) -> None:
    faults("hostapp.no_kubeconfig")
    outcome = preflight(lab, tmp_path, ignore=("all",), reason="try", dry_run=True)
    assert (outcome.proceed, outcome.exit_code, outcome.audit_path) == (True, 0, None)
    assert report(tmp_path)["gate"]["decision"] == "dry_run"
    assert report(tmp_path)["gate"]["overrides"]
    assert audit_lines(tmp_path / "home") == []


def test_a_check_that_is_not_waivable_refuses_even_with_all(lab: Lab, tmp_path: Path, faults: Any,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    faults("kubernetes.down")
    outcome = preflight(lab, tmp_path, ignore=("all",), reason="I insist")
    assert (outcome.proceed, outcome.exit_code) == (False, 1)
    data = report(tmp_path)
    reachable = next(r for r in data["results"] if r["id"] == "kubernetes.api.reachable[lab]")
    assert reachable["status"] == "fail" and "not waivable" in reachable["message"]
    assert data["gate"]["decision"] == "refuse"
    assert "not waivable" in capsys.readouterr().err
    assert audit_lines(tmp_path / "home") == []


def test_an_unwritable_audit_log_refuses_the_override_with_exit_2(lab: Lab, tmp_path: Path, faults: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    faults("hostapp.no_kubeconfig")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    outcome = preflight(lab, tmp_path, ignore=("all",), reason="r",
                        settings={"audit.path": str(blocker / "audit.jsonl")})
    assert (outcome.proceed, outcome.exit_code) == (False, 2)
    err = capsys.readouterr().err
    assert "cannot write the audit log" in err and "the override is refused" in err
    data = report(tmp_path)
    assert data["gate"]["decision"] == "refuse" and data["summary"]["exit_code"] == 2
    assert any("audit log" in e for e in data["summary"]["errors"])


def test_the_audit_line_carries_no_secret(lab: Lab, tmp_path: Path) -> None:
    """A failing check whose message quotes the token, a token and a password in argv: the
    audit line (and the report) show neither."""
    token = yaml.safe_load(lab.config_path.read_text())["api"]["token"]
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "check_leaky.py").write_text(textwrap.dedent("""
        from mgn_verify import check

        @check(id="leaky.token", gates=["workspace.create"])
        def check_token(config):
            assert False, "the Host App refused token " + config["api.token"]
    """))
    data = yaml.safe_load(lab.config_path.read_text())
    data["verify"] = {"checks_dirs": [str(checks)]}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    outcome = preflight(lab, tmp_path, config=config, ignore=("leaky.*",), reason="demo",
                        argv=("--set", f"api.token={token}", "--env", "DB_PASSWORD=hunter22", "--token", token))
    assert outcome.proceed, outcome
    text = (tmp_path / "home" / ".metaguildnet" / "audit.jsonl").read_text()
    assert token not in text and "hunter22" not in text
    [line] = [json.loads(raw) for raw in text.splitlines()]
    assert line["overrides"][0]["id"] == "leaky.token" and "***" in line["overrides"][0]["message"]
    assert token not in (tmp_path / "preflight.json").read_text()
    assert "hunter22" not in (tmp_path / "preflight.json").read_text()


def test_an_unknown_gate_is_a_usage_error(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = preflight(lab, tmp_path, gate="workspace.creat")
    assert (outcome.proceed, outcome.exit_code) == (False, 2)
    err = capsys.readouterr().err.strip()
    assert err == ("mgn: error: unknown gate 'workspace.creat' (did you mean 'workspace.create'?); known gates: "
                   "install, cluster.bootstrap, cluster.apply, cluster.delete, workspace.create, workspace.delete, "
                   "federation.deploy")
    assert report(tmp_path)["summary"]["errors"] and os.path.exists(tmp_path / "preflight.json")


def test_an_unknown_target_cluster_is_gated_through_the_host_app(lab: Lab, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    outcome = preflight(lab, tmp_path, clusters=("nowhere",))
    assert (outcome.proceed, outcome.exit_code) == (False, 1)  # refused by the gate, not a usage error
    err = capsys.readouterr().err
    assert "not a known cluster" not in err and "cluster 'nowhere' is not registered in the Host App" in err
    data = report(tmp_path)
    assert data["gate"]["decision"] == "refuse"
    assert statuses(data)["guildnet.cluster.registered[nowhere]"] == "fail"


def test_ctrl_c_during_the_preflight_exits_130_with_the_report_written(lab: Lab, tmp_path: Path) -> None:
    started = tmp_path / "started"
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "check_slow.py").write_text(textwrap.dedent(f"""
        import pathlib, time
        from mgn_verify import check

        @check(id="slow.gate", gates=["workspace.create"], timeout=60)
        def check_slow():
            pathlib.Path({str(started)!r}).write_text("")
            time.sleep(60)
    """))
    data = yaml.safe_load(lab.config_path.read_text())
    data["verify"] = {"checks_dirs": [str(checks)]}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    script = ("import sys\n"
              "from mgn_verify.lifecycle.context import CommandContext\n"
              "from mgn_verify.lifecycle.preflight import Preflight, run_preflight\n"
              "ctx = CommandContext(sys.argv[1], {}, argv=['mgn', 'workspace', 'create'])\n"
              "o = run_preflight(Preflight(gate='workspace.create', clusters=('lab',), command='workspace create',"
              " json_path=sys.argv[2]), ctx)\n"
              "sys.exit(o.exit_code)\n")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "MGN_CONFIG": os.devnull}
    proc = subprocess.Popen([sys.executable, "-c", script, str(config), str(tmp_path / "preflight.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    wait_for_file(started, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    data = report(tmp_path)
    assert data["run"]["interrupted"] and data["gate"]["decision"] == "refuse"

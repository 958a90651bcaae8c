"""``mgn workspace …`` against the lab: the Host App's request log and the Kubernetes simulator
are the witnesses (a Workspace resource appears, and goes; nothing is sent when refused)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mgn_verify.cli import cli
from mgn_verify.lab import Lab
from tests.helpers import REPO, Run
from tests.lifecycle.helpers import mgn

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """One healthy lab for the tests that do not inject faults (unique workspace names each)."""
    with Lab() as running:
        # Quicker operator: tests poll with a deadline, they never sleep a fixed time.
        running.kube.state.operator.pending_delay = 0.05
        running.kube.state.operator.running_delay = 0.3
        # Load the checks once here, not in the first test (a gated command's first run imports them).
        mgn(running, "workspace", "create", "lab", "--name", "warm-up", "--image", "nginx", "--dry-run")
        yield running


def mutations(lab: Lab, since: int) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in lab.hostapp_requests[since:] if r.method in MUTATING]


def workspace_cr(lab: Lab, name: str) -> dict[str, Any] | None:
    state = lab.kube.state
    found = [w for w in state.list(state.rtype("guildnet.io", "workspaces"), "default")
             if w["metadata"]["name"] == name]
    return found[0] if found else None


def test_create_wait_get_list_logs_delete(lab: Lab) -> None:
    before = len(lab.hostapp_requests)
    created = mgn(lab, "workspace", "create", "lab", "--name", "life", "--image", "nginx:1.27",
                  "--env", "MODE=dev", "--port", "8080", "--label", "team=a")
    assert created.exit_code == 0, created.stderr
    assert created.stdout.split("\n")[1].split() == ["life", "lab", "pending"]
    assert mutations(lab, before) == [("POST", "/api/cluster/lab/workspaces", 202)]
    cr = workspace_cr(lab, "life")
    assert cr is not None and cr["spec"]["image"] == "nginx:1.27"
    assert cr["spec"]["ports"] == [{"containerPort": 8080}]

    waited = mgn(lab, "workspace", "wait", "lab", "life", "--timeout", "20s", "--interval", "0.05s")
    assert waited.exit_code == 0, waited.stderr
    assert "is Running (1 ready)" in waited.stdout
    assert "waiting for workspace life:" in waited.stderr  # progress goes to stderr

    got = mgn(lab, "workspace", "get", "lab", "life", "-o", "json")
    assert got.exit_code == 0 and '"status":"Running"' in got.stdout  # what canary.sh greps
    view = json.loads(got.stdout)
    assert view["readyReplicas"] == 1 and view["resource"]["kind"] == "Workspace"
    assert view["serviceDNS"] == "life.default.svc"

    listed = mgn(lab, "workspace", "list", "lab", "-o", "json")
    assert {"name": "life", "status": "running"}.items() <= next(
        s for s in json.loads(listed.stdout) if s["name"] == "life").items()
    table = mgn(lab, "workspace", "list", "lab")
    assert any(line.split()[:3] == ["life", "nginx:1.27", "Running"] for line in table.stdout.splitlines())

    logs = mgn(lab, "workspace", "logs", "lab", "life", "--tail", "1")
    assert logs.exit_code == 0 and logs.stdout.count("\n") == 1 and "HTTP server listening" in logs.stdout

    before = len(lab.hostapp_requests)
    deleted = mgn(lab, "workspace", "delete", "lab", "life")
    assert deleted.exit_code == 0, deleted.stderr
    assert mutations(lab, before) == [("DELETE", "/api/cluster/lab/workspaces/life", 200)]
    assert workspace_cr(lab, "life") is None


def test_an_existing_name_is_refused_without_a_second_post(lab: Lab) -> None:
    assert mgn(lab, "workspace", "create", "lab", "--name", "twice", "--image", "nginx").exit_code == 0
    before = len(lab.hostapp_requests)
    again = mgn(lab, "workspace", "create", "lab", "--name", "twice", "--image", "nginx")
    assert again.exit_code == 1
    assert again.stderr.strip().splitlines()[-1] == "mgn: error: workspace 'twice' already exists on cluster 'lab'"
    assert mutations(lab, before) == []


def test_dry_run_prints_the_request_with_secrets_redacted_and_sends_nothing(lab: Lab) -> None:
    before = len(lab.hostapp_requests)
    run = mgn(lab, "workspace", "create", "lab", "--name", "dry", "--image", "nginx", "--env", "DB_PASSWORD=hunter2",
              "--env", "TOKEN_X=" + lab.api_token, "--port", "80", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("would POST /api/cluster/lab/workspaces {")
    body = json.loads(run.stdout.split(" ", 3)[3])
    assert body["env"] == [{"name": "DB_PASSWORD", "value": "***"}, {"name": "TOKEN_X", "value": "***"}]
    assert body["ports"] == [{"containerPort": 80}]
    assert "hunter2" not in run.stdout + run.stderr and lab.api_token not in run.stdout + run.stderr
    assert mutations(lab, before) == [] and workspace_cr(lab, "dry") is None


def test_missing_workspaces_are_one_line_errors_exit_1(lab: Lab) -> None:
    for args in (("get", "lab", "ghost"), ("delete", "lab", "ghost"), ("logs", "lab", "ghost")):
        run = mgn(lab, "workspace", *args)
        assert run.exit_code == 1, (args, run.stderr)
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith("mgn: error: workspace 'ghost'") and "not found" in last, last
        assert "Traceback" not in run.stderr


def test_wait_times_out_with_the_last_phase(lab: Lab) -> None:
    run = mgn(lab, "workspace", "wait", "lab", "ghost", "--timeout", "0.3s", "--interval", "0.1s")
    assert run.exit_code == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "mgn: error: workspace 'ghost' on cluster 'lab' is not ready after 0.3 s (last phase: not found)")


def test_usage_errors_exit_2(lab: Lab) -> None:
    bad_env = mgn(lab, "workspace", "create", "lab", "--name", "x", "--image", "nginx", "--env", "NOEQUALS")
    assert bad_env.exit_code == 2 and "--env: 'NOEQUALS' is not KEY=VALUE" in bad_env.stderr
    bad_timeout = mgn(lab, "workspace", "wait", "lab", "x", "--timeout", "soon")
    assert bad_timeout.exit_code == 2 and "invalid duration 'soon'" in bad_timeout.stderr


def test_a_host_app_refusing_a_non_loopback_peer_is_one_line_exit_5(lab: Lab) -> None:
    lab.hostapp.simulate_remote_peer = True  # every peer looks like a tailnet address: 401
    try:
        run = mgn(lab, "workspace", "create", "lab", "--name", "remote", "--image", "nginx")
    finally:
        lab.hostapp.simulate_remote_peer = False
    assert run.exit_code == 5
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("mgn: error: POST /api/cluster/lab/workspaces: HTTP 401") and "loopback" in last
    assert workspace_cr(lab, "remote") is None


def test_help_documents_the_exit_codes() -> None:
    for command in ("create", "delete", "list", "get", "logs", "wait", "test"):
        result = CliRunner().invoke(cli, ["workspace", command, "--help"])
        assert result.exit_code == 0
        assert "Exit codes:" in result.stdout and "130" in result.stdout, command


def test_http_check_through_the_host_app_proxy(lab: Lab) -> None:
    assert mgn(lab, "workspace", "create", "lab", "--name", "web", "--image", "nginx", "--port", "8080").exit_code == 0
    assert mgn(lab, "workspace", "wait", "lab", "web", "--timeout", "20s", "--interval", "0.05s").exit_code == 0
    ok = mgn(lab, "workspace", "test", "lab", "web", "--http-check", "/", "--retries", "3", "--interval", "0.1s")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() == "ok   / -> HTTP 200"
    assert any(r.path.startswith("/api/cluster/lab/proxy/server/web/") for r in lab.hostapp_requests)
    wrong = mgn(lab, "workspace", "test", "lab", "web", "--http-check", "/", "--expected-status", "204",
                "--retries", "0")
    assert wrong.exit_code == 1
    assert wrong.stdout.strip() == "FAIL / -> HTTP 200 (expected 204)"


# -- with faults: a lab of their own ---------------------------------------------------------------


def _run_json(lab: Lab, tmp_path: Path, *args: str) -> tuple[Run, dict[str, Any] | None]:
    report = tmp_path / "preflight.json"
    run = mgn(lab, *args, "--json", str(report))
    return run, json.loads(report.read_text()) if report.exists() else None


@pytest.mark.parametrize("fault", ["hostapp.no_kubeconfig", "kubernetes.down", "kubernetes.node_not_ready"])
def test_create_is_refused_and_sends_nothing(mgn_lab: Lab, tmp_path: Path, fault: str) -> None:
    mgn_lab.inject(fault)
    before = len(mgn_lab.hostapp_requests)
    run, report = _run_json(mgn_lab, tmp_path, "workspace", "create", "lab", "--name", "nope", "--image", "nginx")
    assert run.exit_code in (1, 3), run.stderr
    assert mutations(mgn_lab, before) == []
    assert report is not None and report["summary"]["counts"].get("fail", 0) + \
        report["summary"]["counts"].get("error", 0) > 0
    assert workspace_cr(mgn_lab, "nope") is None


def test_an_ignored_failure_proceeds(mgn_lab: Lab) -> None:
    mgn_lab.inject("kubernetes.node_not_ready")
    run = mgn(mgn_lab, "workspace", "create", "lab", "--name", "anyway", "--image", "nginx",
              "--ignore-preflight-errors=all", "--reason", "OPS-42")
    assert run.exit_code == 0, run.stderr
    assert workspace_cr(mgn_lab, "anyway") is not None


def test_wait_honours_its_timeout_while_the_operator_is_down(mgn_lab: Lab) -> None:
    assert mgn(mgn_lab, "workspace", "create", "lab", "--name", "stuck", "--image", "nginx").exit_code == 0
    mgn_lab.inject("kubernetes.operator_down")
    run = mgn(mgn_lab, "workspace", "wait", "lab", "stuck", "--timeout", "1s", "--interval", "0.1s")
    assert run.exit_code == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("mgn: error: workspace 'stuck' on cluster 'lab' is not ready after 1 s (last phase: ")
    assert "Running" not in last


def test_ctrl_c_while_waiting_exits_130(lab: Lab, tmp_path: Path) -> None:
    env = {**os.environ, "MGN_CONFIG": os.devnull, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "workspace", "wait", "lab", "never",
                             "--timeout", "60s", "--interval", "0.1s", "--config", str(lab.config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the first poll was reported
        assert first.startswith("waiting for workspace never: not found"), first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert "mgn: interrupted" in err and "Traceback" not in err


# -- the spec (used by federation deploy too) -------------------------------------------------------


def test_a_section_7_template_becomes_the_body_the_host_app_reads() -> None:
    from mgn_verify.lifecycle.workspaces import WorkspaceSpec

    spec = WorkspaceSpec.from_template(yaml.safe_load("""
workspace:
  name: code-server
  image: codercom/code-server:4.90.3
  env: [{name: PASSWORD, value: changeme}, {name: PORT, value: 8080}]
  ports: [{name: http, containerPort: 8080, protocol: TCP}]
  resources: {requests: {memory: 1Gi, cpu: 500m}, limits: {memory: 2Gi, cpu: "1"}}
  labels: {app: code-server}
  notes: a development environment
"""))
    assert spec.body() == {
        "name": "code-server", "image": "codercom/code-server:4.90.3",
        "env": [{"name": "PASSWORD", "value": "changeme"}, {"name": "PORT", "value": "8080"}],
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "labels": {"app": "code-server"},
        "resources": {"requests": {"memory": "1Gi", "cpu": "500m"}, "limits": {"memory": "2Gi", "cpu": "1"}},
    }
    assert spec.notes == "a development environment"


@pytest.mark.parametrize(("template", "message"), [
    ({"name": "x"}, "workspace.image must be a non-empty string"),
    ({"name": "x", "image": "i", "volumes": []}, "unknown key workspace.volumes"),
    ({"name": "x", "image": "i", "env": [{"value": "1"}]}, "workspace.env[0] must be {name, value}"),
    ({"name": "x", "image": "i", "ports": [{"containerPort": 70000}]}, "workspace.ports[0].containerPort"),
    ({"name": "x", "image": "i", "labels": ["a"]}, "workspace.labels must be a mapping"),
])
def test_a_bad_template_field_is_a_usage_error_naming_it(template: dict[str, Any], message: str) -> None:
    from mgn_verify._exceptions import UsageError
    from mgn_verify.lifecycle.workspaces import WorkspaceSpec

    with pytest.raises(UsageError, match=re.escape(message)):
        WorkspaceSpec.from_template({"workspace": template})


def test_delete_is_refused_and_sends_nothing(mgn_lab: Lab, tmp_path: Path) -> None:
    assert mgn(mgn_lab, "workspace", "create", "lab", "--name", "kept", "--image", "nginx").exit_code == 0
    mgn_lab.inject("kubernetes.down")
    before = len(mgn_lab.hostapp_requests)
    run, report = _run_json(mgn_lab, tmp_path, "workspace", "delete", "lab", "kept")
    assert run.exit_code == 1, run.stderr
    assert mutations(mgn_lab, before) == []
    assert report is not None and report["summary"]["exit_code"] == 1
    mgn_lab.clear("kubernetes.down")
    assert workspace_cr(mgn_lab, "kept") is not None

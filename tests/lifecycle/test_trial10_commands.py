"""Trial findings on the lifecycle commands (issue 10): an unknown cluster is exit 1 everywhere,
``wait`` on a missing workspace fails fast, a Host App that cannot reach Kubernetes is not "not
found", a federation re-run is idempotent, ``list`` speaks as ``get`` does, a TLS failure says
the fix, and the peer's global ``--config`` reaches the commands."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mgn_verify.lab import Lab
from tests.lifecycle.helpers import error_line, mgn, quick_operator

DOWN = ("--set", "api.base_url=https://127.0.0.1:1")  # nothing listens there: connection refused
UNKNOWN = "mgn: error: cluster 'nocluster' is not registered in the Host App (it lists: lab)"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        quick_operator(running)
        yield running


def running(lab: Lab, name: str, image: str = "nginx") -> None:
    assert mgn(lab, "workspace", "create", "lab", "--name", name, "--image", image, "--port", "80").exit_code == 0
    waited = mgn(lab, "workspace", "wait", "lab", name, "--timeout", "20s", "--interval", "0.05s")
    assert waited.exit_code == 0, waited.stderr


# -- 1. an unknown cluster ----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("workspace", "list", "nocluster"),
    ("workspace", "get", "nocluster", "x"),
    ("workspace", "logs", "nocluster", "x"),
    ("workspace", "wait", "nocluster", "x", "--timeout", "5s"),
    ("workspace", "test", "nocluster", "x", "--http-check", "/"),
    ("cluster", "get", "nocluster"),
    ("cluster", "status", "nocluster"),
])
def test_an_unknown_cluster_is_exit_1_naming_the_registered_ones(lab: Lab, args: tuple[str, ...]) -> None:
    run = mgn(lab, *args)
    assert run.exit_code == 1, run.stderr
    assert error_line(run) == UNKNOWN
    assert run.stdout == ""


def test_an_unknown_cluster_of_a_host_app_that_cannot_be_asked_is_still_exit_5(lab: Lab) -> None:
    run = mgn(lab, "workspace", "get", "nocluster", "x", *DOWN)
    assert run.exit_code == 5, run.stderr
    assert "connection refused" in error_line(run)


# -- 2. wait on a workspace that is not there -----------------------------------------------------


def test_wait_for_a_missing_workspace_fails_fast_instead_of_polling_until_the_timeout(lab: Lab) -> None:
    run = mgn(lab, "workspace", "wait", "lab", "ghost", "--timeout", "10m", "--interval", "0.05s")
    assert run.exit_code == 1, run.stderr
    line = error_line(run)
    assert line.startswith("mgn: error: workspace 'ghost' not found on cluster 'lab'"), line


def test_wait_right_after_create_is_unaffected(lab: Lab) -> None:
    assert mgn(lab, "workspace", "create", "lab", "--name", "fresh", "--image", "nginx").exit_code == 0
    run = mgn(lab, "workspace", "wait", "lab", "fresh", "--timeout", "10m", "--interval", "0.05s")
    assert run.exit_code == 0, run.stderr
    assert "is Running (1 ready)" in run.stdout


# -- 3. the Host App cannot reach the cluster's Kubernetes API ----------------------------------


@pytest.mark.parametrize("args", [
    ("get", "lab", "{name}"),
    ("logs", "lab", "{name}"),
    ("wait", "lab", "{name}", "--timeout", "10m", "--interval", "0.05s"),
    ("test", "lab", "{name}", "--http-check", "/"),
    ("delete", "lab", "{name}", "--ignore-preflight-errors", "all", "--reason", "trial"),
])
def test_kubernetes_down_is_exit_5_not_not_found(lab: Lab, args: tuple[str, ...]) -> None:
    name = f"k8s-{args[0]}"
    running(lab, name)
    lab.inject("kubernetes.down")
    try:
        run = mgn(lab, "workspace", *(a.format(name=name) for a in args))
    finally:
        lab.clear("kubernetes.down")
    assert run.exit_code == 5, run.stderr
    line = error_line(run)
    assert line.startswith("mgn: error: the Host App cannot reach cluster lab's Kubernetes API: "), line
    assert "connection refused" in line, line
    assert "not found" not in line


# -- 4. federation deploy run twice -------------------------------------------------------------


def _federation(tmp_path: Path, image: str) -> tuple[str, str]:
    fed, ws = tmp_path / "fed.yaml", tmp_path / f"ws-{image.replace(':', '-')}.yaml"
    fed.write_text("federation:\n  name: trial\n  clusters: [{id: lab}]\n"
                   "  deployment: {mode: sequential, wait_for_ready: true, rollback_on_failure: true}\n")
    ws.write_text(f"workspace: {{name: fed-web, image: '{image}', ports: [{{containerPort: 80}}]}}\n")
    return str(fed), str(ws)


def test_federation_deploy_is_idempotent_and_names_both_images_on_a_difference(lab: Lab, tmp_path: Path) -> None:
    fed, ws = _federation(tmp_path, "nginx:1.27")
    first = mgn(lab, "federation", "deploy", fed, ws, "--interval", "0.05s", "-o", "json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["clusters"][0]["action"] == "created"

    posts = sum(r.method == "POST" for r in lab.hostapp_requests)
    again = mgn(lab, "federation", "deploy", fed, ws, "--interval", "0.05s", "-o", "json")
    assert again.exit_code == 0, again.stderr
    row = json.loads(again.stdout)["clusters"][0]
    assert (row["action"], row["status"]) == ("unchanged", "deployed"), row
    assert "Running" in row["message"]
    assert sum(r.method == "POST" for r in lab.hostapp_requests) == posts  # nothing created

    _, other = _federation(tmp_path, "nginx:1.28")
    start = len(lab.hostapp_requests)
    differs = mgn(lab, "federation", "deploy", fed, other, "--interval", "0.05s", "-o", "json")
    assert differs.exit_code == 1, differs.stderr
    row = json.loads(differs.stdout)["clusters"][0]
    assert row["status"] == "failed" and "nginx:1.27" in row["message"] and "nginx:1.28" in row["message"], row
    # rollback_on_failure never deletes a workspace this run did not create
    assert not any(r.method in ("POST", "DELETE") for r in lab.hostapp_requests[start:])
    assert mgn(lab, "workspace", "get", "lab", "fed-web").exit_code == 0


# -- 5. list speaks as get does ---------------------------------------------------------------


def test_list_shows_the_words_of_get_and_no_nil_port_names(lab: Lab) -> None:
    running(lab, "listed", "nginx:1.27")
    table = mgn(lab, "workspace", "list", "lab")
    assert any(line.split()[:3] == ["listed", "nginx:1.27", "Running"] for line in table.stdout.splitlines()), \
        table.stdout
    rows = json.loads(mgn(lab, "workspace", "list", "lab", "-o", "json").stdout)
    row = next(r for r in rows if r["name"] == "listed")
    assert row["status"] == "running" and row["state"] == "Running", row  # raw status kept for scripts
    assert row["ports"] == [{"name": None, "port": 80}], row
    assert "<nil>" not in table.stdout


# -- 6. a TLS verification failure says the fix -------------------------------------------------


def test_a_tls_verification_failure_says_how_to_fix_it_once(lab: Lab) -> None:
    run = mgn(lab, "workspace", "list", "lab", "--set", "api.ca_bundle=")
    assert run.exit_code == 5
    line = error_line(run)
    assert "TLS verification failed" in line, line
    fix = "set api.ca_bundle (MGN_API_CA_BUNDLE) to the CA that signs the Host App's certificate"
    assert line.count(fix) == 1, line
    assert line.count("api.ca_bundle") == 1, line


# -- 7. the peer's global --config ---------------------------------------------------------------


def test_a_global_config_reaches_the_workspace_commands(
        lab: Lab, mgn_process: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = mgn_process("--config", str(lab.config_path), "workspace", "list", "lab", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)

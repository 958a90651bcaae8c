"""Review of the lifecycle commands (issue 10): bad input is one line and exit 2 before anything
is sent, ``-o json`` means JSON even in a dry run, a Host App that cannot be reached while acting
is exit 5 (not a negative outcome), and ``wait`` polls quickly at first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mgn_verify.lab import Lab
from tests.helpers import Run
from tests.lifecycle.helpers import mgn, quick_operator

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
DOWN = ("--set", "api.base_url=https://127.0.0.1:1")  # nothing listens there: connection refused


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        quick_operator(running)
        yield running


def one_line(run: Run) -> str:
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("mgn: error:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def mutations(lab: Lab, since: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in lab.hostapp_requests[since:] if r.method in MUTATING]


# -- bad input: exit 2, one line, nothing sent (not even the preflight) ----------------------------


@pytest.mark.parametrize("name", ["Bad_Name!", "UPPER", "-dash", "1starts-with-digit", "a" * 64, "dots.in.it"])
def test_a_workspace_name_that_is_no_dns_label_is_refused_before_the_preflight(lab: Lab, name: str) -> None:
    before = len(lab.hostapp_requests)
    run = mgn(lab, "workspace", "create", "lab", "--name", name, "--image", "nginx", "--dry-run")
    assert run.exit_code == 2, run.stdout + run.stderr
    line = one_line(run)
    assert repr(name) in line and "DNS label" in line, line
    assert run.stdout == "" and len(lab.hostapp_requests) == before


def test_a_federation_workspace_template_with_a_bad_name_names_file_and_key(lab: Lab, tmp_path: Path) -> None:
    fed, ws = tmp_path / "fed.yaml", tmp_path / "ws.yaml"
    fed.write_text("federation: {clusters: [{id: lab}]}\n")
    ws.write_text("workspace: {name: Not_Valid, image: nginx}\n")
    run = mgn(lab, "federation", "deploy", str(fed), str(ws))
    assert run.exit_code == 2
    line = one_line(run)
    assert "ws.yaml" in line and "'Not_Valid'" in line and "DNS label" in line


@pytest.mark.parametrize("args", [
    ("create", "", "--name", "x", "--image", "nginx"),
    ("list", ""),
    ("get", "", "x"),
    ("get", "lab", ""),
    ("logs", "lab", " "),
    ("wait", "", "x", "--timeout", "1s"),
    ("test", "lab", "", "--http-check", "/"),
    ("delete", "", "x"),
])
def test_an_empty_cluster_or_workspace_argument_is_a_usage_error(lab: Lab, args: tuple[str, ...]) -> None:
    """What a CI job sends when its CLUSTER variable is not set."""
    before = len(lab.hostapp_requests)
    run = mgn(lab, "workspace", *args)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert "must not be empty" in run.stderr and run.stdout == ""
    assert len(lab.hostapp_requests) == before


def test_an_empty_argument_is_one_line_from_the_real_cli(mgn_process: Callable[..., Any]) -> None:
    done = mgn_process("workspace", "wait", "", "x")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("mgn: error: Invalid value for 'CLUSTER': must not be empty")
    assert done.stderr.count("\n") == 1, done.stderr


# -- -o json means JSON on stdout, dry runs included ---------------------------------------------


def test_workspace_create_dry_run_as_json_is_json_with_secrets_masked(lab: Lab) -> None:
    before = len(lab.hostapp_requests)
    run = mgn(lab, "workspace", "create", "lab", "--name", "dry-json", "--image", "nginx", "--env", "PASSWORD=hunter2",
              "--env", "MODE=dev", "--dry-run", "-o", "json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert data == {"dry_run": True, "requests": [{
        "method": "POST", "path": "/api/cluster/lab/workspaces",
        "body": {"name": "dry-json", "image": "nginx", "env": [{"name": "PASSWORD", "value": "***"},
                                                               {"name": "MODE", "value": "dev"}], "ports": []}}]}
    assert "hunter2" not in run.stdout + run.stderr and mutations(lab, before) == []
    as_yaml = mgn(lab, "workspace", "create", "lab", "--name", "dry-json", "--image", "nginx", "--dry-run",
                  "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["requests"][0]["method"] == "POST"


def test_cluster_bootstrap_and_apply_dry_runs_as_json(lab: Lab, tmp_path: Path) -> None:
    kubeconfig = str(lab.workdir / "kubeconfig.yaml")
    before = len(lab.hostapp_requests)
    boot = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig, "--name", "dry-boot", "--dry-run", "-o", "json")
    assert boot.exit_code == 0, boot.stderr
    (request,) = json.loads(boot.stdout)["requests"]
    assert (request["method"], request["path"]) == ("POST", "/api/bootstrap")
    assert request["body"]["cluster"]["kubeconfig"] == "***" and lab.kube_token not in boot.stdout
    template = tmp_path / "cluster.yaml"
    template.write_text(yaml.safe_dump({"cluster": {"name": "dry-apply", "kubeconfig": kubeconfig}}))
    applied = mgn(lab, "cluster", "apply", "-f", str(template), "--dry-run", "-o", "json")
    assert applied.exit_code == 0, applied.stderr
    steps = json.loads(applied.stdout)["requests"]
    assert [(s["method"], s["path"]) for s in steps] == [
        ("POST", "/api/deploy/clusters"), ("POST", "/api/deploy/clusters/{id}?action=attach-kubeconfig")]
    assert lab.kube_token not in applied.stdout
    assert mutations(lab, before) == []


# -- the Host App cannot be reached while acting: exit 5 ------------------------------------------


def test_wait_with_the_host_app_unreachable_is_exit_5(lab: Lab) -> None:
    run = mgn(lab, "workspace", "wait", "lab", "x", "--timeout", "0.2s", "--interval", "0.05s", *DOWN)
    assert run.exit_code == 5, run.stderr
    line = one_line(run)
    assert "cannot connect" in line and "not ready after" in line


def test_http_check_with_the_host_app_unreachable_is_exit_5(lab: Lab) -> None:
    run = mgn(lab, "workspace", "test", "lab", "x", "--http-check", "/", "--retries", "0", *DOWN)
    assert run.exit_code == 5, run.stdout + run.stderr
    assert "cannot connect" in one_line(run)


# -- wait polls quickly first, then every --interval -----------------------------------------------


def test_wait_polls_quickly_at_first_then_every_interval() -> None:
    from mgn_verify.lifecycle.workspaces import poll_delays

    delays = poll_delays(2.0)
    assert [next(delays) for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    short = poll_delays(0.1)
    assert [next(short) for _ in range(3)] == [0.1, 0.1, 0.1]


def test_wait_sees_a_workspace_soon_after_it_is_running_even_with_a_long_interval(lab: Lab) -> None:
    from mgn_verify.clients.hostapp import HostAppClient

    operator = lab.kube.state.operator
    operator.running_delay = 1.5  # several quick polls see it Pending first
    try:
        with HostAppClient(lab.hostapp.url, ca_bundle=str(lab.ca.ca_path)) as api:
            api.create_workspace("lab", {"name": "quick", "image": "nginx"})
        start = len(lab.hostapp_requests)
        run = mgn(lab, "workspace", "wait", "lab", "quick", "--timeout", "10s", "--interval", "10s")
    finally:
        operator.running_delay = 0.2
    assert run.exit_code == 0, run.stderr
    polls = [r for r in lab.hostapp_requests[start:] if r.path == "/api/cluster/lab/workspaces/quick"]
    assert len(polls) >= 3, polls  # polled at once, 0.25 s, 0.75 s, 1.75 s ... (not only at 0 s and 10 s)


# -- cluster status of a cluster the Host App does not know ----------------------------------------


def test_cluster_status_of_an_unknown_cluster_says_not_found(lab: Lab) -> None:
    run = mgn(lab, "cluster", "status", "nowhere", "-o", "json")
    assert run.exit_code == 1
    assert run.stdout == ""
    assert one_line(run) == "mgn: error: cluster 'nowhere' is not registered in the Host App (it lists: lab)"


# -- bootstrap without --name twice: the same cluster is not registered again ----------------------


def test_bootstrap_without_a_name_of_a_registered_kubeconfig_changes_nothing(lab: Lab) -> None:
    """The lab's cluster is registered (as ``lab``) with this very kubeconfig."""
    before = len(lab.hostapp_requests)
    run = mgn(lab, "cluster", "bootstrap", "--kubeconfig", str(lab.workdir / "kubeconfig.yaml"), "-o", "json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout) == {"id": "lab", "name": "lab"}
    assert "already registered" in run.stderr and "nothing to do" in run.stderr
    assert [m for m in mutations(lab, before) if not m[1].endswith("?action=kubeconfig")] == []

"""Final review of issue 10, the workspace and federation commands: SIGTERM once a command runs,
a retried DELETE, which conflicts mean "already exists", federation aborts and worker crashes,
TLS errors in HTTP checks, messages on stderr, and the leftovers (help, docs, hidden flags)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mgn_verify.lab import Lab
from tests.helpers import REPO, wait_until
from tests.lifecycle.helpers import error_line, mgn, quick_operator

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        quick_operator(running, 0.05, 0.2)
        mgn(running, "workspace", "create", "lab", "--name", "warm-up", "--image", "nginx", "--dry-run")
        yield running


def _create_running(lab: Lab, name: str) -> None:
    assert mgn(lab, "workspace", "create", "lab", "--name", name, "--image", "nginx").exit_code == 0
    waited = mgn(lab, "workspace", "wait", "lab", name, "--timeout", "20s", "--interval", "0.05s")
    assert waited.exit_code == 0, waited.stderr


# -- 1. SIGTERM ends any lifecycle command with 130 ---------------------------------------------

# The lifecycle command itself turns SIGTERM into an interruption: not only the console script.
_WITHOUT_ENTRY = "import sys; from mgn_verify.cli import main; main()"


def _sigterm_while_waiting(lab: Lab, tmp_path: Path, launcher: list[str]) -> tuple[int, str]:
    env = {**os.environ, "MGN_CONFIG": os.devnull, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, *launcher, "workspace", "wait", "lab", "never-term", "--timeout", "60s",
                             "--interval", "0.1s", "--config", str(lab.config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the first poll was reported
        assert first.startswith("waiting for workspace never-term: not found"), first
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, err


@pytest.mark.parametrize("launcher", [["-m", "mgn_verify"], ["-c", _WITHOUT_ENTRY]], ids=["mgn", "cli-main"])
def test_sigterm_while_waiting_exits_130(lab: Lab, tmp_path: Path, launcher: list[str]) -> None:
    code, err = _sigterm_while_waiting(lab, tmp_path, launcher)
    assert code == 130, err
    assert "mgn: interrupted" in err and "Traceback" not in err


@pytest.mark.slow  # a real process through a whole preflight gate
def test_sigterm_after_the_gate_passed_ends_federation_deploy_with_130_and_the_summary(
        lab: Lab, tmp_path: Path) -> None:
    fed, ws = tmp_path / "fed.yaml", tmp_path / "ws.yaml"
    fed.write_text("federation:\n  name: f\n  clusters:\n    - {id: lab}\n  deployment: {mode: simultaneous}\n")
    ws.write_text("workspace:\n  name: fed-sigterm\n  image: nginx\n")
    start = len(lab.hostapp_requests)
    lab.kube.state.operator.running_delay = 600  # never Running while the test runs
    env = {**os.environ, "MGN_CONFIG": os.devnull, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _WITHOUT_ENTRY, "federation", "deploy", str(fed), str(ws),
                             "--config", str(lab.config_path), "--interval", "0.1s", "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        wait_until(lambda: any(r.method == "POST" for r in lab.hostapp_requests[start:]) or proc.poll() is not None,
                   timeout=30, what="the create")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
        quick_operator(lab, 0.05, 0.2)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["status"] == "interrupted" and summary["clusters"][0]["status"] == "interrupted"
    assert "Traceback" not in err


# -- 2. delete: a DELETE retried after its first attempt went through ---------------------------


def test_delete_whose_first_attempt_went_through_is_deleted_not_not_found(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from mgn_verify.lab.hostapp.model import text

    _create_running(lab, "del-retried")
    route = lab.hostapp._route
    lost: list[str] = []

    def applied_then_lost(ctx: Any) -> Any:  # a proxy that timed out after the app deleted it
        answer = route(ctx)
        if ctx.req.method == "DELETE" and not lost:
            lost.append(ctx.req.path)
            return text(504, "Gateway Timeout")
        return answer

    monkeypatch.setattr(lab.hostapp, "_route", applied_then_lost)
    start = len(lab.hostapp_requests)
    run = mgn(lab, "workspace", "delete", "lab", "del-retried")
    assert run.exit_code == 0, run.stderr
    deletes = [r.status for r in lab.hostapp_requests[start:] if r.method == "DELETE"]
    assert deletes == [504, 404]  # retried; the 404 means the first one did it
    assert "workspace del-retried deleted from cluster lab" in run.stderr  # a message: stderr
    assert run.stdout == ""


def test_delete_of_a_missing_workspace_sends_no_delete(lab: Lab) -> None:
    start = len(lab.hostapp_requests)
    run = mgn(lab, "workspace", "delete", "lab", "never-there")
    assert run.exit_code == 1
    assert error_line(run) == "mgn: error: workspace 'never-there' not found on cluster 'lab'"
    assert [r for r in lab.hostapp_requests[start:] if r.method in MUTATING] == []


# -- 3. only an "already exists" conflict is "already exists" ----------------------------------


def test_a_422_on_create_is_not_already_exists(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from mgn_verify.lab.hostapp.model import json_err

    route = lab.hostapp._route

    def invalid(ctx: Any) -> Any:
        if ctx.req.method == "POST" and ctx.req.path.endswith("/workspaces"):
            return json_err(ctx, 422, "invalid", "spec.image: Invalid value")
        return route(ctx)

    monkeypatch.setattr(lab.hostapp, "_route", invalid)
    run = mgn(lab, "workspace", "create", "lab", "--name", "unprocessable", "--image", "nginx")
    assert run.exit_code == 5, run.stderr
    line = error_line(run)
    assert "already exists" not in line and "422" in line


def test_already_exists_conflicts_are_recognised() -> None:
    from mgn_verify._exceptions import ConflictError
    from mgn_verify.lifecycle.workspaces import already_exists

    def conflict(status: int, code: str = "", details: object = None) -> ConflictError:
        return ConflictError("x", component="hostapp", status=status, code=code, details=details)

    assert already_exists(conflict(409, "already_exists"))
    assert already_exists(conflict(409))
    assert already_exists(conflict(409, "", {"reason": "AlreadyExists", "message": "exists"}))
    assert not already_exists(conflict(422, "invalid"))
    assert not already_exists(conflict(409, "", {"reason": "Conflict", "message": "resourceVersion"}))


# -- 4. federation: an abort still rolls back; a crashing worker fails its cluster -------------


def _federation(**deployment: Any) -> Any:
    from mgn_verify.lifecycle.federation import parse_federation

    entries = [{"id": cid, "priority": i + 1} for i, cid in enumerate(("a", "b", "c"))]
    return parse_federation({"federation": {"name": "f", "clusters": entries, "deployment": deployment}}, "f.yaml")


def test_an_aborting_later_gate_still_rolls_back_what_this_run_created() -> None:
    from mgn_verify.lifecycle.federation import ActionResult, GateVerdict, Hooks, deploy

    rolled: list[str] = []

    def gate(cid: str) -> GateVerdict:  # e.g. the audit log became unwritable: exit 2
        return GateVerdict(False, 2, "error", "cannot write the audit log") if cid == "b" else GateVerdict(True)

    def act(cid: str, cancel: threading.Event) -> ActionResult:
        return ActionResult(True, "created", "Running", created=True)

    def rollback(cid: str) -> str:
        rolled.append(cid)
        return "rolled back: deleted"

    outcome = deploy(_federation(mode="sequential", rollback_on_failure=True), Hooks(gate, act, rollback))
    assert outcome.exit_code == 2
    assert rolled == ["a"]
    assert {r.cluster: r.status for r in outcome.results} == {"a": "rolled back", "b": "refused", "c": "skipped"}


def test_a_worker_crash_fails_its_cluster_in_one_line_and_the_others_finish() -> None:
    from mgn_verify.lifecycle.federation import ActionResult, GateVerdict, Hooks, deploy

    def act(cid: str, cancel: threading.Event) -> ActionResult:
        if cid == "b":
            raise RuntimeError("boom\n  at line 2")
        time.sleep(0.05)  # still running while b crashes
        return ActionResult(True, "created", "Running", created=True)

    outcome = deploy(_federation(mode="simultaneous"), Hooks(lambda cid: GateVerdict(True), act, lambda cid: ""))
    rows = {r.cluster: (r.status, r.message) for r in outcome.results}
    assert rows["b"] == ("failed", "RuntimeError: boom")
    assert rows["a"][0] == rows["c"][0] == "deployed"
    assert outcome.exit_code == 1


# -- 5. http_check: a TLS verification error is not retried ------------------------------------


def test_http_check_raises_a_tls_verification_error_at_once(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from mgn_verify.clients.hostapp import HostAppClient, TlsVerificationError
    from mgn_verify.lifecycle import workspaces

    sleeps: list[float] = []
    clock = types.SimpleNamespace(sleep=sleeps.append, monotonic=time.monotonic)
    monkeypatch.setattr(workspaces, "time", clock)  # a retry would sleep first: count the sleeps
    with HostAppClient(lab.hostapp.url) as api, pytest.raises(TlsVerificationError):  # the lab's CA not trusted
        workspaces.http_check(api, "lab", "web", "/", 200, retries=3, interval=1.0)
    assert sleeps == []


# -- 6. and 7. output streams and leftovers ------------------------------------------------------


def test_logs_follow_warns_that_it_does_not_follow(lab: Lab) -> None:
    _create_running(lab, "logs-tail")
    run = mgn(lab, "workspace", "logs", "lab", "logs-tail", "-f")
    assert run.exit_code == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "--follow" in line]
    assert len(warnings) == 1 and warnings[0].startswith("mgn: warning: ")
    assert "--follow" not in run.stdout and "[logs-tail-" in run.stdout  # the lines, printed once


@pytest.mark.parametrize("command", ["list", "show"])
def test_gate_help_documents_the_exit_codes(command: str) -> None:
    from click.testing import CliRunner

    from mgn_verify.cli import cli

    result = CliRunner().invoke(cli, ["gate", command, "--help"])
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout and "usage" in result.stdout


def test_the_lifecycle_package_lists_every_module_and_no_leftover_notes() -> None:
    import mgn_verify.lifecycle as package

    doc = package.__doc__ or ""
    modules = sorted(p.stem for p in Path(package.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert [m for m in modules if f":mod:`.{m}`" not in doc] == []
    for path in (REPO / "mgn_verify/lifecycle/preflight.py", REPO / "mgn_verify/cli/_lifecycle.py"):
        assert "INTERFACE FIXED" not in path.read_text()


def test_output_option_offers_the_output_formats() -> None:
    import click

    from mgn_verify.cli._lifecycle import output_option
    from mgn_verify.lifecycle.output import FORMATS

    command = output_option()(click.command()(lambda fmt: None))
    (param,) = command.params
    assert isinstance(param.type, click.Choice) and tuple(param.type.choices) == FORMATS


def test_wait_help_says_the_fail_fast_is_time_based() -> None:
    from click.testing import CliRunner

    from mgn_verify.cli import cli

    result = CliRunner().invoke(cli, ["workspace", "wait", "--help"])
    assert "five polls" not in result.stdout
    assert "5 x --interval" in " ".join(result.stdout.split())

"""``mgn federation deploy``: the §7 federation file, the schedule (pure, with fake hooks), and
the command against a two-cluster lab (the Host App's request log is the witness)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mgn_verify._exceptions import UsageError
from mgn_verify.lifecycle.federation import (
    ActionResult,
    ClusterResult,
    Federation,
    GateVerdict,
    Hooks,
    deploy,
    load_federation,
    parse_federation,
)
from tests.helpers import Run, wait_until

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def federation(mode: str = "sequential", clusters: tuple[str, ...] = ("a", "b", "c"), **deployment: Any
               ) -> Federation:
    entries = [{"id": cid, "priority": i + 1} for i, cid in enumerate(clusters)]
    return parse_federation({"federation": {"name": "f", "clusters": entries,
                                            "deployment": {"mode": mode, **deployment}}}, "f.yaml")


class Fake:
    """Hooks that record calls; ``broken`` clusters are refused by the gate, ``failing`` ones fail."""

    def __init__(self, *, broken: tuple[str, ...] = (), failing: tuple[str, ...] = (), delay: float = 0.0) -> None:
        self.broken, self.failing, self.delay = broken, failing, delay
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def gate(self, cid: str) -> GateVerdict:
        self.calls.append(("gate", cid))
        return GateVerdict(False, 1, "refused", "kubernetes.api.ready failed") if cid in self.broken \
            else GateVerdict(True)

    def act(self, cid: str, cancel: threading.Event) -> ActionResult:
        with self.lock:
            self.calls.append(("act", cid))
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.delay)  # lets parallel workers overlap (what is measured is the overlap)
        with self.lock:
            self.running -= 1
        if cid in self.failing:
            return ActionResult(False, "created", "not ready after 1 s", created=True)
        return ActionResult(True, "created", "Running", created=True)

    def rollback(self, cid: str) -> str:
        self.calls.append(("rollback", cid))
        return "deleted"

    def hooks(self) -> Hooks:
        return Hooks(self.gate, self.act, self.rollback)

    def acted(self) -> list[str]:
        return [cid for what, cid in self.calls if what == "act"]


def statuses(results: list[ClusterResult]) -> dict[str, str]:
    return {r.cluster: r.status for r in results}


# -- the file ---------------------------------------------------------------------------------

PEER_FILE = """\
federation:
  name: production-federation
  description: "three regions"
  clusters:
    - {id: us-east, name: "US East", role: primary, weight: 40, region: us-east-1, priority: 1}
    - {id: eu-west, name: "EU West", role: secondary, weight: 30, region: eu-west-1, priority: 2}
    - {id: us-west, name: "US West", role: secondary, weight: 30, region: us-west-2, priority: 1}
  load_balancing: {strategy: weighted, health_check_interval: 30s, failover_enabled: true}
  deployment: {mode: rolling, max_parallel: 2, wait_for_ready: true, rollback_on_failure: true}
  sync: {enabled: true, interval: 5m, sync_resources: [workspaces]}
"""


def test_the_peer_format_parses_with_notes_for_the_unused_sections(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(PEER_FILE)
    fed = load_federation(path)
    assert fed.name == "production-federation"
    assert [c.id for c in fed.clusters] == ["us-east", "eu-west", "us-west"]
    assert fed.clusters[0].role == "primary" and fed.clusters[0].weight == 40
    assert fed.deployment.mode == "rolling" and fed.deployment.max_parallel == 2
    assert fed.deployment.rollback_on_failure and fed.deployment.wait_for_ready
    # Priority order, ties in file order; rolling batches of max_parallel.
    assert fed.ordered() == ["us-east", "us-west", "eu-west"]
    assert fed.batches() == [["us-east", "us-west"], ["eu-west"]]
    assert any("load_balancing" in n and "ignored" in n for n in fed.notes)
    assert any("sync" in n for n in fed.notes)


def test_defaults_are_sequential_waiting_without_rollback() -> None:
    fed = parse_federation({"federation": {"clusters": [{"id": "a"}, {"id": 7}]}}, "dir/fed.yaml")
    assert fed.name == "fed" and [c.id for c in fed.clusters] == ["a", "7"]
    assert fed.deployment.mode == "sequential" and fed.deployment.wait_for_ready
    assert not fed.deployment.rollback_on_failure
    assert fed.batches() == [["a"], ["7"]]


@pytest.mark.parametrize(("doc", "key"), [
    ({"federation": {"clusters": []}}, "federation.clusters"),
    ({"clusters": [{"id": "a"}]}, "'federation'"),
    ({"federation": {"clusters": [{"name": "x"}]}}, "federation.clusters[0].id"),
    ({"federation": {"clusters": [{"id": "a"}, {"id": "a"}]}}, "federation.clusters[1].id"),
    ({"federation": {"clusters": [{"id": "a", "role": "leader"}]}}, "federation.clusters[0].role"),
    ({"federation": {"clusters": [{"id": "a", "weight": "heavy"}]}}, "federation.clusters[0].weight"),
    ({"federation": {"clusters": [{"id": "a", "priority": True}]}}, "federation.clusters[0].priority"),
    ({"federation": {"clusters": [{"id": "a", "regoin": "x"}]}}, "did you mean 'region'"),
    ({"federation": {"clusters": [{"id": "a"}], "deployment": {"mode": "parallel"}}}, "federation.deployment.mode"),
    ({"federation": {"clusters": [{"id": "a"}], "deployment": {"max_parallel": 0}}},
     "federation.deployment.max_parallel"),
    ({"federation": {"clusters": [{"id": "a"}], "deployment": {"wait_for_ready": "yes please"}}},
     "federation.deployment.wait_for_ready"),
    ({"federation": {"clusters": [{"id": "a"}], "deployment": {"max_paralel": 2}}}, "did you mean 'max_parallel'"),
])
def test_a_bad_value_is_a_usage_error_naming_file_and_key(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_federation(doc, "fed.yaml")
    assert str(info.value).startswith("fed.yaml: ") and key in str(info.value)


def test_unreadable_or_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"federation file .*missing\.yaml: no such file"):
        load_federation(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("federation: [\n")
    with pytest.raises(UsageError, match=r"bad\.yaml: not valid YAML at line 2"):
        load_federation(bad)


# -- the schedule -----------------------------------------------------------------------------


def test_sequential_stops_at_the_first_refusal_and_never_acts_there() -> None:
    fake = Fake(broken=("b",))
    outcome = deploy(federation("sequential"), fake.hooks())
    assert fake.calls == [("gate", "a"), ("act", "a"), ("gate", "b")]
    assert statuses(outcome.results) == {"a": "deployed", "b": "refused", "c": "skipped"}
    assert outcome.exit_code == 1 and outcome.status == "failed"


def test_sequential_rollback_deletes_only_what_this_run_created() -> None:
    fake = Fake(failing=("b",))
    fake_act = fake.act

    def act(cid: str, cancel: threading.Event) -> ActionResult:
        if cid == "a":  # was already there: not created by this run
            return ActionResult(True, "exists", "Running")
        return fake_act(cid, cancel)

    outcome = deploy(federation("sequential", ("a", "b", "c", "d"), rollback_on_failure=True),
                     Hooks(fake.gate, act, fake.rollback))
    assert [c for what, c in fake.calls if what == "rollback"] == ["b"]
    assert statuses(outcome.results) == {"a": "deployed", "b": "rolled back", "c": "skipped", "d": "skipped"}
    assert outcome.exit_code == 1


def test_rollback_after_a_refusal_deletes_the_healthy_clusters_workspace() -> None:
    fake = Fake(broken=("b",))
    outcome = deploy(federation("sequential", rollback_on_failure=True), fake.hooks())
    assert ("rollback", "a") in fake.calls and ("act", "b") not in fake.calls
    assert statuses(outcome.results) == {"a": "rolled back", "b": "refused", "c": "skipped"}


def test_simultaneous_acts_on_every_admitted_cluster_and_reports_the_others() -> None:
    fake = Fake(broken=("b",), failing=("c",), delay=0.05)
    outcome = deploy(federation("simultaneous", ("a", "b", "c", "d")), fake.hooks())
    assert sorted(fake.acted()) == ["a", "c", "d"]
    assert statuses(outcome.results) == {"a": "deployed", "b": "refused", "c": "failed", "d": "deployed"}
    assert outcome.exit_code == 1
    assert fake.peak > 1  # they ran together
    # Every gate ran before any action (one report after another, never interleaved).
    assert [w for w, _ in fake.calls[:4]] == ["gate"] * 4


def test_simultaneous_is_bounded_by_max_parallel() -> None:
    fake = Fake(delay=0.05)
    outcome = deploy(federation("simultaneous", ("a", "b", "c", "d"), max_parallel=2), fake.hooks())
    assert outcome.exit_code == 0 and fake.peak <= 2
    assert set(statuses(outcome.results).values()) == {"deployed"}


def test_rolling_goes_in_batches_and_stops_after_a_failed_batch() -> None:
    fake = Fake(failing=("b",))
    outcome = deploy(federation("rolling", ("a", "b", "c", "d", "e"), max_parallel=2), fake.hooks())
    # The failed batch finishes (a and b), the next batches never start.
    assert sorted(fake.acted()) == ["a", "b"]
    assert statuses(outcome.results) == {"a": "deployed", "b": "failed", "c": "skipped", "d": "skipped",
                                         "e": "skipped"}


def test_rolling_defaults_to_one_at_a_time() -> None:
    fed = federation("rolling", ("a", "b", "c"))
    assert fed.batches() == [["a"], ["b"], ["c"]]


def test_dry_run_reports_would_deploy_and_exit_zero() -> None:
    outcome = deploy(federation("sequential"), Fake().hooks(), dry_run=True)
    assert set(statuses(outcome.results).values()) == {"would deploy"} and outcome.exit_code == 0


def test_a_usage_error_from_a_gate_aborts_with_its_code() -> None:
    fake = Fake()

    def gate(cid: str) -> GateVerdict:
        return GateVerdict(False, 2, "error", "unknown check id in --ignore-preflight-errors")

    outcome = deploy(federation("simultaneous"), Hooks(gate, fake.act, fake.rollback))
    assert outcome.exit_code == 2 and fake.acted() == []


def test_ctrl_c_returns_130_with_the_summary_so_far() -> None:
    fake = Fake()

    def gate(cid: str) -> GateVerdict:
        if cid == "b":
            raise KeyboardInterrupt
        return GateVerdict(True)

    outcome = deploy(federation("sequential", rollback_on_failure=True), Hooks(gate, fake.act, fake.rollback))
    assert outcome.exit_code == 130 and outcome.status == "interrupted"
    assert statuses(outcome.results) == {"a": "deployed", "b": "interrupted", "c": "interrupted"}
    assert outcome.results[2].message == "interrupted before it started"
    assert ("rollback", "a") not in fake.calls  # no more mutations after Ctrl-C


def test_ctrl_c_inside_a_preflight_is_an_interruption_too() -> None:
    fake = Fake()

    def gate(cid: str) -> GateVerdict:  # run_preflight answers 130 when Ctrl-C came during its checks
        return GateVerdict(False, 130, "interrupted") if cid == "b" else GateVerdict(True)

    outcome = deploy(federation("rolling"), Hooks(gate, fake.act, fake.rollback))
    assert outcome.exit_code == 130 and fake.acted() == ["a"]
    assert statuses(outcome.results) == {"a": "deployed", "b": "interrupted", "c": "interrupted"}


# -- the command against the lab --------------------------------------------------------------

FEDERATION = """\
federation:
  name: lab-federation
  clusters:
    - {{id: lab, name: "Lab", role: primary, weight: 50, region: local, priority: 1}}
    - {{id: lab-2, name: "Lab 2", role: secondary, weight: 50, region: local, priority: 2}}
  load_balancing: {{strategy: weighted}}
  deployment:
    mode: {mode}
    wait_for_ready: true
    rollback_on_failure: {rollback}
"""

WORKSPACE = """\
workspace:
  name: {name}
  image: codercom/code-server:4.90.3
  env:
    - name: PASSWORD
      value: s3cret-federation-pw
  ports:
    - {{name: http, containerPort: 8080, protocol: TCP}}
  labels: {{app: code-server}}
"""


def workspace_delays(lab: Any, pending: float, running: float) -> None:
    """How long the lab's operator takes to make a workspace Pending, then Running (default
    0.5 s / 2 s): shorter keeps these tests fast, longer holds a deploy in its wait."""
    for cid in lab.cluster_ids:
        operator = lab.cluster(cid).kube.state.operator
        operator.pending_delay, operator.running_delay = pending, running


@pytest.fixture(scope="module")
def lab2() -> Iterator[Any]:
    from mgn_verify.lab import Lab

    with Lab(clusters=("lab", "lab-2")) as lab:
        workspace_delays(lab, 0.1, 0.3)
        yield lab


@pytest.fixture
def files(tmp_path: Path) -> Callable[..., tuple[str, str]]:
    counter = iter(range(1000))

    def write(mode: str, *, rollback: bool = False, name: str | None = None) -> tuple[str, str]:
        n = next(counter)
        fed, ws = tmp_path / f"federation-{n}.yaml", tmp_path / f"workspace-{n}.yaml"
        fed.write_text(FEDERATION.format(mode=mode, rollback=str(rollback).lower()))
        ws.write_text(WORKSPACE.format(name=name or f"fed-{mode}-{n}-{int(time.time() * 1000) % 100000}"))
        return str(fed), str(ws)

    return write


def run_deploy(mgn: Callable[..., Run], lab: Any, fed: str, ws: str, *args: str) -> Run:
    return mgn("federation", "deploy", fed, ws, "--config", str(lab.config_path), "--interval", "0.1s",
               "--timeout", "20s", *args)


def mutations_since(lab: Any, start: int, cluster: str) -> list[Any]:
    return [r for r in lab.hostapp_requests[start:]
            if r.method in MUTATING and r.path.startswith(f"/api/cluster/{cluster}/")]


@pytest.fixture
def broken_lab2(lab2: Any) -> Iterator[Any]:
    lab2.inject("kubernetes.down", cluster="lab-2")
    try:
        yield lab2
    finally:
        lab2.clear_all()


def _json_summary(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run.stdout)
    return data


def test_lab_simultaneous_deploys_to_every_healthy_cluster(lab2: Any, files: Callable[..., tuple[str, str]],
                                                          mgn: Callable[..., Run]) -> None:
    fed, ws = files("simultaneous")
    run = run_deploy(mgn, lab2, fed, ws, "-o", "json")
    assert run.exit_code == 0, run.stderr
    summary = _json_summary(run)
    assert summary["status"] == "ok" and summary["mode"] == "simultaneous"
    assert {c["cluster"]: (c["status"], c["action"]) for c in summary["clusters"]} == \
        {"lab": ("deployed", "created"), "lab-2": ("deployed", "created")}
    assert "s3cret-federation-pw" not in run.stdout + run.stderr
    assert "load_balancing" in run.stderr  # the note for the ignored section


def test_lab_simultaneous_with_a_broken_cluster_deploys_the_healthy_one(
        broken_lab2: Any, files: Callable[..., tuple[str, str]], mgn: Callable[..., Run], tmp_path: Path) -> None:
    fed, ws = files("simultaneous")
    start = len(broken_lab2.hostapp_requests)
    run = run_deploy(mgn, broken_lab2, fed, ws, "-o", "json", "--json", str(tmp_path / "preflight.json"))
    assert run.exit_code == 1, run.stderr
    rows = {c["cluster"]: c for c in _json_summary(run)["clusters"]}
    assert rows["lab"]["status"] == "deployed"
    assert rows["lab-2"]["status"] == "refused", rows["lab-2"]
    assert rows["lab-2"]["message"].startswith("refused by the preflight gate: kubernetes.")
    # One preflight report per cluster, the refused one with its failures.
    reports = {cid: json.loads((tmp_path / f"preflight.{cid}.json").read_text()) for cid in ("lab", "lab-2")}
    assert {r["status"] for r in reports["lab"]["results"]} == {"pass"}
    assert "fail" in {r["status"] for r in reports["lab-2"]["results"]}
    assert mutations_since(broken_lab2, start, "lab-2") == []
    assert len(mutations_since(broken_lab2, start, "lab")) == 1


def test_lab_sequential_stops_at_the_broken_cluster_and_rolls_back(
        broken_lab2: Any, files: Callable[..., tuple[str, str]], mgn: Callable[..., Run]) -> None:
    fed, ws = files("sequential", rollback=True)
    start = len(broken_lab2.hostapp_requests)
    run = run_deploy(mgn, broken_lab2, fed, ws)
    assert run.exit_code == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["CLUSTER", "PREFLIGHT", "ACTION", "STATUS", "MESSAGE"]
    assert lines[1].split()[:4] == ["lab", "passed", "created", "rolled"]
    assert lines[2].split()[:2] == ["lab-2", "refused"]
    lab_calls = [(r.method, r.path.split("?")[0]) for r in mutations_since(broken_lab2, start, "lab")]
    assert [m for m, _ in lab_calls] == ["POST", "DELETE"]  # created, then rolled back
    assert mutations_since(broken_lab2, start, "lab-2") == []


def test_lab_an_override_is_waived_and_audited_and_the_cluster_still_fails_honestly(
        lab2: Any, files: Callable[..., tuple[str, str]], mgn: Callable[..., Run], tmp_path: Path) -> None:
    fed, ws = files("sequential")
    Path(fed).write_text(Path(fed).read_text().replace("    - {id: lab,", "    # - {id: lab,"))
    lab2.inject("hostapp.no_kubeconfig", cluster="lab-2")  # the Host App lost lab-2's kubeconfig
    try:
        run = run_deploy(mgn, lab2, fed, ws, "-o", "json", "--ignore-preflight-errors", "all",
                         "--reason", "OPS-42 federation drill")
    finally:
        lab2.clear_all()
    assert run.exit_code == 1, run.stderr
    (row,) = _json_summary(run)["clusters"]
    assert (row["cluster"], row["preflight"], row["status"]) == ("lab-2", "waived", "failed"), run.stderr[-2000:]
    assert row["action"] == "create" and row["message"]  # the Host App's refusal, in one line
    audit_log = tmp_path / "home" / ".metaguildnet" / "audit.jsonl"
    audit = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert audit[-1]["reason"] == "OPS-42 federation drill"
    assert "s3cret-federation-pw" not in json.dumps(audit)


def test_lab_dry_run_mutates_nothing_and_redacts_the_body(
        lab2: Any, files: Callable[..., tuple[str, str]], mgn: Callable[..., Run]) -> None:
    fed, ws = files("simultaneous")
    start = len(lab2.hostapp_requests)
    run = run_deploy(mgn, lab2, fed, ws, "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "would POST /api/cluster/lab/workspaces" in run.stdout
    assert "would POST /api/cluster/lab-2/workspaces" in run.stdout
    assert "s3cret-federation-pw" not in run.stdout + run.stderr
    assert [r for r in lab2.hostapp_requests[start:] if r.method in MUTATING] == []


def test_lab_an_existing_workspace_fails_that_cluster_and_is_never_rolled_back(
        lab2: Any, files: Callable[..., tuple[str, str]], mgn: Callable[..., Run]) -> None:
    from mgn_verify.clients.hostapp import HostAppClient
    from mgn_verify.lifecycle.workspaces import WorkspaceSpec, create

    fed, ws = files("sequential", rollback=True, name="fed-existing")
    with HostAppClient(lab2.hostapp.url, ca_bundle=str(lab2.ca.ca_path)) as api:
        create(api, "lab", WorkspaceSpec("fed-existing", "nginx:1.27"))
    start = len(lab2.hostapp_requests)
    run = run_deploy(mgn, lab2, fed, ws, "-o", "yaml")
    assert run.exit_code == 1, run.stderr
    rows = {c["cluster"]: c for c in yaml.safe_load(run.stdout)["clusters"]}
    assert rows["lab"]["status"] == "failed" and "already exists" in rows["lab"]["message"]
    assert rows["lab-2"]["status"] == "skipped"
    assert [r for r in lab2.hostapp_requests[start:] if r.method in MUTATING] == []


@pytest.mark.slow
def test_lab_ctrl_c_while_waiting_exits_130_with_the_summary(
        lab2: Any, files: Callable[..., tuple[str, str]], tmp_path: Path) -> None:
    fed, ws = files("simultaneous", rollback=True)
    Path(fed).write_text(Path(fed).read_text().replace("    - {id: lab-2,", "    # - {id: lab-2,"))
    start = len(lab2.hostapp_requests)
    workspace_delays(lab2, 0.1, 600)  # never Running while the test runs
    env = {**os.environ, "MGN_CONFIG": os.devnull, "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "federation", "deploy", fed, ws, "--config",
                             str(lab2.config_path), "--interval", "0.1s", "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_until(lambda: len([r for r in lab2.hostapp_requests[start:] if r.method == "POST"]) == 1,
                   timeout=20, what="the create")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        workspace_delays(lab2, 0.1, 0.3)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["status"] == "interrupted"
    (row,) = summary["clusters"]
    assert row["status"] == "interrupted" and "may exist" in row["message"]
    # No rollback after Ctrl-C: the user interrupted, nothing more is sent.
    assert [r for r in lab2.hostapp_requests[start:] if r.method == "DELETE"] == []


def test_usage_errors_name_the_file_and_key(tmp_path: Path, mgn: Callable[..., Run]) -> None:
    fed = tmp_path / "fed.yaml"
    fed.write_text(textwrap.dedent("""\
        federation:
          clusters: [{id: a}]
          deployment: {mode: parallel}
    """))
    ws = tmp_path / "ws.yaml"
    ws.write_text("workspace: {name: w, image: nginx}\n")
    run = mgn("federation", "deploy", str(fed), str(ws))
    assert run.exit_code == 2
    assert run.stderr.startswith("mgn: error: ") and "fed.yaml: federation.deployment.mode" in run.stderr
    ws.write_text("workspace: {name: w}\n")
    fed.write_text("federation: {clusters: [{id: a}]}\n")
    run = mgn("federation", "deploy", str(fed), str(ws))
    assert run.exit_code == 2 and "ws.yaml: " in run.stderr and "workspace.image" in run.stderr
    assert "Traceback" not in run.stderr


def test_help_documents_modes_and_exit_codes(mgn: Callable[..., Run]) -> None:
    run = mgn("federation", "deploy", "--help")
    assert run.exit_code == 0
    for word in ("simultaneous", "sequential", "rolling", "rollback_on_failure", "Exit codes", "130"):
        assert word in run.stdout

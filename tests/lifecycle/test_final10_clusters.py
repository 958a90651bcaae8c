"""Final review of ``mgn cluster`` and ``mgn install`` (issue 10): the gate runs before the Host
App is asked anything (and for exactly the kubeconfig/cluster acted on), an ambiguous name is one
usage error naming the ids, and messages go to stderr (stdout carries data only)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mgn_verify.cli import cli
from mgn_verify.clients.hostapp import HostAppClient
from mgn_verify.lab import Lab
from tests.helpers import REPO, Run
from tests.lifecycle.helpers import error_line, mgn

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
PULL = "?action=kubeconfig"  # the Host App hands out a stored kubeconfig (a credential) on this POST


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def kubeconfig(lab: Lab) -> str:
    return str(lab.workdir / "kubeconfig.yaml")


def api(lab: Lab) -> HostAppClient:
    return HostAppClient(lab.hostapp.url, ca_bundle=str(lab.ca.ca_path))


def writes(lab: Lab, since: int) -> list[tuple[str, str]]:
    """Mutating requests and kubeconfig pulls since ``since``."""
    return [(r.method, r.path) for r in lab.hostapp_requests[since:] if r.method in MUTATING]


def template(tmp_path: Path, cluster: dict[str, Any], name: str = "cluster.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"cluster": cluster}))
    return str(path)


# -- 1. bootstrap: the gate first -------------------------------------------------------------------


def test_bootstrap_with_the_host_app_down_is_refused_by_its_gate_with_a_report(lab: Lab, tmp_path: Path) -> None:
    report = tmp_path / "preflight.json"
    lab.inject("hostapp.down")
    try:
        run = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab), "--name", "down", "--json", str(report))
    finally:
        lab.clear("hostapp.down")
    assert run.exit_code in (1, 3), run.stderr
    assert json.loads(report.read_text())["summary"]["exit_code"] == run.exit_code


def test_bootstrap_without_a_name_pulls_no_kubeconfig_when_refused(lab: Lab, tmp_path: Path) -> None:
    before = len(lab.hostapp_requests)
    lab.inject("kubernetes.down")
    try:
        run = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab))
    finally:
        lab.clear("kubernetes.down")
    assert run.exit_code in (1, 3), run.stderr
    assert writes(lab, before) == []  # not even the read-only POST ?action=kubeconfig


def test_bootstrap_without_a_name_still_finds_the_registered_kubeconfig(lab: Lab) -> None:
    run = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab), "-o", "json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout) == {"id": "lab", "name": "lab"}
    assert "already registered (id lab); nothing to do" in run.stderr


# -- 2. apply: the gate checks the kubeconfig that gets attached ------------------------------------


def test_apply_with_an_inline_kubeconfig_gates_that_kubeconfig(lab: Lab, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the gate's copy goes (and must leave)
    dead = Path(kubeconfig(lab)).read_text().replace(lab.kube.url, "https://127.0.0.1:1")
    assert dead != Path(kubeconfig(lab)).read_text()
    before = len(lab.hostapp_requests)
    refused = mgn(lab, "cluster", "apply", "-f", template(tmp_path, {"name": "inline-dead", "kubeconfig": dead}))
    assert refused.exit_code in (1, 3), refused.stdout + refused.stderr
    assert writes(lab, before) == []
    live = Path(kubeconfig(lab)).read_text()
    ok = mgn(lab, "cluster", "apply", "-f", template(tmp_path, {"name": "inline-live", "kubeconfig": live}),
             "--set", f"kubernetes.kubeconfig={tmp_path / 'missing.yaml'}", "--dry-run")
    assert ok.exit_code == 0, ok.stderr
    assert "would POST /api/deploy/clusters" in ok.stdout
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".yaml"] == []  # the gate's copy is gone
    assert lab.kube_token not in ok.stdout + ok.stderr + refused.stdout + refused.stderr


# -- 3. one name-lookup rule: id first, then name; several of a name is ambiguous ----------------


@pytest.fixture(scope="module")
def twins(lab: Lab) -> list[str]:
    text = Path(kubeconfig(lab)).read_text()
    with api(lab) as client:
        return [client.bootstrap(text, name="twin", allow_duplicate=True) for _ in range(2)]


@pytest.mark.parametrize("command", [
    ("cluster", "get", "twin"),
    ("cluster", "status", "twin"),
    ("cluster", "delete", "twin"),
    ("cluster", "bootstrap", "--kubeconfig", "KUBECONFIG", "--name", "twin"),
    ("cluster", "apply", "-f", "TEMPLATE"),
])
def test_an_ambiguous_name_is_one_usage_error_naming_the_ids(lab: Lab, twins: list[str], tmp_path: Path,
                                                           command: tuple[str, ...]) -> None:
    args = [kubeconfig(lab) if a == "KUBECONFIG" else template(tmp_path, {"name": "twin"}) if a == "TEMPLATE" else a
            for a in command]
    before = len(lab.hostapp_requests)
    run = mgn(lab, *args)
    assert run.exit_code == 2, run.stdout + run.stderr
    line = error_line(run)
    assert "'twin' is ambiguous" in line and all(cluster_id in line for cluster_id in twins), line
    assert writes(lab, before) == [] and run.stdout == ""


def test_an_id_wins_over_a_name(lab: Lab, twins: list[str]) -> None:
    got = mgn(lab, "cluster", "get", twins[0], "-o", "json")
    assert got.exit_code == 0, got.stderr
    assert json.loads(got.stdout)["id"] == twins[0]


# -- 4. install gates the cluster it installs onto -------------------------------------------------


def test_install_gates_exactly_the_cluster_it_acts_on(lab: Lab, tmp_path: Path) -> None:
    config = yaml.safe_load(lab.config_path.read_text())
    config.pop("defaults")
    config["clusters"] = [
        {"id": "lab", "kubeconfig": kubeconfig(lab), "context": "mgn-lab"},
        {"id": "elsewhere", "kubeconfig": str(tmp_path / "missing.yaml")},  # not acted on: not gated
    ]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(config))
    report = tmp_path / "install.json"
    result = CliRunner().invoke(cli, ["install", "--dry-run", "--json", str(report), "--config", str(path)])
    run = Run(result.exit_code, result.stdout, result.stderr, None)
    assert run.exit_code == 0, run.stderr
    assert json.loads(report.read_text())["gate"]["clusters"] == ["lab"]


# -- 5. one placeholder image constant -------------------------------------------------------------


def test_the_placeholder_operator_image_is_one_constant() -> None:
    from mgn_verify.builtin import mgn_add_settings
    from mgn_verify.config import SettingsRegistry
    from mgn_verify.lifecycle.manifests import PLACEHOLDER_OPERATOR_IMAGE, InstallSettings

    registry = SettingsRegistry()
    mgn_add_settings(registry)
    setting = registry.get("install.operator_image")
    assert setting is not None and setting.default == PLACEHOLDER_OPERATOR_IMAGE
    assert InstallSettings().operator_image == PLACEHOLDER_OPERATOR_IMAGE
    literal = f'"{PLACEHOLDER_OPERATOR_IMAGE}"'
    assert literal not in (REPO / "mgn_verify/cli/install_cmd.py").read_text()
    assert (REPO / "mgn_verify/lifecycle/manifests.py").read_text().count(literal) == 1


# -- 6. messages on stderr, data on stdout ---------------------------------------------------------


def test_delete_and_unchanged_apply_print_messages_on_stderr(lab: Lab, tmp_path: Path) -> None:
    unchanged = mgn(lab, "cluster", "apply", "-f", template(tmp_path, {"name": "lab"}), "--dry-run")
    assert unchanged.exit_code == 0, unchanged.stderr
    assert unchanged.stdout == "" and "cluster lab: unchanged" in unchanged.stderr
    created = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab), "--name", "gone", "-o", "json")
    cluster_id = json.loads(created.stdout)["id"]
    deleted = mgn(lab, "cluster", "delete", "gone")
    assert deleted.exit_code == 0, deleted.stderr
    assert deleted.stdout == "" and f"cluster gone ({cluster_id}) deleted" in deleted.stderr


def test_install_table_has_only_the_table_on_stdout(lab: Lab) -> None:
    run = mgn(lab, "install")
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "ACTION", "READY"] and len(lines) == 10  # header + 9 objects
    assert "cluster 'lab': already registered as lab" in run.stderr

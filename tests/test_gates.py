"""Preflight gates: membership from check metadata and config (with provenance), unknown gates,
``mgn gate list/show``, ``mgn verify --gate``, ``explain``/``list`` showing gates, and checks
that cannot be waived."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mgn_verify import check
from mgn_verify._collect import specs_from_function
from mgn_verify.lab import Lab
from tests.helpers import ISOLATED, Run

GATED = """
    from mgn_verify import check

    @check(id="acme.base")
    def check_base():
        pass

    @check(id="acme.quota", requires="acme.base", gates=["workspace.create", "workspace.delete"])
    def check_quota():
        pass

    @check(id="acme.other")
    def check_other():
        pass

    @check(id="acme.vital", gates="workspace.create", waivable=False)
    def check_vital():
        assert False, "the vital thing is broken"
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def lab_config(lab: Lab, tmp_path: Path, checks_dir: Callable[..., Path]) -> Callable[..., str]:
    """``lab_config(gates={...}, clusters=[...])``: the lab's config plus our checks and these keys."""
    directory = checks_dir(check_acme=GATED)

    def write(**extra: Any) -> str:
        data = yaml.safe_load(lab.config_path.read_text())
        data["verify"] = {"checks_dirs": [str(directory)]}
        data.update(extra)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return write


def test_the_decorator_carries_gates_and_waivable_into_the_spec() -> None:
    @check(id="x.y", gates="install")
    def one() -> None: ...

    @check(id="x.z", gates=["install", "workspace.create"], waivable=False)
    def two() -> None: ...

    [first], [second] = specs_from_function(one, "p"), specs_from_function(two, "p")
    assert (first.gates, first.waivable) == (("install",), True)
    assert (second.gates, second.waivable) == (("install", "workspace.create"), False)
    with pytest.raises(TypeError):
        check(id="x.w", gates=[1])  # type: ignore[list-item]


def test_verify_gate_runs_the_members_and_their_dependencies_only(mgn: Callable[..., Run],
                                                                  checks_dir: Callable[..., Path]) -> None:
    directory = str(checks_dir(check_acme=GATED))
    run = mgn("verify", "--gate", "workspace.delete", "--checks-dir", directory, *ISOLATED)
    assert run.exit_code == 0, run.stderr
    assert run.statuses == {"acme.base": "pass", "acme.quota": "pass"}
    refused = mgn("verify", "--gate", "workspace.create", "--checks-dir", directory, *ISOLATED,
                  "--ignore-preflight-errors", "all")
    assert refused.exit_code == 1
    vital = refused.result("acme.vital")
    assert vital["status"] == "fail" and "not waivable" in vital["message"] and vital["waiver"] is None
    assert refused.statuses["acme.quota"] == "pass" and "acme.other" not in refused.statuses


def test_a_configured_waiver_cannot_waive_a_check_that_is_not_waivable(mgn: Callable[..., Run],
                                                                        checks_dir: Callable[..., Path]) -> None:
    directory = str(checks_dir(check_acme=GATED))
    run = mgn("verify", "--check", "acme.vital", "--checks-dir", directory, *ISOLATED,
              "--set", 'verify.waivers=[{"id": "acme.vital", "reason": "later"}]')
    assert run.exit_code == 1
    assert "not waivable: a configured waiver 'acme.vital'" in run.result("acme.vital")["message"]


def test_verify_gate_with_an_unknown_name_or_layers_is_a_usage_error(mgn: Callable[..., Run],
                                                                     checks_dir: Callable[..., Path]) -> None:
    directory = str(checks_dir(check_acme=GATED))
    unknown = mgn("verify", "--gate", "workspace.creat", "--checks-dir", directory, *ISOLATED)
    assert unknown.exit_code == 2
    assert "unknown gate 'workspace.creat' (did you mean 'workspace.create'?)" in unknown.stderr
    both = mgn("verify", "acme", "--gate", "workspace.create", "--checks-dir", directory, *ISOLATED)
    assert both.exit_code == 2 and "leave out the layer names" in both.stderr


def test_gate_show_names_where_each_member_came_from(mgn: Callable[..., Run], lab_config: Callable[..., str]) -> None:
    config = lab_config(gates={"workspace.create": {"add": ["acme.other"], "remove": ["kubernetes.operator"]}})
    run = mgn("gate", "show", "workspace.create", "--config", config, "-o", "json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    via = {c["id"]: c["via"] for c in data["checks"]}
    assert via["acme.quota"].startswith("check metadata (plugin ") and "check_acme.py" in via["acme.quota"]
    assert via["acme.other"] == f"config {config} key gates.workspace.create.add"
    assert via["kubernetes.crds[lab]"].startswith("check metadata (plugin kubernetes, file ")
    assert "kubernetes.operator[lab]" not in via
    assert data["removed"] == [{"id": "kubernetes.operator[lab]",
                                "via": f"config {config} key gates.workspace.create.remove"}]
    assert {"id": "acme.base", "required_by": ["acme.quota"]} in data["dependencies"]
    table = mgn("gate", "show", "workspace.create", "--config", config)
    assert table.exit_code == 0 and table.stdout.splitlines()[1].split() == ["CHECK", "WHY"]
    assert "required by acme.quota" in table.stdout and "removed by config" in table.stdout


def test_gate_list_shows_builtin_and_config_defined_gates(mgn: Callable[..., Run],
                                                          lab_config: Callable[..., str]) -> None:
    config = lab_config(gates={"nightly.backup": {"add": ["acme.*"]}, "workspace.creat": {"remove": ["x"]}})
    run = mgn("gate", "list", "--config", config, "-o", "json")
    assert run.exit_code == 0, run.stderr
    gates = {g["name"]: g for g in json.loads(run.stdout)}
    assert list(gates)[:7] == ["install", "cluster.bootstrap", "cluster.apply", "cluster.delete",
                               "workspace.create", "workspace.delete", "federation.deploy"]
    assert gates["nightly.backup"]["origin"] == f"config {config}"
    assert set(gates["nightly.backup"]["checks"]) == {"acme.base", "acme.quota", "acme.other", "acme.vital"}
    assert "workspace.creat" not in gates
    assert "gates.workspace.creat: unknown gate (did you mean 'workspace.create'?)" in run.stderr
    assert "guildnet.hostapp.reachable" in gates["cluster.delete"]["checks"]
    install = set(gates["install"]["checks"])
    assert "kubernetes.storage.default_class[lab]" in install and "system.swap" in install
    assert not {"kubernetes.crds[lab]", "kubernetes.operator[lab]"} & install
    table = mgn("gate", "list", "--config", config)
    assert table.stdout.split()[:4] == ["GATE", "CHECKS", "ORIGIN", "DESCRIPTION"]


def test_a_malformed_gates_entry_is_a_config_error(mgn: Callable[..., Run], lab_config: Callable[..., str]) -> None:
    run = mgn("gate", "list", "--config", lab_config(gates={"install": {"ad": ["x"]}}))
    assert run.exit_code == 2
    assert "gates.install" in run.stderr and "'ad'" in run.stderr and "did you mean 'add'" in run.stderr


def test_gate_show_unknown_gate_and_a_cluster_without_kubeconfig(mgn: Callable[..., Run], lab: Lab,
                                                                 lab_config: Callable[..., str]) -> None:
    kubeconfig = yaml.safe_load(lab.config_path.read_text())["kubernetes"]["kubeconfig"]
    config = lab_config(clusters=[{"id": "lab", "kubeconfig": kubeconfig}, "far"])
    unknown = mgn("gate", "show", "workspace.creat", "--config", config)
    assert unknown.exit_code == 2 and "did you mean 'workspace.create'" in unknown.stderr
    run = mgn("gate", "show", "workspace.create", "--cluster", "far", "--config", config, "-o", "json")
    ids = {c["id"] for c in json.loads(run.stdout)["checks"]}
    assert "guildnet.cluster.registered[far]" in ids and not any(i.startswith("kubernetes.") for i in ids)
    table = mgn("gate", "show", "workspace.create", "--cluster", "far", "--config", config)
    assert "cluster 'far' has no local kubeconfig" in table.stdout


def test_explain_and_list_show_gates_and_waivability(mgn: Callable[..., Run], checks_dir: Callable[..., Path]) -> None:
    directory = str(checks_dir(check_acme=GATED))
    explained = mgn("verify", "explain", "acme.vital", "--checks-dir", directory, *ISOLATED)
    assert explained.exit_code == 0
    assert "gates:       workspace.create" in explained.stdout
    assert "workspace.create: check metadata (plugin " in explained.stdout
    assert "waivable:    no" in explained.stdout
    other = mgn("verify", "explain", "acme.other", "--checks-dir", directory, *ISOLATED).stdout
    assert "gates:       (none)" in other and "waivable:    yes" in other
    rows = {r["id"]: r for r in json.loads(mgn("verify", "list", "--json", "--checks-dir", directory,
                                                 *ISOLATED).stdout)}
    assert rows["acme.quota"]["gates"] == ["workspace.create", "workspace.delete"]
    assert (rows["acme.vital"]["waivable"], rows["acme.other"]["gates"]) == (False, [])


def test_a_plugin_gate_is_listed_and_a_typo_of_a_builtin_one_is_a_warning(mgn: Callable[..., Run],
                                                                          checks_dir: Callable[..., Path]) -> None:
    directory = str(checks_dir(check_own="""
        from mgn_verify import check

        @check(id="own.a", gates=["own.nightly", "workspace.creat"])
        def check_a():
            pass
    """))
    run = mgn("verify", "--gate", "own.nightly", "--checks-dir", directory, *ISOLATED)
    assert run.exit_code == 0 and run.statuses == {"own.a": "pass"}
    assert "check own.a joins gate 'workspace.creat', which is not built in (did you mean 'workspace.create'?)" \
        in run.stderr

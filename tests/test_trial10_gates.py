"""Trial findings on the gates (issue 10): a non-waivable member cannot be removed by config
(and the report lists what config removed), a config gate that looks like a typo is warned
about, config ignore lists are recorded as config, ``gate show`` and ``explain`` say what is
true, a target cluster without a local kubeconfig is warned about, and an unknown target cluster
is gated (through the Host App) instead of being a usage error."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mgn_verify.lab import Lab
from mgn_verify.lifecycle.context import CommandContext
from mgn_verify.lifecycle.preflight import Preflight, PreflightOutcome, run_preflight
from tests.helpers import ISOLATED, REPORT_SCHEMA, Run, statuses

QUOTA = """
    from mgn_verify import check

    @check(id="acme.quota", gates=["workspace.create"], waivable=False)
    def check_quota():
        pass
"""
KUBE_MEMBERS = ("kubernetes.api.readyz", "kubernetes.nodes.ready", "kubernetes.crds", "kubernetes.operator")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def write_config(lab: Lab, tmp_path: Path, checks_dir: Callable[..., Path]) -> Callable[..., Path]:
    """The lab's config with the acme.quota plugin and these top-level keys."""
    directory = checks_dir(check_quota=QUOTA)

    def write(**extra: Any) -> Path:
        data = yaml.safe_load(lab.config_path.read_text())
        data["verify"] = {"checks_dirs": [str(directory)], **extra.pop("verify", {})}
        data.update(extra)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


@pytest.fixture
def env_only(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A CI setup: the Host App through MGN_API_URL/MGN_API_TOKEN, no kubeconfig, no cluster."""
    api = yaml.safe_load(lab.config_path.read_text())["api"]
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("MGN_DEFAULT_CLUSTER", raising=False)
    monkeypatch.setenv("MGN_API_TOKEN", api["token"])

    def write(url: str | None = None) -> Path:
        monkeypatch.setenv("MGN_API_URL", url or api["base_url"])
        path = tmp_path / "env-only.yaml"
        path.write_text(yaml.safe_dump({"api": {"ca_bundle": api["ca_bundle"]}}))
        return path

    return write


def preflight(config: Path, tmp_path: Path, *, clusters: tuple[str, ...] = ("lab",),
              **fields: Any) -> PreflightOutcome:
    settings = {"audit.path": (str(tmp_path / "audit.jsonl"), False)}
    ctx = CommandContext(str(config), settings, argv=["mgn", "workspace", "create", *clusters])
    request = {"gate": "workspace.create", "clusters": clusters, "command": "workspace create",
               "json_path": str(tmp_path / "preflight.json"), **fields}
    return run_preflight(Preflight(**request), ctx)


def report(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "preflight.json").read_text())
    jsonschema.validate(data, json.loads(REPORT_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())
    return data


# -- 1. config cannot remove a check declared not waivable; the report lists what it removed ----------


def test_config_cannot_remove_a_non_waivable_member_and_the_report_lists_removals(
        write_config: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(gates={"workspace.create": {"remove": ["acme.quota", "kubernetes.operator"]}})
    outcome = preflight(config, tmp_path)
    err = capsys.readouterr().err
    assert outcome.proceed, err
    assert (f"mgn: warning: config {config} key gates.workspace.create.remove: cannot remove acme.quota from "
            "workspace.create: it is declared not waivable") in err
    data = report(tmp_path)
    assert statuses(data)["acme.quota"] == "pass" and "kubernetes.operator[lab]" not in statuses(data)
    assert data["gate"]["removed"] == [{"id": "kubernetes.operator[lab]",
                                        "by": f"config {config} key gates.workspace.create.remove"}]


# -- 2. a config-defined gate close to a known one -------------------------------------------------------


def test_a_config_gate_close_to_a_known_gate_is_warned_about(mgn: Callable[..., Run],
                                                             write_config: Callable[..., Path]) -> None:
    config = write_config(gates={"workspace.craete": {"add": ["acme.quota"]}, "nightly.backup": {"add": ["acme.*"]}})
    run = mgn("gate", "list", "--config", str(config))
    assert run.exit_code == 0, run.stderr
    assert (f"mgn: warning: config {config}: gates.workspace.craete defines a new gate (did you mean "
            "'workspace.create'?)") in run.stderr
    assert "nightly.backup" not in run.stderr


# -- 3. verify.ignore_preflight_errors is recorded as config, the flag as the flag -----------------------


@pytest.fixture
def broken(lab: Lab) -> Iterator[None]:
    lab.inject("hostapp.no_kubeconfig")
    yield
    lab.clear("hostapp.no_kubeconfig")


def test_a_configured_ignore_list_is_recorded_as_config_not_as_the_flag(
        write_config: Callable[..., Path], tmp_path: Path, broken: None, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(verify={"ignore_preflight_errors": ["guildnet.cluster.*"]})
    outcome = preflight(config, tmp_path)
    err = capsys.readouterr().err
    assert outcome.proceed and outcome.overrides, err
    label = f"config {config} key verify.ignore_preflight_errors guildnet.cluster.*"
    assert {o["waiver"] for o in outcome.overrides} == {label}
    assert "--ignore-preflight-errors" not in err and f"waived: config {config} key" in err
    [line] = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert "--ignore-preflight-errors" not in json.dumps(line)
    flag = preflight(write_config(), tmp_path, ignore=("guildnet.cluster.*",), reason="OPS-1")
    assert {o["waiver"] for o in flag.overrides} == {"--ignore-preflight-errors guildnet.cluster.*"}


# -- 4./6. a cluster without a local kubeconfig -----------------------------------------------------------


def test_gate_show_says_no_kubeconfig_only_when_there_is_none(mgn: Callable[..., Run],
                                                              write_config: Callable[..., Path]) -> None:
    config = write_config(gates={"workspace.create": {"remove": ["kubernetes.*"]}})
    run = mgn("gate", "show", "workspace.create", "--cluster", "lab", "--config", str(config))
    assert run.exit_code == 0, run.stderr
    assert "no local kubeconfig" not in run.stdout + run.stderr


def test_a_target_without_a_local_kubeconfig_is_warned_about_and_noted_in_the_report(
        env_only: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = preflight(env_only(), tmp_path)
    err = capsys.readouterr().err
    assert outcome.proceed, err
    [warning] = [line for line in err.splitlines() if "no local kubeconfig" in line]
    assert warning.startswith("mgn: warning: ") and all(m in warning for m in KUBE_MEMBERS)
    assert "clusters: [{id: lab, kubeconfig: PATH}]" in warning and "defaults.cluster" in warning
    data = report(tmp_path)
    assert data["gate"]["notes"] == [warning.removeprefix("mgn: warning: ")]
    assert not any(cid.startswith("kubernetes.") for cid in statuses(data))


# -- 5. explain of a plugin check declared not waivable ---------------------------------------------------


def test_explain_words_a_plugin_checks_waivability_generically(mgn: Callable[..., Run],
                                                               checks_dir: Callable[..., Path]) -> None:
    directory = str(checks_dir(check_quota=QUOTA))
    run = mgn("verify", "explain", "acme.quota", "--checks-dir", directory, *ISOLATED)
    assert run.exit_code == 0, run.stderr
    assert "waivable:    no (declared not waivable by its check" in run.stdout
    assert "could only fail" not in run.stdout


# -- 7. a target cluster neither configured nor discovered is gated, not a usage error -------------------


def test_an_unknown_target_with_the_host_app_down_is_refused_by_the_gate(
        env_only: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = preflight(env_only("https://127.0.0.1:9"), tmp_path)
    err = capsys.readouterr().err
    assert (outcome.proceed, outcome.exit_code) == (False, 1), err
    assert "not a known cluster" not in err
    assert statuses(report(tmp_path))["guildnet.hostapp.reachable"] == "fail"


def test_an_unknown_target_with_the_host_app_up_fails_registered(
        env_only: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = preflight(env_only(), tmp_path, clusters=("nowhere",))
    err = capsys.readouterr().err
    assert (outcome.proceed, outcome.exit_code) == (False, 1), err
    result = {r["id"]: r for r in report(tmp_path)["results"]}["guildnet.cluster.registered[nowhere]"]
    assert result["status"] == "fail" and "not registered" in result["message"]


def test_verify_cluster_typo_stays_a_usage_error(mgn: Callable[..., Run], env_only: Callable[..., Path]) -> None:
    run = mgn("verify", "guildnet", "--cluster", "lba", "--config", str(env_only()))
    assert run.exit_code == 2
    assert "--cluster 'lba' is not a known cluster (did you mean 'lab'?)" in run.stderr


def test_workspace_create_with_the_host_app_down_is_refused_not_a_usage_error(
        mgn: Callable[..., Run], env_only: Callable[..., Path]) -> None:
    run = mgn("workspace", "create", "lab", "--name", "w1", "--image", "nginx", "--config",
              str(env_only("https://127.0.0.1:9")))
    assert run.exit_code == 1, run.stderr
    assert "not a known cluster" not in run.stderr and "guildnet.hostapp.reachable" in run.stderr
    assert "preflight workspace.create [lab]: refused" in run.stderr

"""``mgn cluster …`` against the lab: the Host App's request log (and what it stores) is the
witness. Registering is idempotent by name; nothing is sent when a gate refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mgn_verify.cli import cli
from mgn_verify.clients.hostapp import HostAppClient
from mgn_verify.lab import Lab
from tests.lifecycle.helpers import mgn

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
READ_ONLY_POST = "?action=kubeconfig"  # the Host App serves the stored kubeconfig on a POST only


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """One healthy lab; the tests that register clusters use names of their own."""
    with Lab() as running:
        yield running


def mutations(lab: Lab, since: int) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in lab.hostapp_requests[since:]
            if r.method in MUTATING and not r.path.endswith(READ_ONLY_POST)]


def kubeconfig(lab: Lab) -> str:
    return str(lab.workdir / "kubeconfig.yaml")


def api(lab: Lab) -> HostAppClient:
    return HostAppClient(lab.hostapp.url, ca_bundle=str(lab.ca.ca_path))


def records(lab: Lab) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(mgn(lab, "cluster", "list", "-o", "json").stdout)
    return rows


def template(tmp_path: Path, cluster: dict[str, Any]) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"cluster": cluster}))
    return str(path)


# -- read-only ------------------------------------------------------------------------------------


def test_list_shows_records_and_health(lab: Lab) -> None:
    table = mgn(lab, "cluster", "list")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATE", "HEALTH"]
    assert ["lab", "lab", "imported", "ok"] in [line.split() for line in lines[1:]]
    as_json = mgn(lab, "cluster", "list", "--format", "json")
    rows = json.loads(as_json.stdout)
    assert isinstance(rows, list)
    assert {"id": "lab", "name": "lab", "state": "imported", "health": {"status": "ok"}} in rows
    assert yaml.safe_load(mgn(lab, "cluster", "list", "-o", "yaml").stdout) == rows


def test_get_defaults_to_yaml_and_finds_by_name(lab: Lab) -> None:
    got = mgn(lab, "cluster", "get", "lab")
    assert got.exit_code == 0 and yaml.safe_load(got.stdout) == {"id": "lab", "name": "lab", "state": "imported"}
    assert json.loads(mgn(lab, "cluster", "get", "lab", "-o", "json").stdout)["id"] == "lab"
    missing = mgn(lab, "cluster", "get", "nowhere")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("mgn: error: cluster 'nowhere' is not registered in the Host App")


def test_status_of_a_usable_and_an_unusable_cluster(lab: Lab) -> None:
    ok = mgn(lab, "cluster", "status", "lab", "-o", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["k8sReachable"] is True
    assert any(r.path == "/api/cluster/lab/status" for r in lab.hostapp_requests)
    assert not any(r.path == "/api/cluster/lab/health" for r in lab.hostapp_requests)  # the dead route
    with api(lab) as client:
        client.register_cluster("no-kubeconfig")  # a record without a kubeconfig
    bad = mgn(lab, "cluster", "status", "no-kubeconfig")
    assert bad.exit_code == 1
    assert "recommendedAction  attach_kubeconfig" in bad.stdout
    assert bad.stderr.strip() == ("mgn: error: cluster 'no-kubeconfig' is not usable: no usable kubeconfig; "
                                  "fix: attach its kubeconfig: mgn cluster apply -f cluster.yaml --kubeconfig PATH")


def test_help_documents_the_exit_codes() -> None:
    for command in ("list", "get", "status", "bootstrap", "apply", "delete"):
        result = CliRunner().invoke(cli, ["cluster", command, "--help"])
        assert result.exit_code == 0 and "Exit codes:" in result.stdout, command


# -- bootstrap ------------------------------------------------------------------------------------


def test_bootstrap_posts_the_kubeconfig_raw_once(lab: Lab) -> None:
    before = len(lab.hostapp_requests)
    run = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab), "--name", "boot-1", "-o", "json")
    assert run.exit_code == 0, run.stderr
    cluster_id = json.loads(run.stdout)["id"]
    assert mutations(lab, before) == [("POST", "/api/bootstrap", 200)]  # no settings PUT
    with api(lab) as client:
        assert client.cluster_kubeconfig(cluster_id) == Path(kubeconfig(lab)).read_text()  # raw, not base64
    again = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab), "--name", "boot-1")
    assert again.exit_code == 0
    assert f"cluster 'boot-1' is already registered (id {cluster_id}); nothing to do" in again.stderr
    assert [r["name"] for r in records(lab)].count("boot-1") == 1


def test_bootstrap_dry_run_hides_the_kubeconfig(lab: Lab) -> None:
    before = len(lab.hostapp_requests)
    run = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab), "--name", "boot-dry", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.strip() == 'would POST /api/bootstrap {"cluster":{"kubeconfig":"***","name":"boot-dry"}}'
    assert lab.kube_token not in run.stdout + run.stderr
    assert mutations(lab, before) == []


def test_bootstrap_of_a_missing_file_is_a_usage_error(lab: Lab, tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    run = mgn(lab, "cluster", "bootstrap", "--kubeconfig", str(missing))
    assert run.exit_code == 2 and run.stderr.strip() == f"mgn: error: --kubeconfig {missing}: no such file"


# -- apply ----------------------------------------------------------------------------------------


def test_apply_registers_attaches_waits_and_twice_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    file = template(tmp_path, {"name": "east", "namespace": "guildnet-system", "settings": {"prefer_pod_proxy": True},
                               "ingress": {"domain": "example.org", "class_name": "nginx"}})
    before = len(lab.hostapp_requests)
    first = mgn(lab, "cluster", "apply", "-f", file, "--kubeconfig", kubeconfig(lab), "--wait", "20s", "-o", "json")
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["changes"] == ["register", "attach kubeconfig"]
    assert mutations(lab, before) == [
        ("POST", "/api/deploy/clusters", 202),
        ("POST", f"/api/deploy/clusters/{result['id']}?action=attach-kubeconfig", 200),
    ]
    warning = next(line for line in first.stderr.splitlines() if line.startswith("mgn: warning:"))
    for key in ("cluster.namespace", "cluster.settings.prefer_pod_proxy", "cluster.ingress.domain",
                "cluster.ingress.class_name"):
        assert key in warning
    assert "example.org" not in warning and "guildnet-system" not in warning
    assert not any(r.method == "PUT" for r in lab.hostapp_requests)
    assert json.loads(mgn(lab, "cluster", "status", result["id"], "-o", "json").stdout)["k8sReachable"] is True

    before = len(lab.hostapp_requests)
    second = mgn(lab, "cluster", "apply", "-f", file, "--kubeconfig", kubeconfig(lab), "-o", "json")
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout) == {"id": result["id"], "name": "east", "changes": ["unchanged"]}
    assert mutations(lab, before) == []


def test_apply_compares_kubeconfigs_by_what_they_reach(lab: Lab, tmp_path: Path) -> None:
    # The Host App stores the lab's kubeconfig with its CA embedded; the config's file names the
    # CA by path. Same server, same CA, same token: nothing to attach.
    file = template(tmp_path, {"name": "lab"})
    before = len(lab.hostapp_requests)
    run = mgn(lab, "cluster", "apply", "-f", file)
    assert run.exit_code == 0, run.stderr
    assert run.stdout.split("\n")[1].split() == ["lab", "lab", "unchanged"]
    assert mutations(lab, before) == []


def test_apply_dry_run_and_bad_templates(lab: Lab, tmp_path: Path) -> None:
    file = template(tmp_path, {"name": "west", "kubeconfig": kubeconfig(lab)})
    before = len(lab.hostapp_requests)
    dry = mgn(lab, "cluster", "apply", "-f", file, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        'would POST /api/deploy/clusters {"name":"west"}',
        'would POST /api/deploy/clusters/{id}?action=attach-kubeconfig {"kubeconfig":"***"}',
    ]
    assert mutations(lab, before) == [] and "west" not in [r["name"] for r in records(lab)]
    typo = mgn(lab, "cluster", "apply", "-f", template(tmp_path, {"name": "x", "ingres": {}}))
    assert typo.exit_code == 2 and "unknown key cluster.ingres" in typo.stderr
    nameless = mgn(lab, "cluster", "apply", "-f", template(tmp_path, {"namespace": "x"}))
    assert nameless.exit_code == 2 and "cluster.name must be a non-empty string" in nameless.stderr


# -- delete ---------------------------------------------------------------------------------------


def test_delete_removes_the_record_and_says_the_credential_stays(lab: Lab) -> None:
    created = mgn(lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(lab), "--name", "doomed", "-o", "json")
    cluster_id = json.loads(created.stdout)["id"]
    before = len(lab.hostapp_requests)
    run = mgn(lab, "cluster", "delete", "doomed")
    assert run.exit_code == 0, run.stderr
    assert mutations(lab, before) == [("DELETE", f"/api/deploy/clusters/{cluster_id}", 200)]
    assert "keeps the cluster's kubeconfig credential" in run.stderr
    assert cluster_id not in [r["id"] for r in records(lab)]
    before = len(lab.hostapp_requests)
    missing = mgn(lab, "cluster", "delete", "doomed")
    assert missing.exit_code == 1 and "is not registered in the Host App" in missing.stderr
    assert mutations(lab, before) == []


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["kubernetes.down", "kubernetes.readyz_failing"])
def test_bootstrap_is_refused_and_sends_nothing(mgn_lab: Lab, tmp_path: Path, fault: str) -> None:
    mgn_lab.inject(fault)
    report = tmp_path / "preflight.json"
    before = len(mgn_lab.hostapp_requests)
    run = mgn(mgn_lab, "cluster", "bootstrap", "--kubeconfig", kubeconfig(mgn_lab), "--name", "refused",
              "--json", str(report))
    assert run.exit_code in (1, 3), run.stderr
    assert mutations(mgn_lab, before) == []
    data = json.loads(report.read_text())
    assert data["summary"]["exit_code"] == run.exit_code


def test_apply_is_refused_and_sends_nothing(mgn_lab: Lab, tmp_path: Path) -> None:
    mgn_lab.inject("kubernetes.down")
    before = len(mgn_lab.hostapp_requests)
    run = mgn(mgn_lab, "cluster", "apply", "-f", template(tmp_path, {"name": "refused"}),
              "--kubeconfig", kubeconfig(mgn_lab))
    assert run.exit_code in (1, 3), run.stderr
    assert [r for r in mgn_lab.hostapp_requests[before:] if r.method in MUTATING] == []


def test_delete_is_refused_when_the_host_app_is_down(mgn_lab: Lab, tmp_path: Path) -> None:
    mgn_lab.inject("hostapp.down")
    report = tmp_path / "preflight.json"
    run = mgn(mgn_lab, "cluster", "delete", "lab", "--json", str(report))
    assert run.exit_code == 1, run.stderr
    assert json.loads(report.read_text())["summary"]["exit_code"] == 1
    mgn_lab.clear("hostapp.down")
    assert "lab" in [r["id"] for r in records(mgn_lab)]

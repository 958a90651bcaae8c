"""``mgn install``: GuildNet's objects applied through the Kubernetes API, idempotently, then the
cluster registered with the Host App. Witnesses: the Kubernetes simulator's state and request
log, and the Host App's request log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mgn_verify.lab import Lab
from mgn_verify.lifecycle.manifests import InstallSettings, install_objects
from tests.helpers import Run
from tests.lifecycle.helpers import error_line

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
OBJECTS = [
    ("CustomResourceDefinition", None, "workspaces.guildnet.io"),
    ("CustomResourceDefinition", None, "capabilities.guildnet.io"),
    ("Namespace", None, "guildnet-system"),
    ("ServiceAccount", "guildnet-system", "workspace-operator"),
    ("ClusterRole", None, "workspace-operator"),
    ("ClusterRoleBinding", None, "workspace-operator"),
    ("Deployment", "guildnet-system", "workspace-operator"),
    ("Service", "default", "rethinkdb"),
    ("StatefulSet", "default", "rethinkdb"),
]


def kube_mutations(lab: Lab, since: int = 0) -> list[tuple[str, str, int]]:
    """Mutating requests to the Kubernetes API (access reviews are questions, not changes)."""
    return [r for r in lab.kube.requests[since:] if r[0] in MUTATING and "selfsubjectaccessreviews" not in r[1]]


def hostapp_mutations(lab: Lab, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in lab.hostapp_requests[since:] if r.method in MUTATING]


class Marks:
    """Where both request logs stood before a command."""

    def __init__(self, lab: Lab) -> None:
        self.lab, self.kube, self.hostapp = lab, len(lab.kube.requests), len(lab.hostapp_requests)

    def kube_mutations(self) -> list[tuple[str, str, int]]:
        return kube_mutations(self.lab, self.kube)

    def hostapp_mutations(self) -> list[tuple[str, str]]:
        return hostapp_mutations(self.lab, self.hostapp)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def install(lab: Lab, mgn: Callable[..., Run]) -> Callable[..., Run]:
    def run(*args: str, target: Lab | None = None) -> Run:
        return mgn("install", "--config", str((target or lab).config_path), *args)
    return run


@pytest.fixture(scope="module")
def installed(lab: Lab) -> Lab:
    """The normal lab after one install (which finds everything there: a first install on it changes
    nothing either, `test_install_twice_changes_nothing` pins that)."""
    from click.testing import CliRunner

    from mgn_verify.cli import cli

    result = CliRunner().invoke(cli, ["install", "--config", str(lab.config_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return lab


# -- the objects ------------------------------------------------------------------------------------


def test_objects_follow_the_contract() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in install_objects(InstallSettings())}
    assert [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in install_objects(InstallSettings())] == OBJECTS
    crd = objects[("CustomResourceDefinition", "workspaces.guildnet.io")]
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["ws"] and crd["spec"]["scope"] == "Namespaced"
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Phase", "Image", "Ready"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["image"] and set(spec["properties"]["exposure"]["properties"]) >= {"type", "domain"}
    operator = objects[("Deployment", "workspace-operator")]
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert operator["metadata"]["labels"] == {"app": "workspace-operator"} and container["name"] == "operator"
    assert container["command"] == ["/usr/local/bin/hostapp"] and container["args"] == ["operator"]
    assert container["image"] == "ghcr.io/your/module/hostapp:latest" and "imagePullPolicy" not in container
    assert container["env"] == [{"name": "K8S_NAMESPACE",
                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    rules = objects[("ClusterRole", "workspace-operator")]["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted >= {("", "configmaps"), ("", "secrets"), ("", "events"), ("apps", "deployments"),
                       ("", "services"), ("networking.k8s.io", "ingresses"), ("guildnet.io", "workspaces"),
                       ("guildnet.io", "workspaces/status")}
    sts = objects[("StatefulSet", "rethinkdb")]["spec"]
    db = sts["template"]["spec"]["containers"][0]
    assert db["image"] == "rethinkdb:2.4" and db["command"] == ["rethinkdb", "--bind", "all", "--cache-size", "128"]
    assert [p["containerPort"] for p in db["ports"]] == [28015, 29015, 8080]
    assert sts["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    service = objects[("Service", "rethinkdb")]["spec"]
    assert service["type"] == "LoadBalancer" and service["ports"][0]["name"] == "client"


def test_settings_shape_the_objects() -> None:
    settings = InstallSettings(operator_image="guildnet/hostapp:local", namespace="gn", rethinkdb_namespace="db")
    objects = install_objects(settings)
    kinds = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert ("Namespace", None, "db") in kinds and ("StatefulSet", "db", "rethinkdb") in kinds
    assert ("Deployment", "gn", "workspace-operator") in kinds
    operator = next(o for o in objects if o["kind"] == "Deployment")
    assert operator["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


# -- the command's surface ------------------------------------------------------------------------------


def test_bare_metal_is_a_one_line_usage_error(mgn_process: Callable[..., Any]) -> None:
    done = mgn_process("install", "--type", "bare-metal")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "only installs onto the cluster of the configured kubeconfig" in \
        done.stderr, done.stderr


def test_help_documents_the_flags_and_exit_codes(mgn: Callable[..., Run]) -> None:
    run = mgn("install", "--help")
    assert run.exit_code == 0
    for text in ("--type", "--cluster-name", "--skip-verify", "--dry-run", "--ignore-preflight-errors", "--set",
                 "-o, --output", "Exit codes:", "130"):
        assert text in run.stdout, text


# -- against the lab -----------------------------------------------------------------------------------


def test_install_twice_changes_nothing(installed: Lab, install: Callable[..., Run]) -> None:
    marks = Marks(installed)
    run = install("-o", "json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert [(o["kind"], o["namespace"], o["name"]) for o in data["objects"]] == OBJECTS
    assert {o["action"] for o in data["objects"]} == {"unchanged"}
    ready = {o["kind"]: o["ready"] for o in data["objects"]}
    assert ready["CustomResourceDefinition"] is ready["Deployment"] is ready["StatefulSet"] is True
    assert ready["Service"] is None
    assert data["cluster"] == {"name": "lab", "id": "lab", "action": "unchanged"}
    assert marks.kube_mutations() == [] and marks.hostapp_mutations() == []


def test_table_output(installed: Lab, install: Callable[..., Run]) -> None:
    run = install()
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "ACTION", "READY"]
    assert lines[7].split() == ["Deployment", "guildnet-system/workspace-operator", "unchanged", "yes"]
    assert "cluster 'lab': already registered as lab" in run.stderr  # a message, not data
    assert "installing GuildNet onto context 'mgn-lab'" in run.stderr


def test_dry_run_shows_requests_and_mutates_nothing(installed: Lab, install: Callable[..., Run]) -> None:
    marks = Marks(installed)
    run = install("--dry-run", "--cluster-name", "fresh", "--set", "install.namespace=gn-dry")
    assert run.exit_code == 0, run.stderr
    assert marks.kube_mutations() == [] and marks.hostapp_mutations() == []
    blocks = run.stdout.split("\n---\n")
    heads = [b.splitlines()[0] for b in blocks]
    assert heads[0] == ("# GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/workspaces.guildnet.io  "
                        "(CustomResourceDefinition workspaces.guildnet.io: unchanged)")
    assert "# POST /api/v1/namespaces  (Namespace gn-dry: would create)" in heads
    assert "# POST /apis/apps/v1/namespaces/gn-dry/deployments  (Deployment gn-dry/workspace-operator: " \
           "would create)" in heads
    assert heads[-1] == "# POST /api/bootstrap  (Cluster fresh: would register)"
    body = yaml.safe_load(blocks[-1].split("\n", 1)[1].rsplit("\n# dry run", 1)[0])
    assert body["cluster"]["name"] == "fresh"
    assert "credentials not shown" in body["cluster"]["kubeconfig"]
    assert installed.kube_token not in run.stdout + run.stderr
    assert "dry run: would install" in run.stderr


def test_dry_run_as_json(installed: Lab, install: Callable[..., Run]) -> None:
    run = install("--dry-run", "-o", "json", "--set", "install.rethinkdb_namespace=db-dry")
    assert run.exit_code == 0, run.stderr
    steps = json.loads(run.stdout)["steps"]
    by_name = {(s["kind"], s["namespace"], s["name"]): s for s in steps}
    sts = by_name[("StatefulSet", "db-dry", "rethinkdb")]
    assert sts["method"] == "POST" and sts["path"] == "/apis/apps/v1/namespaces/db-dry/statefulsets"
    assert sts["action"] == "would create" and sts["body"]["spec"]["replicas"] == 1
    assert by_name[("Cluster", None, "lab")]["action"] == "unchanged (already registered as lab)"
    assert by_name[("Namespace", None, "guildnet-system")]["body"] is None


def test_api_error_is_one_line_and_exit_5(installed: Lab, install: Callable[..., Run]) -> None:
    marks = Marks(installed)
    run = install("--set", "install.namespace=Not_A_Name")  # the API server rejects the name
    assert run.exit_code == 5, run.stderr
    line = error_line(run)
    assert line.startswith("mgn: error: creating Namespace Not_A_Name: ") and "invalid" in line.lower()
    assert [m[:2] for m in marks.kube_mutations()] == [("POST", "/api/v1/namespaces")]
    assert marks.hostapp_mutations() == []


def test_wait_timeout_names_what_is_not_ready(installed: Lab, install: Callable[..., Run]) -> None:
    marks = Marks(installed)
    installed.inject("kubernetes.operator_down")
    try:
        run = install("--skip-verify", "--cluster-name", "never", "--set", "install.wait_timeout=0.3")
    finally:
        installed.clear("kubernetes.operator_down")
    assert run.exit_code == 1, run.stderr
    line = error_line(run)
    assert "timed out after 0.3s waiting for: Deployment guildnet-system/workspace-operator " \
           "(0/1 replicas available)" in line and "not registered" in line
    assert ["Deployment", "guildnet-system/workspace-operator", "unchanged", "no"] in \
        [line.split() for line in run.stdout.splitlines()]
    assert marks.hostapp_mutations() == []  # never registered with a half-ready install


def test_refused_by_the_gate_sends_nothing(installed: Lab, install: Callable[..., Run], tmp_path: Path) -> None:
    report = tmp_path / "install.json"
    marks = Marks(installed)
    installed.inject("kubernetes.readyz_failing")
    try:
        run = install("--json", str(report), "--cluster-name", "refused")
    finally:
        installed.clear("kubernetes.readyz_failing")
    assert run.exit_code in (1, 3), run.stderr
    assert marks.kube_mutations() == [] and marks.hostapp_mutations() == []
    assert run.stdout == ""
    assert json.loads(report.read_text())["results"]


def test_skip_verify_proceeds_and_is_audited(installed: Lab, install: Callable[..., Run], tmp_path: Path) -> None:
    audit, report = tmp_path / "audit.jsonl", tmp_path / "install.json"
    installed.inject("kubernetes.readyz_failing")
    try:
        run = install("--skip-verify", "--reason", "OPS-42 etcd maintenance", "--json", str(report),
                      "--set", f"audit.path={audit}")
    finally:
        installed.clear("kubernetes.readyz_failing")
    # It went ahead: the first read of the API (etcd down) is what failed, as one line.
    assert run.exit_code == 5, run.stderr
    assert error_line(run).startswith("mgn: error: reading CustomResourceDefinition workspaces.guildnet.io: ")
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["reason"] == "OPS-42 etcd maintenance" and record["gate"] == "install"
    assert any(o["id"].startswith("kubernetes.api.ready") for o in record["overrides"]), record["overrides"]
    text = audit.read_text() + report.read_text()
    assert installed.kube_token not in text and installed.api_token not in text


def test_kubeconfig_sent_is_minified_and_flattened(lab: Lab) -> None:
    from mgn_verify.cli._lifecycle import context_from
    from mgn_verify.lifecycle.install import connect, flatten_kubeconfig

    ctx = context_from(str(lab.config_path), ())
    conn = connect(ctx)
    data = yaml.safe_load(flatten_kubeconfig(conn, ctx.config))
    assert data["current-context"] == conn.context and len(data["contexts"]) == 1
    cluster = data["clusters"][0]["cluster"]
    assert "certificate-authority" not in cluster and cluster["certificate-authority-data"]
    assert cluster["server"] == lab.kube.url.rstrip("/")


# -- a cluster without GuildNet ---------------------------------------------------------------------------


def invoke(lab: Lab, *args: str, audit: Path) -> Run:
    """``mgn install`` in-process for a module fixture (no function-scoped ``mgn`` there)."""
    from click.testing import CliRunner

    from mgn_verify.cli import cli

    result = CliRunner().invoke(cli, ["install", "--config", str(lab.config_path), "--set", f"audit.path={audit}",
                                      *args], env={"MGN_CONFIG": os.devnull}, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr, None)


class BareInstall:
    def __init__(self, lab: Lab, dry_run: Run, dry_run_marks: tuple[list[Any], list[Any]], run: Run) -> None:
        self.lab, self.dry_run, self.dry_run_marks, self.run = lab, dry_run, dry_run_marks, run


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BareInstall]:
    """A lab cluster without GuildNet: a dry run, then one install (what the tests examine)."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with Lab(bare=True) as lab:
        marks = Marks(lab)
        dry_run = invoke(lab, "--dry-run", "--cluster-name", "fresh", audit=audit)
        seen = (marks.kube_mutations(), marks.hostapp_mutations())
        yield BareInstall(lab, dry_run, seen, invoke(lab, "-o", "json", "--cluster-name", "fresh", audit=audit))


def test_dry_run_on_a_bare_cluster(bare: BareInstall) -> None:
    assert bare.dry_run.exit_code == 0, bare.dry_run.stderr
    assert bare.dry_run_marks == ([], [])
    heads = [b.splitlines()[0] for b in bare.dry_run.stdout.split("\n---\n")]
    assert len(heads) == len(OBJECTS) + 1 and all(" (" in h for h in heads)
    assert [h for h in heads if not h.startswith("# POST ")] == []
    assert "(Deployment guildnet-system/workspace-operator: would create)" in heads[6]


def test_install_on_a_bare_cluster_creates_everything(bare: BareInstall) -> None:
    assert bare.run.exit_code == 0, bare.run.stderr
    data = json.loads(bare.run.stdout)
    assert [(o["kind"], o["namespace"], o["name"]) for o in data["objects"]] == OBJECTS
    assert {o["action"] for o in data["objects"] if o["kind"] != "Namespace"} == {"created"}
    assert all(o["ready"] in (True, None) for o in data["objects"])
    created = {(m, p) for m, p, s in kube_mutations(bare.lab) if s == 201}
    assert ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions") in created
    assert ("POST", "/apis/apps/v1/namespaces/guildnet-system/deployments") in created
    assert ("POST", "/apis/apps/v1/namespaces/default/statefulsets") in created
    assert hostapp_mutations(bare.lab) == [("POST", "/api/bootstrap")]
    assert bare.lab.kube_token not in bare.run.stdout + bare.run.stderr + bare.dry_run.stdout + bare.dry_run.stderr
    assert data["cluster"]["action"] == "registered" and data["cluster"]["name"] == "fresh"
    from mgn_verify.clients.hostapp import HostAppClient

    with HostAppClient(bare.lab.hostapp.url, ca_bundle=str(bare.lab.ca.ca_path)) as api:
        record = api.cluster_by_name("fresh")
    assert record is not None and record.id == data["cluster"]["id"]


def test_second_install_on_it_changes_nothing(bare: BareInstall, tmp_path: Path) -> None:
    first = json.loads(bare.run.stdout)
    marks = Marks(bare.lab)
    again = invoke(bare.lab, "-o", "json", "--cluster-name", "fresh", audit=tmp_path / "audit.jsonl")
    assert again.exit_code == 0, again.stderr
    second = json.loads(again.stdout)
    assert {o["action"] for o in second["objects"]} == {"unchanged"}
    assert second["cluster"] == {**first["cluster"], "action": "unchanged"}
    assert marks.kube_mutations() == [] and marks.hostapp_mutations() == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_kubectl_sees_what_was_installed(bare: BareInstall) -> None:
    kubeconfig = bare.lab.workdir / "kubeconfig.yaml"
    done = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "get", "crd,deploy,sts", "-A", "-o", "name"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    names = set(done.stdout.split())
    assert names >= {"customresourcedefinition.apiextensions.k8s.io/workspaces.guildnet.io",
                     "customresourcedefinition.apiextensions.k8s.io/capabilities.guildnet.io",
                     "deployment.apps/workspace-operator", "statefulset.apps/rethinkdb"}


@pytest.mark.slow  # a real process (a signal needs one): ~6 s with its preflight
def test_ctrl_c_while_waiting_exits_130(installed: Lab, tmp_path: Path) -> None:
    import signal

    installed.inject("kubernetes.operator_down")
    env = {**os.environ, "MGN_CONFIG": os.devnull}
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "install", "--config", str(installed.config_path),
                             "--skip-verify", "--set", "install.wait_timeout=600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # ends when the process does: no fixed sleep
            seen.append(line)
            if "waiting up to 600s" in line:
                proc.send_signal(signal.SIGINT)
                break
        _, rest = proc.communicate(timeout=30)
    finally:
        installed.clear("kubernetes.operator_down")
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen) + rest
    assert "mgn: interrupted" in rest and "Traceback" not in rest


def test_the_placeholder_operator_image_is_warned_about(installed: Lab, install: Callable[..., Run]) -> None:
    warned = install("--dry-run")
    assert "install.operator_image is ghcr.io/your/module/hostapp:latest" in warned.stderr
    chosen = install("--dry-run", "--set", "install.operator_image=registry.example/hostapp:1.0")
    assert "install.operator_image is" not in chosen.stderr

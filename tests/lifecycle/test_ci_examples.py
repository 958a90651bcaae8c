"""The CI examples of docs/examples/ci run unchanged against the lab.

Each file is executed the way its CI system would: the GitHub Actions ``run:`` steps with
bash ``-eo pipefail`` after the ``${{ … }}`` expressions are evaluated, the GitLab ``script:``
lines (``after_script`` with ``CI_JOB_STATUS``), the Jenkinsfile's ``sh`` blocks with ``sh -e``,
and the two shell scripts as they are. The CI secrets are the lab's: ``MGN_API_URL`` = its Host
App, ``MGN_API_TOKEN`` = its token, ``MGN_CONFIG`` = its config (for the CA bundle). Only the
"Install mgn" steps are skipped: mgn is already installed here (a shim on PATH runs this tree).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

CI = REPO / "docs" / "examples" / "ci"
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid() % 10000}-{next(_names)}"


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    from mgn_verify.lab import Lab

    with Lab(clusters=("lab", "lab-2")) as running:
        for cid in running.cluster_ids:  # workspaces Running after 0.3 s, not 2 s: keeps these tests short
            kube = running.cluster(cid).kube
            assert kube is not None
            operator = kube.state.operator
            operator.pending_delay, operator.running_delay = 0.1, 0.3
        yield running


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``bin`` directory whose ``mgn`` runs this tree's mgn with this interpreter."""
    directory = tmp_path_factory.mktemp("bin")
    mgn = directory / "mgn"
    mgn.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mgn_verify "$@"\n')
    mgn.chmod(0o755)
    return directory


@pytest.fixture
def env(lab: Any, shim: Path, tmp_path: Path) -> dict[str, str]:
    """The CI job's environment: the secrets point at the lab."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MGN_")}
    return {**base, "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
            "PYTHONPATH": str(REPO), "MGN_API_URL": lab.hostapp.url.rstrip("/"), "MGN_API_TOKEN": lab.api_token,
            "MGN_CONFIG": str(lab.config_path)}


@pytest.fixture
def healthy(lab: Any) -> Iterator[Any]:
    lab.clear_all()
    yield lab
    lab.clear_all()


@pytest.fixture
def broken_lab2(lab: Any) -> Iterator[Any]:
    lab.clear_all()
    lab.inject("kubernetes.down", cluster="lab-2")
    yield lab
    lab.clear_all()


def bash(script: str, env: Mapping[str, str], *, shell: tuple[str, ...] = ("bash", "--noprofile", "--norc", "-eo",
                                                                           "pipefail"), cwd: Path = CI,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*shell, "-c", script], env=dict(env), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def mutations(lab: Any, start: int, cluster: str) -> list[str]:
    return [r.method for r in lab.hostapp_requests[start:]
            if r.method in MUTATING and r.path.startswith(f"/api/cluster/{cluster}/")]


def workspace_phase(lab: Any, cluster: str, name: str) -> str | None:
    with _client(lab) as api:
        resource = api.workspace_resource(cluster, name)
    if resource is None:
        return None
    return str((resource.get("status") or {}).get("phase") or "none")


def _client(lab: Any) -> Any:
    from mgn_verify.clients.hostapp import HostAppClient

    return HostAppClient(lab.hostapp.url, token=lab.api_token, ca_bundle=str(lab.ca.ca_path))


def need_tool(name: str) -> None:
    """``yq``/``jq`` are test requirements (scripts/test.sh installs them): fail, never skip."""
    if shutil.which(name) is None:
        pytest.fail(f"'{name}' is not on PATH: deploy-federated.sh needs it; install the test requirements "
                    f"(scripts/test.sh installs jq with apt and yq with pip)")


# -- GitHub Actions ---------------------------------------------------------------------------

_EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def gha_eval(text: str, contexts: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        assert expr in contexts, f"the workflow uses ${{{{ {expr} }}}}, which this runner does not provide"
        return contexts[expr]

    return _EXPR.sub(one, text)


@dataclass
class JobRun:
    ok: bool
    ran: list[str] = field(default_factory=list)
    log: str = ""


def run_gha_job(workflow: dict[Any, Any], job_id: str, contexts: Mapping[str, str], env: Mapping[str, str]
                ) -> JobRun:
    """One job as the runner does it: ``if: failure()`` steps only after a failure, the others
    only while everything succeeded; ``env`` of the workflow, job and step."""
    job = workflow["jobs"][job_id]
    job_env = {**env, **{k: gha_eval(str(v), contexts) for k, v in (workflow.get("env") or {}).items()}}
    job_env.update({k: gha_eval(str(v), contexts) for k, v in (job.get("env") or {}).items()})
    result = JobRun(ok=True)
    for step in job["steps"]:
        if "run" not in step or str(step.get("name", "")).startswith("Install"):
            continue  # actions (`uses:`) and installing mgn: nothing to do here
        condition = step.get("if")
        assert condition in (None, "failure()"), f"unsupported if: {condition}"
        if (condition == "failure()") == result.ok:
            continue
        step_env = {**job_env, **{k: gha_eval(str(v), contexts) for k, v in (step.get("env") or {}).items()}}
        proc = bash(gha_eval(step["run"], contexts), step_env)
        name = gha_eval(str(step.get("name", step["run"])), contexts)
        result.ran.append(name)
        result.log += f"--- {name} (exit {proc.returncode})\n{proc.stdout}{proc.stderr}"
        if proc.returncode != 0:
            result.ok = False
    return result


def github_workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((CI / "github-actions.yaml").read_text())
    return data


def gha_contexts(workflow: dict[Any, Any], env: Mapping[str, str], **extra: str) -> dict[str, str]:
    triggers: dict[str, Any] = workflow.get("on") or workflow[True]  # YAML 1.1 reads a bare `on` as true
    image = triggers["workflow_dispatch"]["inputs"]["image"]["default"]
    return {"inputs.image": image, "github.sha": "0123abcd", "secrets.GUILDNET_API_URL": env["MGN_API_URL"],
            "secrets.GUILDNET_API_TOKEN": env["MGN_API_TOKEN"], **extra}


def runner_env(env: Mapping[str, str]) -> dict[str, str]:
    """The runner's own environment: MGN_API_URL/TOKEN come from the workflow (the secrets)."""
    return {k: v for k, v in env.items() if k not in ("MGN_API_URL", "MGN_API_TOKEN")}


@pytest.mark.slow
def test_github_actions_staging_job_deploys_waits_checks_and_smoke_tests(healthy: Any, env: dict[str, str]) -> None:
    workflow = github_workflow()
    name = unique("gha-app")
    contexts = gha_contexts(workflow, env, **{"github.event.repository.name": name, "vars.STAGING_CLUSTER": "lab"})
    env = runner_env(env)
    start = len(healthy.hostapp_requests)
    staging = run_gha_job(workflow, "deploy-staging", contexts, env)
    assert staging.ok, staging.log
    assert "Roll back on failure" not in staging.ran
    assert workspace_phase(healthy, "lab", name) == "Running"

    assert mutations(healthy, start, "lab") == ["POST"]


@pytest.mark.slow
def test_github_actions_production_job_fails_on_a_broken_cluster_and_rolls_back(
        broken_lab2: Any, env: dict[str, str]) -> None:
    workflow = github_workflow()
    # The matrix comes from vars.PRODUCTION_CLUSTERS; one entry is one run of the job.
    matrix = workflow["jobs"]["deploy-production"]["strategy"]["matrix"]["cluster"]
    assert gha_eval(matrix, {"fromJSON(vars.PRODUCTION_CLUSTERS)": "[]"}) == "[]"
    contexts = gha_contexts(workflow, env, **{"github.event.repository.name": unique("gha-bad"),
                                              "matrix.cluster": "lab-2"})
    env = runner_env(env)
    start = len(broken_lab2.hostapp_requests)
    run = run_gha_job(workflow, "deploy-production", contexts, env)
    assert not run.ok, run.log
    assert run.ran[0] == "Deploy to lab-2" and run.ran[-1] == "Roll back lab-2 on failure", run.ran
    assert "Verify lab-2" not in run.ran
    assert "POST" not in mutations(broken_lab2, start, "lab-2")


# -- GitLab CI --------------------------------------------------------------------------------


def gitlab() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    return data


def gitlab_env(pipeline: dict[str, Any], job: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """GitLab expands ``$VAR`` in ``variables:`` from the CI/CD variables."""
    out = dict(env)
    for variables in (pipeline.get("variables") or {}, job.get("variables") or {}):
        for key, value in variables.items():
            out[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: out.get(m.group(1), ""), str(value))
    return out


def run_gitlab_job(pipeline: dict[str, Any], job_id: str, env: Mapping[str, str]) -> JobRun:
    job = dict(pipeline[job_id])
    template = pipeline.get(job.get("extends", ""), {})
    before = [line for line in job.get("before_script", template.get("before_script", []))
              if not line.startswith("pip install")]  # installing mgn: done here already
    job_env = gitlab_env(pipeline, job, env)
    proc = bash("\n".join([*before, *job["script"]]), job_env)
    result = JobRun(ok=proc.returncode == 0, ran=[job_id], log=f"{proc.stdout}{proc.stderr}")
    if job.get("after_script"):
        after_env = {**job_env, "CI_JOB_STATUS": "success" if result.ok else "failed"}
        after = bash("\n".join(job["after_script"]), after_env)
        result.log += f"--- after_script (exit {after.returncode})\n{after.stdout}{after.stderr}"
        result.ran.append("after_script")
    return result


@pytest.mark.slow
def test_gitlab_pipeline_deploys_tests_and_cleans_up(healthy: Any, env: dict[str, str]) -> None:
    pipeline = gitlab()
    name = unique("gl-app")
    ci = {**env, "GUILDNET_API_URL": env["MGN_API_URL"], "GUILDNET_API_TOKEN": env["MGN_API_TOKEN"],
          "CI_PROJECT_NAME": name, "CI_COMMIT_SHORT_SHA": "0123abcd", "STAGING_CLUSTER": "lab",
          "PRODUCTION_CLUSTERS": "lab-2"}
    ci = runner_env(ci)  # the pipeline's `variables:` set MGN_API_URL/TOKEN
    start = len(healthy.hostapp_requests)
    for job_id in ("deploy:staging", "test:staging"):
        run = run_gitlab_job(pipeline, job_id, ci)
        assert run.ok, f"{job_id}: {run.log}"
        assert "rolling back" not in run.log
    assert workspace_phase(healthy, "lab", name) == "Running"
    cleanup = run_gitlab_job(pipeline, "cleanup:staging", ci)
    assert cleanup.ok, cleanup.log
    assert mutations(healthy, start, "lab") == ["POST", "DELETE"]
    assert workspace_phase(healthy, "lab", name) is None


@pytest.mark.slow
def test_gitlab_production_loop_fails_and_rolls_back_on_a_broken_cluster(broken_lab2: Any,
                                                                         env: dict[str, str]) -> None:
    pipeline = gitlab()
    ci = runner_env({**env, "GUILDNET_API_URL": env["MGN_API_URL"], "GUILDNET_API_TOKEN": env["MGN_API_TOKEN"],
                     "CI_PROJECT_NAME": unique("gl-bad"), "PRODUCTION_CLUSTERS": "lab-2",
                     "CI_COMMIT_SHORT_SHA": "0123abcd"})
    start = len(broken_lab2.hostapp_requests)
    run = run_gitlab_job(pipeline, "deploy:production", ci)
    assert not run.ok and run.ran == ["deploy:production", "after_script"], run.log
    assert "Deploying to lab-2" in run.log and "preflight workspace.create [lab-2]: refused" in run.log
    assert "POST" not in mutations(broken_lab2, start, "lab-2")


# -- Jenkins ----------------------------------------------------------------------------------

_SH = re.compile(r"""\bsh\s+(?:'''(.*?)'''|'([^'\n]*)')""", re.DOTALL)


def jenkins_stages(text: str) -> list[str]:
    return re.findall(r"stage\('([^']+)'\)", text)


def test_jenkinsfile_is_a_well_formed_declarative_pipeline() -> None:
    text = (CI / "Jenkinsfile").read_text()
    code = re.sub(r"'''.*?'''|'[^'\n]*'|//[^\n]*", "''", text, flags=re.DOTALL)  # strings and comments out
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), f"unbalanced {opening}{closing}"
    assert code.count('"') % 2 == 0
    assert re.search(r"^pipeline \{", text, re.MULTILINE)
    for block in ("agent any", "parameters {", "environment {", "stages {", "post {", "failure {"):
        assert block in text, block
    assert jenkins_stages(text) == ["Install mgn", "Deploy", "Wait", "Verify"]
    assert "credentials('guildnet-api-url')" in text and "credentials('guildnet-api-token')" in text
    commands = " ".join(" ".join(m) for m in _SH.findall(text))
    for script in (triple or single for triple, single in _SH.findall(text)):  # the shell parses each step
        check = subprocess.run(["bash", "-n", "-c", script.replace("\\\n", "")], capture_output=True, text=True)
        assert check.returncode == 0, f"{script!r}: {check.stderr}"
    for command in ("mgn workspace create", "mgn workspace wait", "--timeout 5m",
                    "-o json | grep '\"status\":\"Running\"'", "mgn workspace test",
                    "--http-check / --expected-status 200", "mgn workspace delete"):
        assert command in commands, command


# -- canary.sh and deploy-federated.sh --------------------------------------------------------


@pytest.mark.slow
def test_canary_deploys_checks_and_exits_zero(healthy: Any, env: dict[str, str]) -> None:
    name = unique("canary-app")
    proc = subprocess.run(["bash", str(CI / "canary.sh"), "lab", name, "codercom/code-server:4.90.3", "20"],
                          env={**env, "MONITOR_SECONDS": "0", "CHECK_INTERVAL": "1"}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "canary healthy" in proc.stdout
    assert workspace_phase(healthy, "lab", f"{name}-canary") == "Running"


def test_canary_on_a_broken_cluster_exits_non_zero(broken_lab2: Any, env: dict[str, str]) -> None:
    proc = subprocess.run(["bash", str(CI / "canary.sh"), "lab-2", unique("canary-bad"), "nginx:1.27"],
                          env={**env, "MONITOR_SECONDS": "0"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "could not create the canary" in proc.stderr


def test_canary_usage(env: dict[str, str]) -> None:
    proc = subprocess.run(["bash", str(CI / "canary.sh"), "lab"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def federation_files(tmp_path: Path, name: str, ids: tuple[str | None, ...] = ("lab", "lab-2", None)
                     ) -> tuple[Path, Path]:
    """The examples with the lab's cluster ids and a fresh workspace name (nothing else changed)."""
    fed = yaml.safe_load((CI / "federation.yaml").read_text())
    clusters = fed["federation"]["clusters"]
    for entry, cid in zip(clusters, ids, strict=True):
        entry["id"] = cid
    fed["federation"]["clusters"] = [c for c in clusters if c["id"]]
    ws = yaml.safe_load((CI / "workspace-codeserver.yaml").read_text())
    ws["workspace"]["name"] = name
    fed_path, ws_path = tmp_path / "federation.yaml", tmp_path / "workspace.yaml"
    fed_path.write_text(yaml.safe_dump(fed, sort_keys=False))
    ws_path.write_text(yaml.safe_dump(ws, sort_keys=False))
    return fed_path, ws_path


@pytest.mark.slow
def test_deploy_federated_deploys_and_exits_zero(healthy: Any, env: dict[str, str], tmp_path: Path) -> None:
    need_tool("yq")
    name = unique("fed-sh")
    fed, ws = federation_files(tmp_path, name, ("lab", None, None))  # both clusters: the next test
    proc = subprocess.run(["bash", str(CI / "deploy-federated.sh"), str(fed), str(ws)],
                          env={**env, "WAIT_TIMEOUT": "30s"}, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 ready, 0 failed" in proc.stdout
    assert workspace_phase(healthy, "lab", name) == "Running"


@pytest.mark.slow
def test_deploy_federated_exits_one_when_a_cluster_fails(broken_lab2: Any, env: dict[str, str],
                                                         tmp_path: Path) -> None:
    need_tool("yq")
    fed, ws = federation_files(tmp_path, unique("fed-sh-bad"))
    start = len(broken_lab2.hostapp_requests)
    proc = subprocess.run(["bash", str(CI / "deploy-federated.sh"), str(fed), str(ws)],
                          env={**env, "WAIT_TIMEOUT": "30s"}, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 ready, 1 failed" in proc.stdout and "FAILED  lab-2" in proc.stdout and "ok      lab" in proc.stdout
    assert "POST" not in mutations(broken_lab2, start, "lab-2")


def test_deploy_federated_without_yq_says_so(env: dict[str, str], tmp_path: Path, shim: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("bash", "sh", "env"):
        (bare / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    (bare / "mgn").symlink_to(shim / "mgn")
    proc = subprocess.run([str(bare / "bash"), str(CI / "deploy-federated.sh")], env={**env, "PATH": str(bare)},
                          capture_output=True, text=True, cwd=CI)
    assert proc.returncode == 2 and "'yq' is required" in proc.stderr


def test_the_example_templates_are_what_the_commands_read() -> None:
    from mgn_verify.cli.federation_cmd import _load_workspace
    from mgn_verify.lifecycle.federation import load_federation

    fed = load_federation(CI / "federation.yaml")
    assert fed.deployment.mode == "rolling" and fed.deployment.rollback_on_failure
    assert len(fed.clusters) == 3 and fed.notes  # load_balancing and sync: noted, ignored
    spec = _load_workspace(str(CI / "workspace-codeserver.yaml"))
    assert spec.image == "codercom/code-server:4.90.3" and spec.ports[0].container_port == 8080
    cluster = yaml.safe_load((CI / "cluster-minimal.yaml").read_text())["cluster"]
    assert {"name", "namespace", "settings", "ingress", "image_pull_secret", "org_id"} <= set(cluster)
    assert set(cluster["settings"]) == {"workspace_lb_enabled", "prefer_pod_proxy", "use_port_forward"}
    assert set(cluster["ingress"]) == {"domain", "class_name", "tls_secret"}

"""``mgn federation deploy FEDERATION.yaml WORKSPACE.yaml``: what the peer's
``deploy-federated.sh`` did with a shell loop, done properly: each cluster gated on its own,
``deployment.mode``/``max_parallel``/``wait_for_ready``/``rollback_on_failure`` honoured, one
summary and one exit code."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import ClientError, MgnVerifyError, UsageError
from ..lifecycle.exits import LifecycleExit
from ..lifecycle.targets import Target, resolve_target
from ._lifecycle import (
    COMMAND_SETTINGS,
    EPILOG,
    GateArgs,
    config_options,
    context_from,
    gate,
    gate_options,
    output_option,
    run_lifecycle,
)
from ._options import parse_duration

if TYPE_CHECKING:
    from ..lifecycle.context import CommandContext
    from ..lifecycle.federation import ActionResult, ClusterResult, Deployment, Federation, GateVerdict
    from ..lifecycle.workspaces import WorkspaceSpec

__all__ = ["federation"]

GATE = "federation.deploy"
COLUMNS = [("CLUSTER", "cluster"), ("PREFLIGHT", "preflight"), ("ACTION", "action"), ("STATUS", "status"),
           ("MESSAGE", "message")]


@click.group("federation", context_settings=COMMAND_SETTINGS)
def federation() -> None:
    """Act on every cluster of a federation (federation.yaml: its clusters and deployment policy)."""


@federation.command("deploy", context_settings=COMMAND_SETTINGS,
                    epilog=EPILOG + "\n\b\nA cluster that was refused, failed or timed out makes the exit code 1.")
@click.argument("federation_file", metavar="FEDERATION.yaml", type=click.Path(dir_okay=False))
@click.argument("workspace_file", metavar="WORKSPACE.yaml", type=click.Path(dir_okay=False))
@config_options
@output_option()
@gate_options
@click.option("--timeout", default="5m", show_default=True, metavar="DURATION",
              help="How long to wait for each workspace to be Running (with deployment.wait_for_ready).")
@click.option("--interval", default="2s", show_default=True, metavar="DURATION",
              help="Time between readiness polls.")
def deploy_cmd(federation_file: str, workspace_file: str, config_path: str | None, overrides: tuple[str, ...],
               fmt: str, ignore: tuple[str, ...], reason: str, dry_run: bool, json_path: str | None,
               junit_path: str | None, verbose: int, timeout: str, interval: str) -> None:
    """Deploy the workspace of WORKSPACE.yaml to every cluster of FEDERATION.yaml.

    \b
    deployment.mode (default sequential):
      simultaneous  every cluster at once (at most max_parallel at a time)
      sequential    one after another in priority order; stop at the first failure
      rolling       batches of max_parallel (default 1); stop after a failed batch
    Each cluster runs the federation.deploy preflight gate first; a refused cluster gets no
    request and counts as failed. With rollback_on_failure, a failed deployment deletes the
    workspaces this run created (never one that was already there). With --json/--junit,
    each cluster's preflight report goes to PATH with the cluster id before the suffix.
    """
    def body() -> int:
        from ..lifecycle.federation import load_federation

        fed = load_federation(federation_file)
        spec = _load_workspace(workspace_file)
        seconds = parse_duration(timeout)
        for note in fed.notes:
            click.echo(f"mgn: note: {note}", err=True)
        ctx = context_from(config_path, overrides)
        options = _Options(GateArgs.of(ignore, reason, dry_run, json_path, junit_path, verbose), timeout=seconds,
                           interval=max(0.05, parse_duration(interval)))
        outcome = _Run(ctx, fed, spec, options).deploy()
        _print_summary(ctx, fed, spec, outcome, fmt, dry_run)
        return outcome.exit_code

    run_lifecycle(body)


def _load_workspace(path: str) -> WorkspaceSpec:
    from ..lifecycle.files import read_yaml
    from ..lifecycle.workspaces import WorkspaceSpec

    data = read_yaml(path, "workspace file")
    if not isinstance(data, Mapping) or not isinstance(data.get("workspace"), Mapping):
        raise UsageError(f"{path}: expected a top-level 'workspace' mapping (the workspace template)")
    try:
        return WorkspaceSpec.from_template(data["workspace"])
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None


class _Options:
    def __init__(self, gate_args: GateArgs, *, timeout: float, interval: float) -> None:
        self.gate_args, self.dry_run = gate_args, gate_args.dry_run
        self.timeout, self.interval = timeout, interval


class _Cancelled(MgnVerifyError):
    """Ctrl-C while a worker waited for its workspace."""


class _Run:
    """The three hooks of :func:`~mgn_verify.lifecycle.federation.deploy` for one command."""

    def __init__(self, ctx: CommandContext, fed: Federation, spec: WorkspaceSpec, options: _Options) -> None:
        self.ctx, self.fed, self.spec, self.options = ctx, fed, spec, options
        self.targets: dict[str, Target] = {}

    def _host(self, cluster: str) -> str:
        return self.targets[cluster].host_id if cluster in self.targets else cluster

    def deploy(self) -> Deployment:
        from ..lifecycle.federation import Hooks, deploy

        _ = self.ctx.config  # load it here, once: the worker threads only read it
        with self.ctx.hostapp() as api:  # the Host App's id of each cluster named in the file
            self.targets = {c.id: resolve_target(self.ctx, c.id, api) for c in self.fed.clusters}
        return deploy(self.fed, Hooks(gate=self.gate, act=self.act, rollback=self.rollback,
                                      progress=self.progress), dry_run=self.options.dry_run)

    def progress(self, result: ClusterResult) -> None:
        """Each cluster's outcome as it is known, on stderr (redacted: a worker's error may quote anything)."""
        message = f": {result.message}" if result.message else ""
        click.echo(self.ctx.config.redactor.text(f"mgn: federation: {result.cluster}: {result.status}{message}"),
                   err=True)

    def gate(self, cluster: str) -> GateVerdict:
        from ..lifecycle.federation import GateVerdict

        args = self.options.gate_args
        gate_id = self.targets[cluster].gate_id if cluster in self.targets else cluster
        outcome = gate(self.ctx, GATE, (gate_id,), "federation deploy", args,
                       json_path=_per_cluster(args.json_path, cluster),
                       junit_path=_per_cluster(args.junit_path, cluster))
        if outcome.proceed:
            return GateVerdict(True, 0, "waived" if outcome.overrides else "passed")
        label = "could not verify" if outcome.exit_code == LifecycleExit.CHECK_ERRORS else "refused"
        return GateVerdict(False, outcome.exit_code, label, _refusal(outcome.report))

    def act(self, cluster: str, cancel: threading.Event) -> ActionResult:
        from ..lifecycle.federation import ActionResult

        if self.options.dry_run:
            return self._plan(cluster)
        from ..lifecycle import workspaces

        with self.ctx.hostapp() as api:
            try:
                action = self._create_or_keep(api, cluster)
            except ClientError as exc:
                return ActionResult(False, "create", str(exc))
            if isinstance(action, ActionResult):
                return action
            created = action == "created"
            if not self.fed.deployment.wait_for_ready:
                return ActionResult(True, action, f"{action} (not waiting: wait_for_ready is false)", created=created)

            def check_cancel(_view: dict[str, Any] | None) -> None:
                if cancel.is_set():
                    raise _Cancelled("interrupted")

            try:
                view = workspaces.wait_ready(api, self._host(cluster), self.spec.name, self.options.timeout,
                                             interval=self.options.interval, on_poll=check_cancel)
            except (ClientError, workspaces.WaitTimeout, _Cancelled) as exc:
                return ActionResult(False, action, str(exc), created=created)
            replicas = view.get("readyReplicas", 0)
            return ActionResult(True, action, f"{view['status']} ({replicas} ready)", created=created)

    def _create_or_keep(self, api: Any, cluster: str) -> str | ActionResult:
        """``"created"``; ``"unchanged"`` when the workspace is already there with the same image
        (a re-run is idempotent: never created again, never rolled back); a failed
        :class:`ActionResult` naming both images when it is there with another."""
        from ..lifecycle import workspaces
        from ..lifecycle.federation import ActionResult

        try:
            workspaces.create(api, self._host(cluster), self.spec)
        except workspaces.WorkspaceExists as exc:
            existing = api.workspace_resource(self._host(cluster), self.spec.name)
            if existing is None:  # deleted since: say what the Host App said
                return ActionResult(False, "create", str(exc))
            image = (existing.get("spec") or {}).get("image")
            if image != self.spec.image:
                return ActionResult(False, "exists", _differs(self.spec, cluster, image))
            return "unchanged"
        return "created"

    def rollback(self, cluster: str) -> str:
        from ..lifecycle import workspaces

        with self.ctx.hostapp() as api:
            gone = workspaces.delete(api, self._host(cluster), self.spec.name)
        return "rolled back: deleted" if gone else "rolled back: already gone"

    def _plan(self, cluster: str) -> ActionResult:
        from urllib.parse import quote

        from ..lifecycle.federation import ActionResult
        from ..lifecycle.output import mask_secrets

        with self.ctx.hostapp() as api:  # a re-run leaves an identical workspace alone
            try:
                existing = api.workspace_resource(self._host(cluster), self.spec.name)
            except ClientError as exc:
                return ActionResult(False, "would create", str(exc))
        if existing is not None:
            image = (existing.get("spec") or {}).get("image")
            if image == self.spec.image:
                return ActionResult(True, "unchanged", f"already there with image {image!r}")
            return ActionResult(False, "exists", _differs(self.spec, cluster, image))
        path = f"/api/cluster/{quote(self._host(cluster), safe='')}/workspaces"
        body = self.ctx.config.redactor.data(mask_secrets(self.spec.body()))
        request = {"method": "POST", "path": path, "body": body}
        return ActionResult(True, "would create", f"POST {path}", data={"request": request})


def _differs(spec: WorkspaceSpec, cluster: str, image: Any) -> str:
    return (f"workspace {spec.name!r} already exists on cluster {cluster!r} with image {image!r}, not "
            f"{spec.image!r}: delete it first, or deploy the image it runs")


def _per_cluster(path: str | None, cluster: str) -> str | None:
    """``report.json`` → ``report.CLUSTER.json``: one preflight report per cluster."""
    if path is None:
        return None
    p = Path(path)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cluster)
    return str(p.with_name(f"{p.stem}.{safe}{p.suffix}"))


def _refusal(report: Any) -> str:
    results = getattr(report, "results", None) or []
    roots = [r.id for r in results if str(r.status) in ("fail", "error") and not r.blocked_by]
    if not roots:
        return "refused by the federation.deploy preflight gate"
    more = f" (+{len(roots) - 3} more)" if len(roots) > 3 else ""
    return "refused by the preflight gate: " + ", ".join(roots[:3]) + more


def _print_summary(ctx: CommandContext, fed: Federation, spec: WorkspaceSpec, outcome: Deployment, fmt: str,
                   dry_run: bool) -> None:
    from ..lifecycle.output import echo_data

    redact = ctx.config.redactor.data
    if fmt == "table":
        if dry_run:
            for row in outcome.results:
                request = row.data.get("request")
                if request:
                    body = _json(request["body"])
                    click.echo(redact(f"would {request['method']} {request['path']} {body}"))
        echo_data([r.row() for r in outcome.results], "table", columns=COLUMNS, redact=redact)
        click.echo(f"federation {fed.name}: workspace {spec.name}: {outcome.status} "
                   f"({fed.deployment.mode}{', dry run' if dry_run else ''})", err=True)
        return
    echo_data({"federation": fed.name, "workspace": spec.name, "mode": fed.deployment.mode, "dry_run": dry_run,
               "status": outcome.status, "exit_code": outcome.exit_code,
               "clusters": [r.row() for r in outcome.results]}, fmt, redact=redact)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

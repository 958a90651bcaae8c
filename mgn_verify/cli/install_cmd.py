"""``mgn install``: install GuildNet onto the cluster of the configured kubeconfig, gated on the
``install`` preflight (the peer CLI's flags: ``--type local``, ``--cluster-name``,
``--skip-verify``, ``--dry-run``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .._exceptions import ClientError
from ..lifecycle.exits import LifecycleExit
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
from ._options import error

if TYPE_CHECKING:
    from ..lifecycle.install import InstallResult

__all__ = ["install"]

_COLUMNS = [("KIND", "kind"), ("NAME", "name"), ("ACTION", "action"), ("READY", "ready")]


@click.command("install", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@click.option("--type", "install_type", type=click.Choice(["local", "bare-metal"]), default="local",
              show_default=True, help="Where to install: local is the cluster of the configured kubeconfig.")
@click.option("--cluster-name", metavar="NAME",
              help="Name to register the cluster under in the Host App (default: defaults.cluster, "
                   "else guildnet-cluster).")
@click.option("--skip-verify", is_flag=True,
              help="Proceed even if the preflight fails: --ignore-preflight-errors=all (recorded in the audit log).")
@gate_options
@output_option()
@config_options
def install(install_type: str, cluster_name: str | None, skip_verify: bool, ignore: tuple[str, ...], reason: str,
            dry_run: bool, json_path: str | None, junit_path: str | None, verbose: int, fmt: str,
            config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Install GuildNet onto the cluster of the configured kubeconfig.

    Runs the `install` preflight gate first and refuses (changing nothing) when it fails. Then
    creates what is missing, through the Kubernetes API: the Workspace and Capability CRDs, the
    workspace-operator ServiceAccount, RBAC and Deployment (install.namespace), RethinkDB's
    Service and StatefulSet (install.rethinkdb_namespace). Existing objects are left alone, so
    installing twice changes nothing. It waits for them to be ready (install.wait_timeout),
    then registers the cluster with the Host App (POST /api/bootstrap) unless a cluster of that
    name is already registered. --dry-run prints every request it would send instead.
    """
    if install_type != "local":
        raise click.UsageError("--type bare-metal is not supported: mgn install only installs onto the cluster "
                               "of the configured kubeconfig (--type local)")
    args = GateArgs.of(ignore, reason, dry_run, json_path, junit_path, verbose, skip_verify=skip_verify)
    run_lifecycle(lambda: _install(config_path, overrides, cluster_name, args, fmt))


def _say(message: str) -> None:
    click.echo(f"mgn: {message}", err=True)


def _install(config_path: str | None, overrides: tuple[str, ...], cluster_name: str | None, args: GateArgs,
             fmt: str) -> int:
    from ..lifecycle.install import cluster_name_for, run_install, target_cluster
    from ..lifecycle.manifests import PLACEHOLDER_OPERATOR_IMAGE

    ctx = context_from(config_path, overrides)
    # The gate checks exactly the cluster install acts on (not every configured one).
    outcome = gate(ctx, "install", (target_cluster(ctx).id,), "install", args)
    if not outcome.proceed:
        return int(outcome.exit_code)
    redact = ctx.config.redactor
    if ctx.config["install.operator_image"] == PLACEHOLDER_OPERATOR_IMAGE:
        _say(f"warning: install.operator_image is {PLACEHOLDER_OPERATOR_IMAGE}, the placeholder of GuildNet's "
             "deploy-operator.sh: a real cluster cannot pull it; set it to your operator image "
             "(e.g. --set install.operator_image=REGISTRY/hostapp:TAG)")
    try:
        result = run_install(ctx, cluster_name_for(ctx, cluster_name), dry_run=args.dry_run, progress=_say)
    except ClientError as exc:  # an API's message may quote what was sent: never a credential
        raise ClientError(redact.text(str(exc)), component=exc.component, target=exc.target) from None
    _emit(result, fmt, redact.data)
    if result.cluster_id is not None and fmt == "table" and not result.dry_run:  # json/yaml: in the data
        verb = "registered with the Host App" if result.cluster_action == "registered" else "already registered"
        _say(f"cluster {result.cluster_name!r}: {verb} as {result.cluster_id}")
    if result.not_ready:
        waiting = "; ".join(f"{s.ref} ({s.detail})" for s in result.not_ready)
        timeout = float(ctx.config["install.wait_timeout"])
        error(f"timed out after {timeout:g}s waiting for: {waiting}; the cluster was not registered "
              "(raise install.wait_timeout, or look at the objects with kubectl describe)")
        return int(LifecycleExit.FAILED)
    return int(LifecycleExit.OK)


def _emit(result: InstallResult, fmt: str, redact: Any) -> None:
    from ..lifecycle.output import echo_data

    if fmt != "table":
        echo_data(result.data(), fmt, redact=redact)
    elif result.dry_run:
        click.echo(_dry_run_text(result, redact))
    else:
        rows = [{**o.data(), "name": o.ref.split(" ", 1)[1]} for o in result.objects]
        echo_data(rows, "table", columns=_COLUMNS, redact=redact)


def _dry_run_text(result: InstallResult, redact: Any) -> str:
    """kubectl-like: a ``# METHOD PATH`` comment per request, then its body as YAML."""
    import yaml

    parts = []
    for step in result.steps:
        what = f"{step.kind} {step.namespace}/{step.name}" if step.namespace else f"{step.kind} {step.name}"
        head = f"# {step.method} {step.path}  ({what}: {step.action})"
        body = "" if step.body is None else yaml.safe_dump(redact(step.body), sort_keys=False).rstrip("\n")
        parts.append(f"{head}\n{body}".rstrip("\n"))
    return "\n---\n".join(parts) + "\n# dry run: nothing was changed"

"""``mgn cluster …``: list, get, status, bootstrap, apply and delete the clusters the Host App
manages. The command surface of GuildNet's own ``mgn``, with its bugs fixed: ``list`` reads the
bare array, ``status`` asks ``/api/cluster/{id}/status`` (not the dead ``/health``) and exits
non-zero when the cluster is not usable, ``bootstrap`` posts the kubeconfig raw to
``/api/bootstrap`` and never calls a settings PUT (which shuts the Host App down).

``bootstrap``, ``apply`` and ``delete`` run their preflight gate first and send nothing when it
refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import UnreachableError
from ..lifecycle.output import echo_data
from ..lifecycle.targets import resolve_target
from ._lifecycle import (
    COMMAND_SETTINGS,
    EPILOG,
    GateArgs,
    config_options,
    context_from,
    gate,
    gate_options,
    mutating,
    negative,
    not_empty,
    output_option,
    run_lifecycle,
    show_requests,
)
from ._options import parse_duration, warn

if TYPE_CHECKING:
    from ..clients.hostapp import ClusterRecord, ClusterStatus, HostAppClient
    from ..lifecycle.context import CommandContext

__all__ = ["cluster"]

_RECORD_COLUMNS = [("ID", "id"), ("NAME", "name"), ("STATE", "state"), ("HEALTH", "health.status")]


@click.group(context_settings=COMMAND_SETTINGS)
def cluster() -> None:
    """List, inspect, register (bootstrap, apply) and delete the Host App's clusters."""


def _record(record: ClusterRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"id": record.id, "name": record.name, "state": record.state}
    if record.created_at:
        out["createdAt"] = record.created_at
    if record.updated_at:
        out["updatedAt"] = record.updated_at
    return out


def _status(status: ClusterStatus) -> dict[str, Any]:
    return {"clusterId": status.cluster_id, "kubeconfigPresent": status.kubeconfig_present,
            "kubeconfigValid": status.kubeconfig_valid, "k8sReachable": status.k8s_reachable,
            "k8sError": status.k8s_error, "pfAvailable": status.pf_available,
            "tsnetAvailable": status.tsnet_available, "recommendedAction": status.recommended_action,
            "lastChecked": status.last_checked}


def _not_found(api: HostAppClient, ref: str) -> int:
    """The one message of every command for a cluster the Host App does not hold (exit 1)."""
    from ..lifecycle.targets import listed, not_registered

    return negative(str(not_registered(ref, listed(api.clusters()))))


# -- read-only --------------------------------------------------------------------------------


@cluster.command("list", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@output_option("table", ("table", "json", "yaml"), "--format")
@config_options
def list_cmd(fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """List the registered clusters with their health (/api/health)."""
    run_lifecycle(lambda: _list(fmt, config_path, overrides))


def _list(fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> int:
    from .._exceptions import ClientError

    ctx = context_from(config_path, overrides)
    with ctx.hostapp() as api:
        rows = [_record(r) for r in api.clusters()]
        try:
            health = {e.id: e for e in api.health().clusters} if rows else {}
        except ClientError as exc:  # the records are still worth showing
            warn(f"cluster health unknown: {exc}")
            health = {}
    for row in rows:
        entry = health.get(row["id"])
        row["health"] = {"status": entry.status if entry else "unknown",
                         **({"code": entry.code} if entry and entry.code else {})}
    echo_data(rows, fmt, columns=_RECORD_COLUMNS, redact=ctx.config.redactor.data)
    return 0


@cluster.command("get", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@click.argument("cluster_ref", metavar="ID", callback=not_empty)
@output_option("yaml", ("yaml", "json", "table"))
@config_options
def get_cmd(cluster_ref: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Show the record of cluster ID (an id, or a name only one cluster has)."""
    run_lifecycle(lambda: _get(cluster_ref, fmt, config_path, overrides))


def _get(ref: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.clusters import resolve

    ctx = context_from(config_path, overrides)
    with ctx.hostapp() as api:
        record = resolve(api, ref)
        if record is None:
            return _not_found(api, ref)
    echo_data(_record(record), fmt, redact=ctx.config.redactor.data)
    return 0


@cluster.command("status", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@click.argument("cluster_ref", metavar="ID", callback=not_empty)
@output_option()
@config_options
def status_cmd(cluster_ref: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Whether the Host App can use cluster ID (/api/cluster/ID/status): exit 1, with the fix,
    when its kubeconfig is missing or its API server unreachable."""
    run_lifecycle(lambda: _status_of(cluster_ref, fmt, config_path, overrides))


def _status_of(ref: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.clusters import resolve, status_fix

    ctx = context_from(config_path, overrides)
    with ctx.hostapp() as api:
        record = resolve(api, ref)
        status = api.cluster_status(record.id if record else ref)
        if record is None and not status.kubeconfig_present:  # the Host App answers /status for any id
            return _not_found(api, ref)
    echo_data(_status(status), fmt, redact=ctx.config.redactor.data)
    if not status.ok:
        why = status.k8s_error or ("no usable kubeconfig" if not status.kubeconfig_valid else "not reachable")
        return negative(f"cluster {ref!r} is not usable: {ctx.config.redactor.text(why)}; fix: {status_fix(status)}")
    return 0


# -- gated ------------------------------------------------------------------------------------


def _gate_settings(ctx: CommandContext, name: str, kubeconfig: str | None) -> dict[str, tuple[Any, bool]]:
    """Settings that point the gate's cluster ``name`` at ``kubeconfig`` (the one the command
    is about to register), or at the configured one when none is given."""
    configured = {str(e.get("id") if isinstance(e, dict) else e) for e in ctx.config["clusters"] or []}
    if kubeconfig is None and name in configured:
        return {}
    settings: dict[str, tuple[Any, bool]] = {"clusters": ([], False), "defaults.cluster": (name, False)}
    if kubeconfig is not None:
        settings["kubernetes.kubeconfig"] = (str(Path(kubeconfig).expanduser().resolve()), False)
        settings["kubernetes.context"] = (None, False)
    return settings


@cluster.command("bootstrap", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@click.option("--kubeconfig", "kubeconfig", required=True, metavar="PATH", help="The cluster's kubeconfig.")
@click.option("--name", default="", help="The cluster's name (default: its new id).")
@output_option()
@gate_options
@config_options
def bootstrap_cmd(kubeconfig: str, name: str, fmt: str, ignore: tuple[str, ...], reason: str, dry_run: bool,
                  json_path: str | None, junit_path: str | None, verbose: int, config_path: str | None,
                  overrides: tuple[str, ...]) -> None:
    """Register the cluster of --kubeconfig with the Host App (POST /api/bootstrap), once the
    cluster.bootstrap gate passes for it. A cluster already registered as --name is left alone."""
    args = GateArgs.of(ignore, reason, dry_run, json_path, junit_path, verbose)
    run_lifecycle(lambda: _bootstrap(kubeconfig, name, fmt, args, config_path, overrides))


def _bootstrap(path: str, name: str, fmt: str, args: GateArgs, config_path: str | None,
               overrides: tuple[str, ...]) -> int:
    from ..lifecycle.clusters import read_kubeconfig

    text = read_kubeconfig(path)
    ctx = context_from(config_path, overrides)
    target = name or ctx.default_cluster() or "default"
    # The gate first: it says (with its report) why the Host App cannot be asked, and nothing,
    # not even a stored kubeconfig, is read from the Host App before it passes.
    outcome = gate(ctx, "cluster.bootstrap", (target,), "cluster bootstrap", args,
                   settings=_gate_settings(ctx, target, path))
    if not outcome.proceed:
        return int(outcome.exit_code)
    columns = [("ID", "id"), ("NAME", "name")]
    with ctx.hostapp() as api:
        existing = _registered(api, name, text)
        if existing is not None:
            click.echo(f"cluster {existing.name!r} is already registered (id {existing.id}); nothing to do", err=True)
            echo_data({"id": existing.id, "name": existing.name}, fmt, columns=columns)
            return 0
        cluster_body: dict[str, Any] = {"kubeconfig": text, **({"name": name} if name else {})}
        if args.dry_run:
            show_requests(ctx, [("POST", "/api/bootstrap", {"cluster": cluster_body})], fmt)
            return 0
        mutating(api)
        cluster_id = api.bootstrap(text, name=name or None)
    echo_data({"id": cluster_id, "name": name or cluster_id}, fmt, columns=columns)
    return 0


def _registered(api: HostAppClient, name: str, kubeconfig: str) -> ClusterRecord | None:
    """The record ``bootstrap`` would duplicate: by --name (an id or a name, ambiguous: exit 2);
    without one, a record already holding this kubeconfig."""
    from ..lifecycle.clusters import find_by_kubeconfig, resolve

    return resolve(api, name) if name else find_by_kubeconfig(api, kubeconfig)


@cluster.command("delete", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@click.argument("cluster_ref", metavar="ID", callback=not_empty)
@gate_options
@config_options
def delete_cmd(cluster_ref: str, ignore: tuple[str, ...], reason: str, dry_run: bool, json_path: str | None,
               junit_path: str | None, verbose: int, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Delete the record of cluster ID, once the cluster.delete gate passes. The Host App keeps
    the cluster's kubeconfig credential and settings."""
    args = GateArgs.of(ignore, reason, dry_run, json_path, junit_path, verbose)
    run_lifecycle(lambda: _delete(cluster_ref, args, config_path, overrides))


def _delete(ref: str, args: GateArgs, config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.clusters import resolve

    ctx = context_from(config_path, overrides)
    try:  # the gate's target is the id (a name is not a cluster id the checks know)
        with ctx.hostapp() as api:
            record = resolve(api, ref)
            if record is None:
                return _not_found(api, ref)
    except UnreachableError:  # the gate says why, with its report
        record = None
    # The gate runs for the configured cluster of that id or name (its checks find the record).
    gate_id = resolve_target(ctx, record.id if record else ref).gate_id
    outcome = gate(ctx, "cluster.delete", (gate_id,), "cluster delete", args)
    if not outcome.proceed:
        return int(outcome.exit_code)
    with ctx.hostapp() as api:
        record = record or resolve(api, ref)
        if record is None:
            return _not_found(api, ref)
        if args.dry_run:
            show_requests(ctx, [("DELETE", f"/api/deploy/clusters/{record.id}", None)], "table")
            return 0
        mutating(api)
        api.delete_cluster(record.id)
    click.echo(f"cluster {record.name} ({record.id}) deleted", err=True)
    click.echo("note: the Host App deletes only the record: it keeps the cluster's kubeconfig credential and "
               f"settings, so /api/cluster/{record.id}/... still answers", err=True)
    return 0


@cluster.command("apply", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@click.option("-f", "--file", "file", required=True, metavar="CLUSTER.yaml", help="The cluster template (§7).")
@click.option("--kubeconfig", metavar="PATH", help="The cluster's kubeconfig (else cluster.kubeconfig, "
              "else the configured kubernetes.kubeconfig).")
@click.option("--wait", "wait", is_flag=False, flag_value="5m", default=None, metavar="[DURATION]",
              help="Wait until the Host App can use the cluster (default 5m).")
@output_option()
@gate_options
@config_options
def apply_cmd(file: str, kubeconfig: str | None, wait: str | None, fmt: str, ignore: tuple[str, ...], reason: str,
              dry_run: bool, json_path: str | None, junit_path: str | None, verbose: int, config_path: str | None,
              overrides: tuple[str, ...]) -> None:
    """Make the Host App hold the cluster of a template: register it if no cluster has its
    name, attach its kubeconfig when the stored one differs. Applying twice changes nothing.
    Settings the Host App takes only through a settings PUT (which restarts it) are listed in a
    warning and never sent."""
    args = GateArgs.of(ignore, reason, dry_run, json_path, junit_path, verbose)
    timeout = parse_duration(wait) if wait is not None else None
    run_lifecycle(lambda: _apply(file, kubeconfig, timeout, fmt, args, config_path, overrides))


def _apply(file: str, kubeconfig: str | None, timeout: float | None, fmt: str, args: GateArgs,
           config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.clusters import ClusterTemplate, apply_steps, plan_apply, read_kubeconfig, wait_usable
    from ..lifecycle.files import read_yaml

    template = ClusterTemplate.from_mapping(read_yaml(file, "-f"), source=file)
    ctx = context_from(config_path, overrides)
    # --kubeconfig, else the template's (a path or inline), else the configured one.
    path = kubeconfig or template.kubeconfig_path()
    text = read_kubeconfig(path, what="--kubeconfig" if kubeconfig else "cluster.kubeconfig") if path \
        else template.kubeconfig_text()
    if text is None:
        path = _configured_kubeconfig(ctx, template.name)
        text = read_kubeconfig(path, what="kubernetes.kubeconfig") if path else None
    if template.unsupported:
        warn(f"{file}: not applied (the Host App takes them only through a settings PUT, which restarts it): "
             + ", ".join(template.unsupported))
    if text is None:
        warn(f"{file}: no kubeconfig (--kubeconfig, cluster.kubeconfig or kubernetes.kubeconfig): "
             "the cluster is registered without one")
    with _gate_copy(text if path is None else None) as inline:  # the gate reads a file
        outcome = gate(ctx, "cluster.apply", (template.name,), "cluster apply", args,
                       settings=_gate_settings(ctx, template.name, path or inline))
    if not outcome.proceed:
        return int(outcome.exit_code)
    with ctx.hostapp() as api:
        plan = plan_apply(api, template.name, text)
        if args.dry_run:
            show_requests(ctx, [(step.method, step.path, step.body) for step in plan.steps], fmt)
            if not plan.steps and fmt == "table":
                click.echo(f"cluster {template.name}: unchanged", err=True)
            return 0
        if plan.steps:
            mutating(api)
        cluster_id = apply_steps(api, plan)
        if timeout is not None:
            wait_usable(api, cluster_id, timeout, interval=min(2.0, max(timeout / 10, 0.1)),
                        on_poll=_cluster_progress(template.name))
    changes = [step.what for step in plan.steps] or ["unchanged"]
    echo_data({"id": cluster_id, "name": template.name, "changes": changes}, fmt,
              columns=[("ID", "id"), ("NAME", "name"), ("CHANGES", "changes")])
    return 0


@contextmanager
def _gate_copy(text: str | None) -> Iterator[str | None]:
    """An inline ``cluster.kubeconfig`` as a private (0600) temporary file, so the gate checks
    the kubeconfig that gets attached; removed afterwards. None when there is no inline text."""
    if text is None:
        yield None
        return
    import os
    import tempfile

    fd, name = tempfile.mkstemp(prefix="mgn-kubeconfig-", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        yield name
    finally:
        Path(name).unlink(missing_ok=True)


def _cluster_progress(name: str) -> Callable[[ClusterStatus], None]:
    """An ``on_poll`` printing (on stderr) why the cluster is not usable yet, once per reason."""
    seen: list[str] = []

    def report(status: ClusterStatus) -> None:
        why = "" if status.ok else (status.k8s_error or status.recommended_action or "not usable")
        if why and (not seen or seen[-1] != why):
            seen.append(why)
            click.echo(f"waiting for cluster {name}: {why}", err=True)

    return report


def _configured_kubeconfig(ctx: CommandContext, name: str) -> str | None:
    """The kubeconfig the config names for cluster ``name``, else ``kubernetes.kubeconfig``."""
    for entry in ctx.config["clusters"] or []:
        if isinstance(entry, dict) and entry.get("id") == name and entry.get("kubeconfig"):
            return str(entry["kubeconfig"])
    value = ctx.config["kubernetes.kubeconfig"]
    return str(value) if value else None

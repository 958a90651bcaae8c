"""``mgn workspace …``: create, list, get, wait for, test, read the logs of and delete workspaces
through the Host App. The command surface of GuildNet's own ``mgn`` (its CI examples run
unchanged), with its bugs fixed: ``wait`` reads ``.status.phase``, ``logs`` sends ``limit`` and
prints ``msg``, ``get -o json`` carries ``"status":"Running"``, failures exit non-zero.

``create`` and ``delete`` run their preflight gate (``workspace.create``/``workspace.delete``)
for the target cluster first and send nothing when it refuses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from .._exceptions import ApiError
from ..lifecycle.exits import LifecycleExit
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
from ._options import error, parse_duration, warn

__all__ = ["workspace"]



@click.group(context_settings=COMMAND_SETTINGS)
def workspace() -> None:
    """Create, list, inspect, wait for, test and delete workspaces (through the Host App)."""


def _cluster_arg(func: Any) -> Any:
    return click.argument("cluster", callback=not_empty)(func)


def _name_arg(func: Any) -> Any:
    return click.argument("name", callback=not_empty)(func)


# -- create -----------------------------------------------------------------------------------


@workspace.command("create", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@_cluster_arg
@click.option("--name", required=True, help="The workspace's name.")
@click.option("--image", required=True, help="The container image.")
@click.option("--env", "envs", multiple=True, metavar="K=V", help="An environment variable (repeatable).")
@click.option("--port", "ports", multiple=True, type=click.IntRange(1, 65535), metavar="N",
              help="A container port (repeatable).")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="A label (repeatable).")
@output_option()
@gate_options
@config_options
def create_cmd(cluster: str, name: str, image: str, envs: tuple[str, ...], ports: tuple[int, ...],
               labels: tuple[str, ...], fmt: str, ignore: tuple[str, ...], reason: str, dry_run: bool,
               json_path: str | None, junit_path: str | None, verbose: int, config_path: str | None,
               overrides: tuple[str, ...]) -> None:
    """Create workspace NAME on CLUSTER, once its workspace.create gate passes.

    A workspace of that name already there is an error (exit 1); nothing is sent then."""
    args = GateArgs.of(ignore, reason, dry_run, json_path, junit_path, verbose)
    run_lifecycle(lambda: _create(cluster, name, image, envs, ports, labels, fmt, args, config_path, overrides))


def _create(cluster: str, name: str, image: str, envs: tuple[str, ...], ports: tuple[int, ...],
            labels: tuple[str, ...], fmt: str, args: GateArgs, config_path: str | None,
            overrides: tuple[str, ...]) -> int:
    from ..lifecycle.workspaces import WorkspaceExists, WorkspacePort, WorkspaceSpec, create, env_pairs

    spec = WorkspaceSpec(name, image, env=env_pairs(envs, "--env"), ports=tuple(WorkspacePort(p) for p in ports),
                         labels=env_pairs(labels, "--label"))
    ctx = context_from(config_path, overrides)
    target = resolve_target(ctx, cluster)
    outcome = gate(ctx, "workspace.create", (target.gate_id,), "workspace create", args)
    if not outcome.proceed:
        return int(outcome.exit_code)
    with ctx.hostapp() as api:
        if args.dry_run:
            if api.workspace_resource(target.host_id, name) is not None:
                return negative(f"workspace {name!r} already exists on cluster {cluster!r}")
            show_requests(ctx, [("POST", f"/api/cluster/{target.host_id}/workspaces", spec.body())], fmt)
            return 0
        mutating(api)
        try:
            create(api, target.host_id, spec)
        except WorkspaceExists as exc:
            return negative(str(exc))
    echo_data({"id": name, "cluster": cluster, "status": "pending"}, fmt,
              columns=[("ID", "id"), ("CLUSTER", "cluster"), ("STATUS", "status")])
    return 0


# -- delete -----------------------------------------------------------------------------------


@workspace.command("delete", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@_cluster_arg
@_name_arg
@gate_options
@config_options
def delete_cmd(cluster: str, name: str, ignore: tuple[str, ...], reason: str, dry_run: bool,
               json_path: str | None, junit_path: str | None, verbose: int, config_path: str | None,
               overrides: tuple[str, ...]) -> None:
    """Delete workspace NAME from CLUSTER, once its workspace.delete gate passes (exit 1 when
    the Host App does not find it)."""
    args = GateArgs.of(ignore, reason, dry_run, json_path, junit_path, verbose)
    run_lifecycle(lambda: _delete(cluster, name, args, config_path, overrides))


def _delete(cluster: str, name: str, args: GateArgs, config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.workspaces import delete

    ctx = context_from(config_path, overrides)
    target = resolve_target(ctx, cluster)
    outcome = gate(ctx, "workspace.delete", (target.gate_id,), "workspace delete", args)
    if not outcome.proceed:
        return int(outcome.exit_code)
    with ctx.hostapp() as api:
        if args.dry_run:
            if api.workspace_resource(target.host_id, name) is None:
                return _not_found(api, target.host_id, cluster, name)
            show_requests(ctx, [("DELETE", f"/api/cluster/{target.host_id}/workspaces/{name}", None)], "table")
            return 0
        mutating(api)
        if not delete(api, target.host_id, name):
            return _not_found(api, target.host_id, cluster, name)
    click.echo(f"workspace {name} deleted from cluster {cluster}", err=True)  # a message, not data
    return 0


# -- read-only --------------------------------------------------------------------------------


@workspace.command("list", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@_cluster_arg
@output_option()
@config_options
def list_cmd(cluster: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """List CLUSTER's workspaces (the Host App's /servers)."""
    run_lifecycle(lambda: _list(cluster, fmt, config_path, overrides))


def _list(cluster: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.clusters import require_usable
    from ..lifecycle.workspaces import server_row

    ctx = context_from(config_path, overrides)
    with ctx.hostapp() as api:
        host_id = resolve_target(ctx, cluster, api).require().host_id
        servers = api.servers(host_id)
        if not servers:  # the Host App answers [] also when it cannot list: say which
            require_usable(api, host_id, cluster)
    rows = [server_row(s) for s in servers]
    if fmt == "table":
        for row in rows:
            row["ports"] = [p["port"] for p in row["ports"]]
    echo_data(rows, fmt, columns=[("NAME", "name"), ("IMAGE", "image"), ("STATUS", "state"), ("PORTS", "ports")])
    return 0


def _not_found(api: Any, host_id: str, cluster: str, name: str) -> int:
    """The Host App's 404 means "not found" only when it can use the cluster (§2.9.6: it
    answers 404 for any error): else exit 5 saying why."""
    from ..lifecycle.clusters import require_usable

    require_usable(api, host_id, cluster)
    return negative(f"workspace {name!r} not found on cluster {cluster!r}")


_VIEW_COLUMNS = [("NAME", "name"), ("CLUSTER", "cluster"), ("IMAGE", "image"), ("STATUS", "status"),
                 ("READY", "readyReplicas"), ("SERVICE", "serviceDNS")]


@workspace.command("get", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@_cluster_arg
@_name_arg
@output_option()
@config_options
def get_cmd(cluster: str, name: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Show workspace NAME: its status (.status.phase), ports, service, and with -o json|yaml
    the raw Workspace resource too."""
    run_lifecycle(lambda: _get(cluster, name, fmt, config_path, overrides))


def _get(cluster: str, name: str, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.workspaces import view

    ctx = context_from(config_path, overrides)
    with ctx.hostapp() as api:
        host_id = resolve_target(ctx, cluster, api).require().host_id
        resource = api.workspace_resource(host_id, name)
        if resource is None:
            return _not_found(api, host_id, cluster, name)
    echo_data(view(cluster, resource), fmt, columns=_VIEW_COLUMNS, redact=ctx.config.redactor.data)
    return 0


@workspace.command("logs", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@_cluster_arg
@_name_arg
@click.option("--tail", type=click.IntRange(1), default=100, show_default=True, help="The last N lines.")
@click.option("-f", "--follow", is_flag=True, hidden=True)  # the peer's flag: accepted, not streamed
@output_option("table", ("table", "json", "yaml"))
@config_options
def logs_cmd(cluster: str, name: str, tail: int, follow: bool, fmt: str, config_path: str | None,
             overrides: tuple[str, ...]) -> None:
    """Print the last lines of workspace NAME's logs (every pod, prefixed [pod])."""
    if follow:  # the peer's flag: accepted so its scripts run, but say it does nothing
        warn("-f/--follow is not supported (the Host App cuts its log stream after 10 s): "
             "printing the last lines once")
    run_lifecycle(lambda: _logs(cluster, name, tail, fmt, config_path, overrides))


def _logs(cluster: str, name: str, tail: int, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> int:
    ctx = context_from(config_path, overrides)
    with ctx.hostapp() as api:
        host_id = resolve_target(ctx, cluster, api).require().host_id
        try:
            lines = api.workspace_logs(host_id, name, tail)
        except ApiError as exc:
            if exc.status != 404:
                raise
            from ..lifecycle.clusters import require_usable

            require_usable(api, host_id, cluster)
            return negative(f"workspace {name!r} on cluster {cluster!r} has no pods (not found, or not "
                            "started yet)")
    redact = ctx.config.redactor
    if fmt == "table":
        for line in lines:
            click.echo(redact.text(line.msg))
    else:
        echo_data([{"t": line.t, "msg": line.msg} for line in lines], fmt, redact=redact.data)
    return 0


# -- wait and test ----------------------------------------------------------------------------


@workspace.command("wait", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@_cluster_arg
@_name_arg
@click.option("--timeout", default="5m", show_default=True, metavar="DURATION",
              help="Give up after this long (90s, 5m, 1h).")
@click.option("--interval", default="2s", show_default=True, metavar="DURATION", help="Time between polls.")
@output_option()
@config_options
def wait_cmd(cluster: str, name: str, timeout: str, interval: str, fmt: str, config_path: str | None,
             overrides: tuple[str, ...]) -> None:
    """Wait until workspace NAME is Running with a ready replica (.status.phase); progress on
    stderr. Exit 1 with the last phase seen when the timeout passes, or as soon as NAME has
    not been found for 5 x --interval on end (10 s by default; at least 1 s), as kubectl wait
    does."""
    run_lifecycle(lambda: _wait(cluster, name, parse_duration(timeout), parse_duration(interval), fmt,
                                config_path, overrides))


def _wait(cluster: str, name: str, timeout: float, interval: float, fmt: str, config_path: str | None,
          overrides: tuple[str, ...]) -> int:
    from ..lifecycle.clusters import require_usable
    from ..lifecycle.workspaces import WaitTimeout, WorkspaceMissing, wait_ready

    ctx = context_from(config_path, overrides)
    interval = max(interval, 0.05)
    # The Host App creates the resource before answering a create: one not there after a few
    # polls will not appear (the grace only covers a create sent by someone else just now).
    grace = max(1.0, 5 * interval)
    with ctx.hostapp() as api:
        host_id = resolve_target(ctx, cluster, api).require().host_id
        try:
            result = wait_ready(api, host_id, name, timeout, interval=interval, on_poll=_progress(name),
                                missing_after=grace if grace < timeout else None)
        except WorkspaceMissing as exc:
            require_usable(api, host_id, cluster)
            return negative(f"workspace {name!r} not found on cluster {cluster!r} (still not there after "
                            f"{exc.after:g} s)")
        except WaitTimeout as exc:
            if exc.last_phase == "not found":
                require_usable(api, host_id, cluster)
            return negative(str(exc))
    if fmt == "table":
        click.echo(f"workspace {name} is Running ({result['readyReplicas']} ready)")
    else:
        echo_data(result, fmt, redact=ctx.config.redactor.data)
    return 0


def _progress(name: str) -> Callable[[dict[str, Any] | None], None]:
    """An ``on_poll`` printing each change of phase on stderr, with the time waited."""
    start = time.monotonic()
    seen: list[str] = []

    def report(current: dict[str, Any] | None) -> None:
        phase = "not found" if current is None else str(current["phase"] or "no status yet")
        if current is not None and current["phase"] == "Running" and not current["readyReplicas"]:
            phase = "Running (no ready replica yet)"
        if not seen or seen[-1] != phase:
            seen.append(phase)
            click.echo(f"waiting for workspace {name}: {phase} ({time.monotonic() - start:.0f}s)", err=True)

    return report


@workspace.command("test", epilog=EPILOG, context_settings=COMMAND_SETTINGS)
@_cluster_arg
@_name_arg
@click.option("--http-check", "paths", multiple=True, required=True, metavar="PATH",
              help="GET this path through the Host App's proxy (repeatable).")
@click.option("--expected-status", type=click.IntRange(100, 599), default=200, show_default=True)
@click.option("--retries", type=click.IntRange(0), default=2, show_default=True,
              help="Extra tries of a check that differs (a just-started server may not answer yet).")
@click.option("--interval", default="1s", show_default=True, metavar="DURATION", help="Time between tries.")
@config_options
def test_cmd(cluster: str, name: str, paths: tuple[str, ...], expected_status: int, retries: int, interval: str,
             config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Reach workspace NAME through the Host App's proxy: one line per --http-check; exit 1
    when any answers another status than --expected-status."""
    run_lifecycle(lambda: _test(cluster, name, paths, expected_status, retries, parse_duration(interval),
                                config_path, overrides))


def _test(cluster: str, name: str, paths: tuple[str, ...], expected: int, retries: int, interval: float,
          config_path: str | None, overrides: tuple[str, ...]) -> int:
    from ..lifecycle.workspaces import http_check

    ctx = context_from(config_path, overrides)
    failed = 0
    with ctx.hostapp() as api:  # proxy_get sends no token (the Host App would forward it upstream)
        host_id = resolve_target(ctx, cluster, api).require().host_id
        # The proxy answers 200 [] when the Host App has no kube clients for the cluster (as every
        # GET then does): the workspace must be there first, or a check would pass on nothing.
        if api.workspace_resource(host_id, name) is None:
            return _not_found(api, host_id, cluster, name)
        for path in paths:
            ok, line = http_check(api, host_id, name, path, expected, retries=retries, interval=interval)
            click.echo(ctx.config.redactor.text(line))
            failed += not ok
    if failed:
        error(f"{failed} of {len(paths)} HTTP check(s) of workspace {name!r} failed")
        return int(LifecycleExit.FAILED)
    return 0

"""``mgn viz [--cluster ID] [--refresh SECONDS]``: GuildNet's own ``mgn viz`` (guildnet-host-app.md
§6.2) done right. It reads each cluster's state from ``/status`` (never the dead ``/health``
route), lists workspaces from ``/servers`` (a bare array) with their CR phase, nodes through the
cluster's kubeconfig, and runs the GuildNet layers' preflight in the background, highlighting
what changed since the previous run.

On a terminal it is a live dashboard (``q`` quits); otherwise it prints one plain snapshot and
exits with the verdict (see ``--help``).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import NoReturn

import click

from ..lifecycle.exits import LifecycleExit
from ._lifecycle import COMMAND_SETTINGS, config_options, run_lifecycle

__all__ = ["viz"]


def _not_blank(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    if any(not v.strip() for v in values):
        raise click.BadParameter("must not be empty")
    return tuple(v.strip() for v in values)


def _leave_now(code: int) -> NoReturn:
    """End the process at once: a preflight run is still under way on its threads, and the
    executors' workers among them would be joined at exit, holding the prompt for seconds after
    ``q``. The terminal is already restored; nothing else is left to write."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _epilog() -> str:
    from ..viz.app import EXIT_CODES

    return EXIT_CODES


@click.command("viz", epilog=_epilog(), context_settings=COMMAND_SETTINGS)
@click.option("--cluster", "clusters", multiple=True, metavar="ID", callback=_not_blank,
              help="Only this cluster (its id; repeatable). Default: every cluster.")
@click.option("--refresh", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Seconds between refreshes [config: viz.refresh, 5].")
@config_options
def viz(clusters: tuple[str, ...], refresh: float | None, config_path: str | None,
        overrides: tuple[str, ...]) -> None:
    """Live terminal dashboard of every cluster: the Host App's health, each cluster's status,
    nodes, workspaces and their phases, RethinkDB and the tailnet, and the preflight of the
    kubernetes, rethinkdb, tailscale and guildnet layers (re-run in the background) with the
    checks whose status changed highlighted. Press q to quit.

    When stdout is not a terminal it prints one plain-text snapshot (with one preflight run)
    and exits with its verdict."""
    run_lifecycle(lambda: _viz(clusters, refresh, config_path, overrides))


def _viz(clusters: tuple[str, ...], refresh: float | None, config_path: str | None,
         overrides: tuple[str, ...]) -> int:
    from .._session import Session
    from ..viz.app import one_shot, run_live
    from ..viz.collect import Collector
    from ..viz.preflight import LAYERS, PreflightLoop
    from ..viz.summary import cleaner
    from ._options import parse_overrides, warn
    from ._request import RunRequest, prepare

    live = sys.stdout.isatty()
    settings = parse_overrides(overrides)
    if clusters:
        settings["verify.clusters"] = (list(clusters), False)
    notes: list[str] = []  # live: warnings are shown on the dashboard, never written under it
    request = RunRequest(layers=LAYERS, config_path=config_path, settings=settings, selection=LAYERS,
                         load_selection=LAYERS)
    prepared = prepare(request, session=Session(os.environ, notes.append if live else warn))
    config = prepared.loaded.config
    interval = float(refresh if refresh is not None else config["viz.refresh"])
    clean = cleaner(config.redactor)
    collector = Collector(config, clusters)
    dirty = threading.Event()
    preflight = PreflightLoop(prepared, interval, dirty.set, notes)
    if live:  # its threads may still be using the clients when it ends: the process exit frees them
        try:
            code = run_live(collector, preflight, dirty, clean, interval)
        except KeyboardInterrupt:
            click.echo("mgn: interrupted", err=True)
            code = int(LifecycleExit.INTERRUPTED)
        if preflight.view().running:
            _leave_now(code)
        return code
    try:
        return one_shot(collector, preflight, clean, sys.stdout)
    finally:
        collector.close()

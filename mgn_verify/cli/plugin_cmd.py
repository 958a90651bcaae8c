"""``mgn plugin``: the loaded plugins, where each came from and which hooks it implements.

::

    mgn plugin list                         # NAME, SOURCE, DISTRIBUTION, VERSION, HOOKS
    mgn plugin list -o json --checks-dir ./checks
"""

from __future__ import annotations

import json
from typing import Any

import click

from .._loaded import LoadedSession
from ._options import loading_options, open_session, parse_overrides, run_or_exit

__all__ = ["plugin"]

EPILOG = ("\b\nExit codes:\n    0  done\n    2  usage, configuration or plugin error\n"
          "  130  interrupted (Ctrl-C or SIGTERM)")


@click.group()
def plugin() -> None:
    """Show the loaded plugins (core, the built-in layers and reporters, entry points, -p, checks dirs)."""


@plugin.command("list", epilog=EPILOG)
@loading_options
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
def list_(plugins: tuple[str, ...], checks_dir: tuple[str, ...], config_path: str | None,
          overrides: tuple[str, ...], fmt: str) -> None:
    """Every loaded plugin: name, where it came from, distribution, version, hooks it implements."""
    def body() -> int:
        session = open_session(plugins, checks_dir, config_path, parse_overrides(overrides))
        rows = session.config.redactor.data(plugin_rows(session))
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
            return 0
        header = ("NAME", "SOURCE", "DISTRIBUTION", "VERSION", "HOOKS")
        table = [header, *((r["name"], r["source"], r["distribution"] or "-", r["version"] or "-",
                            ", ".join(r["hooks"]) or "-") for r in rows)]
        widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
        for row in table:
            click.echo("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]))
        return 0

    run_or_exit(body)


def plugin_rows(session: LoadedSession) -> list[dict[str, Any]]:
    """One row per loaded plugin, in load order, with the sorted names of its hooks."""
    pm = session.plugins.pm
    rows = []
    for info in session.plugins.loaded:
        module = pm.get_plugin(info.name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(module) or ()) if module is not None else []
        rows.append({"name": info.name, "source": info.source, "distribution": info.distribution,
                     "version": info.version, "module": info.module, "hooks": hooks})
    return rows

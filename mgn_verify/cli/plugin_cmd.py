"""``mgn plugin``: the loaded plugins, where each came from and which hooks it implements.

::

    mgn plugin list                         # NAME, SOURCE, DISTRIBUTION, VERSION, HOOKS
    mgn plugin list -o json --checks-dir ./checks
    mgn plugin new acme-disk [--dir DIR]    # a new plugin distribution in DIR/acme-disk
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import click

from .._loaded import LoadedSession
from ._options import loading_options, open_session, parse_overrides, run_or_exit

__all__ = ["format_rows", "plugin", "plugin_rows", "show_versions"]

EPILOG = ("\b\nExit codes:\n    0  done\n    2  usage, configuration or plugin error\n"
          "  130  interrupted (Ctrl-C or SIGTERM)")


@click.group()
def plugin() -> None:
    """Show the loaded plugins (core, the built-in layers and reporters, entry points, -p, checks dirs),
    or start a new one."""


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
        for line in format_rows(rows):
            click.echo(line)
        return 0

    run_or_exit(body)


def show_versions(plugins: tuple[str, ...], checks_dir: tuple[str, ...], config_path: str | None,
                  overrides: tuple[str, ...]) -> None:
    """``mgn verify --version``: mgn's version, then every plugin a run with these options loads."""
    from .._version import __version__

    def body() -> int:
        session = open_session(plugins, checks_dir, config_path, parse_overrides(overrides))
        click.echo(f"mgn, version {__version__}\nplugins:")
        for line in format_rows(session.config.redactor.data(plugin_rows(session))):
            click.echo(f"  {line}")
        return 0

    run_or_exit(body)


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """``plugin_rows`` as an aligned table: NAME, SOURCE, DISTRIBUTION, VERSION, HOOKS."""
    header = ("NAME", "SOURCE", "DISTRIBUTION", "VERSION", "HOOKS")
    table = [header, *((r["name"], r["source"], r["distribution"] or "-", r["version"] or "-",
                        ", ".join(r["hooks"]) or "-") for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]) for row in table]


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


@plugin.command("new", epilog=EPILOG)
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True, metavar="DIR",
              help="The existing directory to create NAME/ in.")
def new(name: str, directory: str) -> None:
    """Start a plugin: a complete distribution in DIR/NAME.

    It holds pyproject.toml (an entry point in group mgn_verify), a package NAME with - as _ (also
    the layer) with a setting, a fixture, a check that requires a built-in check and a parametrized
    check, tests written with the test kit, and a README. NAME: lowercase letters and digits,
    starting with a letter, in parts joined by - or _; not all, a mgn verify subcommand, test(s), checks or
    conftest. An existing DIR/NAME (or one differing only in - and _) is never overwritten."""
    def body() -> int:
        from ..scaffold import generate

        made = generate(name, Path(directory))
        where = os.path.normpath(os.path.join(directory, name))
        click.echo(f"Created plugin {made.name} (package and layer {made.package}) in {where}/:")
        for path in made.files:
            click.echo(f"  {os.path.join(where, str(path))}")
        # Editable (-e): edits to the checks take effect without reinstalling. "./" makes pip read a path.
        install = where if os.path.isabs(where) or where.startswith(".") else f"./{where}"
        click.echo("\nNext steps:")
        for step in (f"pip install -e {shlex.quote(install)}", f"mgn verify list {made.package}",
                     f"mgn verify {made.package}", f"cd {shlex.quote(where)} && pytest"):
            click.echo(f"  {step}")
        return 0

    run_or_exit(body)

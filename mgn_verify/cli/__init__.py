"""The ``mgn`` command line. Subcommands are imported only when used, so ``mgn --version``
stays fast and never pays for the verification engine."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from .._exitcodes import ExitCode
from .._text import escape_controls
from .._version import __version__

__all__ = ["main"]

_SUBCOMMANDS = {
    "verify": ("mgn_verify.cli.verify", "verify", "Run preflight checks (mgn verify --help)."),
    "config": ("mgn_verify.cli.config_cmd", "config", "Show the resolved configuration."),
    "lab": ("mgn_verify.lab.cli", "lab", "Run the GuildNet lab: local simulators to verify against."),
    # The lifecycle commands: each runs its preflight gate before it acts.
    "install": ("mgn_verify.cli.install_cmd", "install", "Install GuildNet onto the configured cluster (gated)."),
    "cluster": ("mgn_verify.cli.cluster_cmd", "cluster", "List, register, apply and delete clusters (gated)."),
    "workspace": ("mgn_verify.cli.workspace_cmd", "workspace", "Create, wait for, test and delete workspaces (gated)."),
    "federation": ("mgn_verify.cli.federation_cmd", "federation",
                   "Deploy a workspace to every cluster of a federation (gated)."),
    "gate": ("mgn_verify.cli.gate_cmd", "gate", "Show the preflight gates and the checks each one runs."),
    "plugin": ("mgn_verify.cli.plugin_cmd", "plugin", "List the loaded plugins and their hooks; start a new one."),
    "viz": ("mgn_verify.cli.viz_cmd", "viz", "Live terminal dashboard of every cluster and its preflight."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _SUBCOMMANDS:
            module, attr, _ = _SUBCOMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help for the lazy commands without importing them.
        rows = sorted([(name, help_) for name, (_, _, help_) in _SUBCOMMANDS.items()]
                      + [(name, command.get_short_help_str()) for name, command in self.commands.items()])
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _export(name: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    """A global option of the existing GuildNet ``mgn`` that every subcommand honours: it sets the
    environment variable the configuration reads (so a subcommand's own option still wins)."""

    def store(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            os.environ[name] = value

    return store


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="mgn")
@click.option("--api-url", metavar="URL", expose_value=False, callback=_export("MGN_API_URL"),
              help="Host App URL for every subcommand (as MGN_API_URL).")
@click.option("--token", metavar="TOKEN", expose_value=False, callback=_export("MGN_API_TOKEN"),
              help="Host App bearer token (as MGN_API_TOKEN; never shown).")
@click.option("--config", metavar="PATH", expose_value=False, callback=_export("MGN_CONFIG"),
              help="Config file for every subcommand (as MGN_CONFIG).")
@click.option("-v", "--verbose", count=True, expose_value=False, help="Accepted for compatibility "
              "(subcommands have their own -v).")
def cli() -> None:
    """MetaGuildNet command line: verify a GuildNet installation before you act on it, then act.

    The global options are those of GuildNet's existing `mgn`, so its scripts keep working."""


@cli.command("version")
def version() -> None:
    """Print the version (as mgn --version)."""
    click.echo(f"mgn, version {__version__}")


def main(argv: list[str] | None = None) -> Any:
    """The ``mgn`` entry point: click's usage errors become one line too, like every error."""
    try:
        code = cli.main(args=argv, prog_name="mgn", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "mgn"
        click.echo(f"mgn: error: {escape_controls(exc.format_message())} (see '{where} --help')", err=True)
        if _is_verify_run(exc.ctx):  # the reports it asked for are still written, with the error
            from .verify import report_usage_error

            report_usage_error(list(argv if argv is not None else sys.argv[1:]), exc.format_message())
        raise SystemExit(int(ExitCode.USAGE_ERROR)) from None
    except click.ClickException as exc:
        click.echo(f"mgn: error: {escape_controls(exc.format_message())}", err=True)
        raise SystemExit(exc.exit_code) from None
    except (click.Abort, KeyboardInterrupt):
        click.echo("mgn: interrupted", err=True)
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _is_verify_run(ctx: click.Context | None) -> bool:
    return ctx is not None and ctx.command.name == "run" and ctx.parent is not None \
        and ctx.parent.command.name == "verify"

"""Options and error handling shared by the lifecycle commands (install, cluster, workspace,
federation): the same ``--config``/``--set`` as ``mgn verify``, ``-o`` where data is printed,
and the gate options where the command mutates.

INTERFACE FIXED FOR ISSUE 10 (the lead wrote it; helpers may extend it additively).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._exceptions import ClientError, MgnVerifyError
from ..lifecycle.exits import LifecycleExit
from ._options import error, parse_overrides

__all__ = ["config_options", "context_from", "gate_options", "output_option", "run_lifecycle", "split_ids"]

F = TypeVar("F", bound=Callable[..., Any])


def config_options(func: F) -> F:
    """``--config PATH`` and ``--set KEY=VALUE`` (as ``mgn verify``)."""
    from ._options import _check_overrides

    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_check_overrides,
                        help="Override one setting (repeatable).")(func)
    return click.option("--config", "config_path", metavar="PATH",
                        help="Config file (default: $MGN_CONFIG or ~/.metaguildnet/config.yaml).")(func)


def output_option(default: str = "table", choices: tuple[str, ...] = ("table", "json", "yaml"),
                  *names: str) -> Callable[[F], F]:
    """``-o/--output FORMAT`` (plus any alias in ``names``, e.g. the peer's ``--format``)."""
    decls = ["-o", "--output", *names, "fmt"]
    return click.option(*decls, type=click.Choice(choices), default=default, show_default=True,
                        help="Output format; only json and yaml are meant for programs.")


def gate_options(func: F) -> F:
    """The options of a gated (mutating) command."""
    options = [
        click.option("--ignore-preflight-errors", "ignore", multiple=True, metavar="ID[,ID...]|all",
                     help="Proceed despite these failing preflight checks (recorded in the audit log)."),
        click.option("--reason", default="", metavar="TEXT", help="Why the ignored failures are acceptable."),
        click.option("--dry-run", is_flag=True, help="Run the preflight and print what would be done; change nothing."),
        click.option("--json", "json_path", metavar="PATH", help="Write the preflight JSON report to PATH."),
        click.option("--junit", "junit_path", metavar="PATH", help="Write the preflight JUnit report to PATH."),
        click.option("-v", "--verbose", count=True, help="Show the passing preflight checks too."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def context_from(config_path: str | None, overrides: tuple[str, ...]) -> Any:
    """The command's :class:`~mgn_verify.lifecycle.context.CommandContext`."""
    from ..lifecycle.context import CommandContext

    return CommandContext(config_path, parse_overrides(overrides), argv=sys.argv)


def split_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--ignore-preflight-errors a,b --ignore-preflight-errors c`` → ``("a", "b", "c")``."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def run_lifecycle(body: Callable[[], int]) -> None:
    """Run a command body: framework errors exit 2, client errors (the Host App or the
    Kubernetes API failed while acting) exit 5, both as one line; Ctrl-C exits 130."""
    try:
        code = body()
    except ClientError as exc:
        error(str(exc))
        code = LifecycleExit.OPERATION_FAILED
    except MgnVerifyError as exc:
        error(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("mgn: interrupted", err=True)
        code = LifecycleExit.INTERRUPTED
    sys.stdout.flush()
    raise SystemExit(int(code))

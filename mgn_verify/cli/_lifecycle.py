"""Options and error handling shared by the lifecycle commands (install, cluster, workspace,
federation): the same ``--config``/``--set`` as ``mgn verify``, ``-o`` where data is printed,
and the gate options where the command mutates.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .._exceptions import ClientError, MgnVerifyError
from ..lifecycle.exits import LifecycleExit, exit_codes_help
from ..lifecycle.output import FORMATS
from ._options import error, parse_overrides, warn

if TYPE_CHECKING:
    from ..lifecycle.context import CommandContext

__all__ = ["COMMAND_SETTINGS", "EPILOG", "GateArgs", "config_options", "context_from", "gate", "gate_options",
           "mutating", "negative", "not_empty", "output_option", "run_lifecycle", "show_requests", "split_ids"]

#: Every lifecycle command: ``-h`` too, and its exit codes in ``--help``.
COMMAND_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
EPILOG = exit_codes_help()

F = TypeVar("F", bound=Callable[..., Any])


def config_options(func: F) -> F:
    """``--config PATH`` and ``--set KEY=VALUE`` (as ``mgn verify``)."""
    from ._options import _check_overrides

    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_check_overrides,
                        help="Override one setting (repeatable).")(func)
    return click.option("--config", "config_path", metavar="PATH",
                        help="Config file (default: $MGN_CONFIG or ~/.metaguildnet/config.yaml).")(func)


def output_option(default: str = "table", choices: tuple[str, ...] = FORMATS,
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
    Kubernetes API failed while acting) exit 5, both as one line; Ctrl-C and SIGTERM exit 130
    whenever they come (a CI job cancelled while the command waits)."""
    try:
        with _sigterm_interrupts():
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


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` for the whole body, as Ctrl-C does: the command owns
    it here rather than relying on the console script's handler (``mgn_verify.cli.main`` may be
    called without it). A phase with its own handlers (the preflight's ``SignalScope``) puts this
    one back when it ends. An ignored SIGTERM (``SIG_IGN``) stays ignored; main thread only."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def not_empty(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    """A click callback: an empty (or blank) value is a usage error, not a request for
    ``/api/cluster//…`` (what a CI job sends when its CLUSTER variable is unset)."""
    if isinstance(value, str) and not value.strip():
        raise click.BadParameter("must not be empty")
    return value.strip() if isinstance(value, str) else value


def negative(message: str) -> int:
    """A negative outcome (not found, exists, timed out): one error line, exit 1."""
    error(message)
    return int(LifecycleExit.FAILED)


@dataclass(frozen=True)
class GateArgs:
    """The gate options of one invocation (what ``gate_options`` passes)."""

    ignore: tuple[str, ...] = ()
    reason: str = ""
    dry_run: bool = False
    json_path: str | None = None
    junit_path: str | None = None
    verbose: int = 0

    @classmethod
    def of(cls, ignore: tuple[str, ...], reason: str, dry_run: bool, json_path: str | None,
           junit_path: str | None, verbose: int, *, skip_verify: bool = False) -> GateArgs:
        """From the raw options; ``skip_verify`` (the peer's ``install --skip-verify``) ignores all."""
        return cls(split_ids(ignore) + (("all",) if skip_verify else ()), reason, dry_run, json_path, junit_path,
                   verbose)


def gate(ctx: CommandContext, name: str, clusters: tuple[str, ...], command: str, args: GateArgs, *,
         settings: Mapping[str, tuple[Any, bool]] | None = None, json_path: str | None = None,
         junit_path: str | None = None) -> Any:
    """Run gate ``name`` for ``clusters``: its ``PreflightOutcome`` (``proceed``, ``exit_code``;
    the report was printed). ``json_path``/``junit_path`` override ``args``'s (per cluster)."""
    from ..lifecycle.preflight import Preflight, run_preflight

    request = Preflight(gate=name, clusters=clusters, command=command, ignore=args.ignore, reason=args.reason,
                        dry_run=args.dry_run, json_path=json_path or args.json_path,
                        junit_path=junit_path or args.junit_path, verbose=args.verbose,
                        settings=dict(settings or {}))
    return run_preflight(request, ctx)


def show_requests(ctx: CommandContext, requests: Sequence[tuple[str, str, Any]], fmt: str) -> None:
    """``--dry-run``: the requests that would be sent, ``(method, path, body)``, secrets masked.
    A table prints ``would METHOD PATH BODY`` lines; json/yaml print ``{"dry_run": true,
    "requests": [...]}`` and nothing else."""
    import json

    from ..lifecycle.output import echo_data, mask_secrets

    shown = [{"method": method, "path": path, "body": None if body is None else mask_secrets(body)}
             for method, path, body in requests]
    if fmt != "table":
        echo_data({"dry_run": True, "requests": shown}, fmt, redact=ctx.config.redactor.data)
        return
    for request in shown:
        line = f"would {request['method']} {request['path']}"
        if request["body"] is not None:
            line += " " + json.dumps(ctx.config.redactor.data(request["body"]), separators=(",", ":"),
                                     ensure_ascii=False, default=str)
        click.echo(line)


def mutating(api: Any) -> None:
    """Before the first mutating request: warn when the Host App will refuse it (not loopback)."""
    note = api.loopback_note()
    if note:
        warn(note)

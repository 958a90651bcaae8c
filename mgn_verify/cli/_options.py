"""Options shared by the commands that load plugins and configuration."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._exceptions import MgnVerifyError, UsageError
from .._exitcodes import ExitCode
from .._session import LoadedSession, Session
from .._text import escape_controls

__all__ = ["error", "loading_options", "open_session", "override_problem", "parse_duration", "run_or_exit",
           "split_list", "warn"]

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``1m30s`` → seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"invalid duration {text!r}: use e.g. 90s, 5m, 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def warn(message: str) -> None:
    """``mgn: warning: ...`` on stderr; control characters shown, never sent to the terminal."""
    click.echo(f"mgn: warning: {escape_controls(message)}", err=True)


def error(message: str) -> None:
    """``mgn: error: ...`` on stderr, the one line every failure is."""
    click.echo(f"mgn: error: {escape_controls(message)}", err=True)


def loading_options(func: F) -> F:
    """-p, --checks-dir, --config and --set: what decides which checks and settings exist."""
    options = [
        click.option("-p", "plugins", multiple=True, metavar="NAME",
                     help="Load a plugin (module or entry-point name); -p no:NAME blocks one."),
        click.option("--checks-dir", multiple=True, metavar="DIR",
                     help="Load every check_*.py below DIR (repeatable)."),
        click.option("--config", "config_path", metavar="PATH",
                     help="Config file (default: $MGN_CONFIG or ~/.metaguildnet/config.yaml)."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_check_overrides,
                     help="Override one setting, e.g. --set system.min_cpus=4 (repeatable)."),
        # Per-cluster checks exist per cluster, so narrowing them decides which checks exist.
        click.option("--cluster", "clusters", multiple=True, metavar="ID", expose_value=False,
                     callback=_remember_clusters,
                     help="Only these clusters' checks (repeatable) [config: verify.clusters]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _remember_clusters(ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> None:
    if value:
        ctx.meta[_CLUSTERS_META] = [item.strip() for v in value for item in v.split(",") if item.strip()]


_CLUSTERS_META = "mgn_verify.clusters"
_KEY_CHARS = re.compile(r"[\w.\-]*")


def _check_overrides(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """A malformed ``--set`` is a usage error before anything loads (one line, exit 2)."""
    for pair in value:
        problem = override_problem(pair)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="'--set'")
    return value


# A comma inside brackets belongs to a parametrized id (``x.y[a,b]``), not to the list.
_LIST_COMMA = re.compile(r",(?![^\[]*\])")


def split_list(values: tuple[str, ...]) -> list[str]:
    """Comma-separated option values (repeatable options), one list, blanks dropped."""
    return [item.strip() for value in values for item in _LIST_COMMA.split(value) if item.strip()]


def override_problem(pair: str) -> str | None:
    """What is wrong with a ``--set`` argument, never echoing what may be its value (a secret)."""
    key, sep, _ = pair.partition("=")
    if sep and key.strip():
        return None
    if sep:
        return "expects KEY=VALUE, got an empty KEY"
    text = pair.strip()
    head = _KEY_CHARS.match(text)
    name = head.group(0) if head else ""
    if name == text:
        return f"expects KEY=VALUE, got {text!r} (no '=')"
    # Only the key-like start and the character after it: the rest is probably the value.
    return f"expects KEY=VALUE, got {text[:len(name) + 1] + '…'!r} (did you mean {name + '=…'!r}?)"


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, tuple[Any, bool]]:
    """``--set`` pairs (text, converted by each setting's kind), plus ``--cluster`` when given."""
    out: dict[str, tuple[Any, bool]] = {}
    ctx = click.get_current_context(silent=True)
    if ctx is not None and _CLUSTERS_META in ctx.meta:
        out["verify.clusters"] = (list(ctx.meta[_CLUSTERS_META]), False)
    for pair in pairs:
        problem = override_problem(pair)
        if problem is not None:
            raise UsageError(f"--set {problem}")
        key, _, value = pair.partition("=")
        out[key.strip()] = (value, True)
    return out


def open_session(plugins: tuple[str, ...], checks_dir: tuple[str, ...], config_path: str | None,
                 overrides: dict[str, tuple[Any, bool]], selection: tuple[str, ...] = ()) -> LoadedSession:
    return Session(os.environ, warn).load(plugins=list(plugins), checks_dirs=list(checks_dir),
                                          config_path=config_path, settings=overrides,
                                          selection=list(selection) or ["all"])


def run_or_exit(body: Callable[[], int]) -> None:
    """Run a command body; a framework error is one line on stderr and exit 2, never a traceback."""
    try:
        code = body()
    except MgnVerifyError as exc:
        error(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("mgn: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    sys.stdout.flush()
    raise SystemExit(int(code))

"""``mgn verify history`` and ``mgn verify diff``: the runs recorded in the history database, and
what changed between two of them. Loaded only when one of them is named.

Only ``history.path`` matters here, so the settings are resolved without loading any plugin:
the built-in settings, from the same sources and by the same rules as ``mgn verify``.
"""

from __future__ import annotations

import json
import os
import shlex
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import UsageError
from .._text import escape_controls
from ..history import history_path
from ..history.compare import Change, CheckState, changes
from ._options import _check_overrides, parse_overrides, run_or_exit, warn

if TYPE_CHECKING:
    from ..history.store import RunRow, Store

__all__ = ["diff", "history"]

_EXIT_CODES = """\b
Exit codes:
    0  listed (diff: also when nothing changed)
    2  usage or configuration error, or the history cannot answer: no runs (diff),
       no such run, no green run, or a database that cannot be read"""

_RUN_HELP = """\b
RUN is an id as `mgn verify history` prints it, or a JSON report's run.id
(or a prefix of it, at least 4 characters)."""


def _config_options(func: Any) -> Any:
    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", callback=_check_overrides,
                        help="Override one setting, e.g. --set history.path=runs.db (repeatable).")(func)
    return click.option("--config", "config_path", metavar="PATH",
                        help="Config file (default: $MGN_CONFIG or ~/.metaguildnet/config.yaml).")(func)


_OUTPUT = click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table",
                       show_default=True, help="Output format (json: for programs).")


@click.command("history", epilog=_EXIT_CODES)
@click.option("-n", "limit", type=click.IntRange(1), default=20, show_default=True, metavar="N",
              help="Show the N newest runs.")
@_OUTPUT
@_config_options
def history(limit: int, fmt: str, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """List the recorded runs of mgn verify, newest first: id, start time, duration, exit code,
    results by status, command line. The database is history.path; runs are recorded unless
    --no-history or history.enabled=false."""
    def body() -> int:
        from ..history.store import NoRunsError

        path = _database(config_path, overrides)
        try:
            with _open(path) as store:
                runs = store.runs(limit)
        except NoRunsError:  # not an error here: an empty list
            runs = []
        if fmt == "json":
            click.echo(json.dumps([run.to_dict() for run in runs], indent=2))
        elif not runs:
            click.echo(f"no runs recorded yet in {path}")
        else:
            _print_runs(runs)
        return 0

    run_or_exit(body)


@click.command("diff", epilog=_RUN_HELP + "\n\n" + _EXIT_CODES)
@click.argument("run_a", required=False, metavar="[RUN_A]")
@click.argument("run_b", required=False, metavar="[RUN_B]")
@click.option("--since-green", is_flag=True,
              help="Compare the last run (or RUN_A) with the newest run before it that exited 0.")
@_OUTPUT
@_config_options
def diff(run_a: str | None, run_b: str | None, since_green: bool, fmt: str, config_path: str | None,
         overrides: tuple[str, ...]) -> None:
    """Show the checks whose status changed between two recorded runs (both statuses and
    messages), and the checks only one of them ran (new, removed).

    \b
    mgn verify diff                  the last run against the one before it
    mgn verify diff RUN_A            RUN_A against the last run
    mgn verify diff RUN_A RUN_B      RUN_A against RUN_B
    mgn verify diff --since-green    the newest green run (exit code 0) before the
                                     last run, against the last run
    mgn verify diff --since-green RUN   the same, for RUN instead of the last run"""
    def body() -> int:
        if since_green and run_b is not None:
            raise UsageError("--since-green compares one run with the green run before it: give at most one RUN")
        path = _database(config_path, overrides)
        with _open(path) as store:
            before, after = _pair(store, run_a, run_b, since_green)
            found = changes(_states(store, before), _states(store, after))
        if fmt == "json":
            click.echo(json.dumps({"before": before.to_dict(), "after": after.to_dict(),
                                   "changes": [_change_dict(change) for change in found]}, indent=2))
        else:
            _print_changes(before, after, found)
        return 0

    run_or_exit(body)


def _database(config_path: str | None, overrides: tuple[str, ...]) -> Path:
    """``history.path`` as ``mgn verify`` resolves it (defaults < file < ``MGN_*`` < ``--set``),
    from the built-in settings alone: no plugin is loaded. Other plugins' keys are unknown here,
    so only warnings about history settings (a misspelt one) are shown."""
    from .. import builtin
    from ..config import SettingsRegistry
    from ..config.loader import load_sources, resolve

    registry = SettingsRegistry()
    builtin.mgn_add_settings(settings=registry)
    sources = load_sources(config_path, os.environ, parse_overrides(overrides))
    config = resolve(sources, registry, warn=lambda message: warn(message) if "history" in message else None)
    return history_path(config)


def _open(path: Path) -> Store:
    from ..history.store import open_store

    return open_store(path)


def _pair(store: Store, run_a: str | None, run_b: str | None, since_green: bool) -> tuple[RunRow, RunRow]:
    """The (before, after) runs the arguments name; see ``diff``'s help."""
    from ..history.store import HistoryError

    if run_b is not None:
        return _find(store, run_a or ""), _find(store, run_b)
    latest = _latest(store)
    if since_green:
        after = _find(store, run_a) if run_a is not None else latest
        green = store.before(after.seq, green=True)
        if green is None:
            raise HistoryError(f"no green run (exit code 0) recorded before run {after.seq}")
        return green, after
    if run_a is not None:
        return _find(store, run_a), latest
    before = store.before(latest.seq)
    if before is None:
        raise HistoryError(f"only one run recorded (run {latest.seq}): nothing to compare it with")
    return before, latest


def _latest(store: Store) -> RunRow:
    from ..history.store import HistoryError

    runs = store.runs(1)
    if not runs:
        raise HistoryError(f"no runs recorded yet in {store.path}")
    return runs[0]


def _find(store: Store, ref: str) -> RunRow:
    """A run by the id ``history`` prints, else by (a prefix of) its report's ``run.id``."""
    from ..history.store import HistoryError

    text = ref.strip()
    if text.isdigit():
        run = store.run(int(text))
        if run is not None:
            return run
    if len(text) >= 4:
        matches = store.runs_by_run_id(text.lower())
        if len(matches) > 1:
            raise UsageError(f"run {ref!r} is ambiguous: more than one run.id starts with it")
        if matches:
            return matches[0]
    raise HistoryError(f"no run {ref!r} in {store.path} (mgn verify history lists them; old ones are pruned "
                       "beyond history.keep)")


def _states(store: Store, run: RunRow) -> dict[str, CheckState]:
    return {row.id: CheckState(row.status, row.message) for row in store.results(run.seq)}


def _change_dict(change: Change) -> dict[str, Any]:
    def state(value: CheckState | None) -> dict[str, str] | None:
        return None if value is None else {"status": value.status, "message": value.message}

    return {"id": change.id, "kind": change.kind, "before": state(change.before), "after": state(change.after)}


def _started(run: RunRow) -> str:
    """The start time in local time, to the second."""
    try:
        return datetime.fromisoformat(run.started_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return run.started_at


def _command(run: RunRow) -> str:
    """The command line, program path shortened to ``mgn`` (``python -m mgn_verify`` too)."""
    return escape_controls(shlex.join(["mgn", *run.argv[1:]]))


def _counts(run: RunRow) -> str:
    shown = [f"{n} {status}" for status, n in run.counts.items() if n]
    return ", ".join(shown) or "no checks"


def _print_runs(runs: list[RunRow]) -> None:
    rows = [(str(run.seq), _started(run), f"{run.duration_s:.1f}s", str(run.exit_code), _counts(run),
             _command(run)) for run in runs]
    header = ("ID", "STARTED", "DURATION", "EXIT", "RESULTS", "COMMAND")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    right = {0, 2, 3}  # numbers
    for row in [header, *rows]:
        cells = [cell.rjust(w) if i in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row[:-1], widths, strict=True))]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


def _print_changes(before: RunRow, after: RunRow, found: list[Change]) -> None:
    def label(run: RunRow) -> str:
        return f"run {run.seq} ({_started(run)}, exit {run.exit_code})"

    count = f"{len(found)} change{'' if len(found) == 1 else 's'}" if found else "no check changed status"
    click.echo(f"{label(before)} → {label(after)}: {count}")
    width = max((len(escape_controls(change.id)) for change in found), default=0)
    for change in found:
        then, now = change.before, change.after
        if then is not None and now is not None:
            what = f"{then.status} → {now.status}"
        elif now is not None:
            what = f"new: {now.status}"
        else:
            what = f"removed (was {then.status if then else '?'})"
        click.echo(f"  {escape_controls(change.id).ljust(width)}  {what}")
        for name, state in (("before", then), ("after", now)):
            if state is not None and state.message.strip():
                lines = [escape_controls(line, keep_tab=True) for line in state.message.strip().splitlines()]
                click.echo(f"      {name + ':':<7} {lines[0]}")
                for line in lines[1:]:  # a multi-line message (an assertion's explanation) stays aligned
                    click.echo(f"              {line}".rstrip())

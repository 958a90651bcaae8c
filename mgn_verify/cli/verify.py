"""``mgn verify``: run checks, and inspect the catalogue (list, explain, graph)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import click

from .._exceptions import MgnVerifyError, UsageError
from .._exitcodes import ExitCode
from .._report import RunReport
from .._reporting import Reporter, ReporterContext, builtin_reporters
from .._session import LoadedSession, Session
from ..config import Config, Redactor, SettingsRegistry
from ..config.redact import scrub_argv
from ._emit import HUMAN_FORMAT, Output, StdoutGuard, emit, resolve_outputs, stdout_context
from ._options import (
    error,
    loading_options,
    parse_overrides,
    run_or_exit,
    warn,
)
from ._request import RunRequest, prepare
from ._signals import SignalScope

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(f"  {int(c):>3}  {c.meaning}" for c in ExitCode)


#: Subcommands other than ``run``, imported only when named: NAME -> (module, attribute).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "list": ("mgn_verify.cli.verify_catalogue", "list_"),
    "explain": ("mgn_verify.cli.verify_catalogue", "explain"),
    "graph": ("mgn_verify.cli.verify_catalogue", "graph"),
    "history": ("mgn_verify.cli.history_cmd", "history"),
    "diff": ("mgn_verify.cli.history_cmd", "diff"),
    "serve": ("mgn_verify.cli.serve_cmd", "serve"),
}


class DefaultToRun(click.Group):
    """``mgn verify system network`` runs checks; ``mgn verify list`` is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in SUBCOMMANDS):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in SUBCOMMANDS:
            module, attribute = SUBCOMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        run_cmd = self.commands["run"]
        with click.Context(run_cmd, info_name=ctx.info_name, parent=ctx.parent) as sub:
            run_cmd.format_help(sub, formatter)


class _RunContext(click.Context):
    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else "mgn verify"


class RunCommand(click.Command):
    """The hidden default subcommand presents itself as ``mgn verify`` in help and errors."""

    context_class = _RunContext


@click.group(cls=DefaultToRun)
def verify() -> None:
    """Run preflight checks."""


@verify.command("run", cls=RunCommand, epilog=EXIT_CODES_HELP + "\n\n\b\nSubcommands:\n"
                "  mgn verify list [--json]    the check catalogue (--format markdown)\n"
                "  mgn verify explain ID       what a check does, why, how to fix it\n"
                "  mgn verify graph            the dependency graph (DOT or Mermaid)")
@click.argument("layers", nargs=-1, metavar="[all|LAYER...]")
@click.option("--check", "checks", multiple=True, metavar="GLOB", help="Only checks whose id matches.")
@click.option("--skip", "skips", multiple=True, metavar="GLOB", help="Leave out checks whose id matches.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only checks with this tag.")
@click.option("--gate", metavar="NAME",
              help="Run a preflight gate's checks (with --cluster: for those clusters), exactly as the gated "
                   "command would (mgn gate list names them).")
@loading_options
@click.option("--concurrency", type=click.IntRange(1, 4096), help="Checks running at once [config: 32].")
@click.option("--timeout", type=click.FloatRange(0.001), help="Default seconds per check attempt [10].")
@click.option("-x", "--fail-fast", is_flag=True, help="Stop scheduling after the first fail or error.")
@click.option("--wait", "wait", metavar="DURATION",
              help="Re-run failing checks with backoff until they pass or DURATION (e.g. 5m) ends.")
@click.option("--strict", is_flag=True, default=None, help="Exit 4 when the only findings are warnings.")
@click.option("--isolate", is_flag=True, default=None,
              help="Run each sync check in a child process, killed at its timeout [config: verify.isolate].")
@click.option("--ignore-preflight-errors", "ignore", multiple=True, metavar="ID[,ID...]|all",
              help="Waive failures of these checks (globs allowed), as kubeadm does.")
@click.option("--json", "json_path", metavar="PATH", multiple=True, callback=lambda c, p, v: _once(p, v),
              help="Write the JSON report to PATH (- for stdout).")
@click.option("--junit", "junit_path", metavar="PATH", multiple=True, callback=lambda c, p, v: _once(p, v),
              help="Write the JUnit XML report to PATH (- for stdout).")
@click.option("--html", "html_path", metavar="PATH", multiple=True, callback=lambda c, p, v: _once(p, v),
              help="Write a self-contained HTML report (with the dependency graph) to PATH.")
@click.option("--markdown", "markdown_path", metavar="PATH", multiple=True, callback=lambda c, p, v: _once(p, v),
              help="Write a Markdown summary to PATH (e.g. \"$GITHUB_STEP_SUMMARY\").")
@click.option("-o", "--output", "formats", multiple=True, metavar="FORMAT",
              help="Report format for stdout: console (default), json, junit, markdown, html "
                   "(one report per destination).")
@click.option("--github-annotations", is_flag=True,
              help="Also print ::error/::warning workflow commands for failures and warnings (GitHub Actions).")
@click.option("--watch", "watch", metavar="INTERVAL",
              help="Re-run every INTERVAL (e.g. 30s) and print only status changes; Ctrl-C ends it (exit 130).")
@click.option("--no-history", is_flag=True, help="Do not record this run in the history database.")
@click.option("-v", "--verbose", count=True, help="Show messages of passing checks too.")
@click.option("--lab", is_flag=True,
              help="Start the GuildNet lab (local simulators) in-process and verify against it.")
@click.option("--fault", "faults", multiple=True, metavar="NAME",
              help="With --lab: inject this lab fault (repeatable; mgn lab fault list names them).")
@click.option("--version", "show_version", is_flag=True,
              help="Show mgn's version and every plugin this run would load (distribution, version, hooks).")
def run(layers: tuple[str, ...], checks: tuple[str, ...], skips: tuple[str, ...], tags: tuple[str, ...],
        gate: str | None, plugins: tuple[str, ...], checks_dir: tuple[str, ...], config_path: str | None,
        overrides: tuple[str, ...], concurrency: int | None, timeout: float | None, fail_fast: bool,
        wait: str | None, strict: bool | None, isolate: bool | None, ignore: tuple[str, ...], json_path: str | None,
        junit_path: str | None, html_path: str | None, markdown_path: str | None, formats: tuple[str, ...],
        github_annotations: bool, watch: str | None, no_history: bool, verbose: int, lab: bool,
        faults: tuple[str, ...], show_version: bool) -> None:
    """Run the checks of all layers, or of the LAYERs named (system, network, kubernetes,
    tailscale, rethinkdb, guildnet). Checks they require are pulled in and run first.

    With --lab, the GuildNet lab's simulators are started for the run and stopped after it,
    and its config is used: every layer works on any machine (add --fault to see a failure)."""
    if show_version:  # the same plugin-loading options as a run (-p, --checks-dir, --config, --set)
        from .plugin_cmd import show_versions

        show_versions(plugins, checks_dir, config_path, overrides)  # exits
        return
    settings = parse_overrides(overrides)
    if concurrency is not None:
        settings["verify.concurrency"] = (concurrency, False)
    if timeout is not None:
        settings["verify.timeout"] = (float(timeout), False)
    if strict is not None:
        settings["verify.strict"] = (strict, False)
    if isolate is not None:
        settings["verify.isolate"] = (isolate, False)

    if faults and not lab:
        raise click.UsageError("--fault needs --lab")
    if lab and config_path:
        raise click.UsageError("--lab brings its own config: leave out --config (use --set to change a setting)")
    selection = list(layers) or ["all"]
    load_selection = selection
    if gate is not None:  # as the gated command runs it (lifecycle.preflight)
        from .._gates import gate_selections

        load_selection, selection = gate_selections(gate)
    request = RunRequest(layers, checks, skips, tags, gate, plugins, checks_dir, config_path, settings, fail_fast,
                         wait, ignore, verbose, tuple(selection), tuple(load_selection))

    def body() -> int:
        # Before anything runs: bad report paths are usage errors, relative ones are fixed now.
        files = [("--json", "json", json_path), ("--junit", "junit", junit_path), ("--html", "html", html_path),
                 ("--markdown", "markdown", markdown_path)]
        try:
            outputs = resolve_outputs(formats, files)
        except UsageError as exc:  # the usable reports still say why nothing ran
            return _fail_before_run(Session(os.environ, warn), _usable_outputs(formats, files), str(exc), selection,
                                    verbose, plugins)
        if watch is not None:
            from .watch import watch_interval, watch_runs

            interval = watch_interval(watch, outputs, github_annotations)  # or a usage error

            def run_watch(path: str | None) -> int:
                return watch_runs(request, interval, path, record_history=not no_history)

            return _with_lab(faults, run_watch) if lab else run_watch(config_path)
        if lab:
            return _with_lab(faults, lambda path: verify_with(path, outputs))
        return verify_with(config_path, outputs)

    def verify_with(config_path: str | None, outputs: list[Output]) -> int:
        # Ctrl-C/SIGTERM at any moment: exit 130 with every report complete (see _signals).
        with SignalScope() as signals:
            return verify_in(config_path, outputs, signals)

    def verify_in(config_path: str | None, outputs: list[Output], signals: SignalScope) -> int:
        session = Session(os.environ, warn)

        def check_formats(loaded: LoadedSession) -> None:
            if not any(o.path is None for o in outputs) and "console" in loaded.reporters.names():
                outputs.insert(0, Output("console"))  # the default, unless -p no:console
            for output in outputs:  # an unknown format is a usage error before anything runs
                loaded.reporters.check(output.format)

        try:
            with signals.raising():  # a plugin stuck while importing must still end
                prepared = prepare(request, config_path=config_path, session=session, before_select=check_formats)
                loaded, config = prepared.loaded, prepared.loaded.config
        except MgnVerifyError as exc:
            return _fail_before_run(session, outputs, str(exc), selection, verbose, plugins, signals=signals)
        except KeyboardInterrupt:
            return _fail_before_run(session, outputs, "interrupted while loading plugins and configuration",
                                    selection, verbose, plugins, interrupted=True)
        with StdoutGuard(outputs) as guard:
            # Stdout reporters exist before the run, so a console one can show live progress.
            context = stdout_context(config, verbose, guard.stream)
            stdout_reporters = _stdout_reporters(loaded, outputs, context)
            live = [*stdout_reporters.values()] if context.is_tty else []
            try:
                report = prepared.run(live=[*live, signals.redeliverer()])
            except MgnVerifyError as exc:  # e.g. a waiver that does not parse
                return _fail_before_run(session, outputs, str(exc), selection, verbose, plugins, guard.stream,
                                        signals=signals)
            if signals.pending() and not report.interrupted:
                report.mark_interrupted("interrupted after every check had finished (the results are complete)")
            emit(report, outputs, loaded.reporters, config, stdout=guard.stream,
                 stdout_reporters=stdout_reporters, verbose=verbose, interrupted=signals.pending)
            if github_annotations:
                from ..reporters.github import print_annotations

                # After the console report on stdout; on stderr when stdout carries a machine-readable
                # report (the Actions runner reads workflow commands from both).
                human = all(o.path is not None or o.format == HUMAN_FORMAT for o in outputs)
                print_annotations(report, guard.stream if human else sys.stderr)
        if not no_history:
            from ..history import record_run

            record_run(report, config, warn)  # never fails the run: a warning at worst
        return _echo_errors(report)

    run_or_exit(body)


def _once(param: click.Parameter, values: tuple[str, ...]) -> str | None:
    """A report option given twice would silently lose one of the reports: a usage error."""
    if len(values) > 1:
        raise click.BadParameter(f"given {len(values)} times ({', '.join(map(repr, values))}): one path each",
                                 param=param)
    return values[0] if values else None


def _with_lab(faults: tuple[str, ...], body: Callable[[str], int]) -> int:
    """Start the lab (in this process), run ``body`` with its config file, always stop it."""
    from ..lab import Lab, UnknownFaultError

    try:
        lab = Lab(faults=faults)
    except UnknownFaultError as exc:
        raise UsageError(str(exc)) from None
    lab.start()
    try:
        shown = f" with faults {', '.join(sorted(lab.faults))}" if lab.faults else ""
        click.echo(f"mgn: lab started{shown}: config {lab.config_path}", err=True)
        return body(str(lab.config_path))
    finally:
        lab.stop()


def _stdout_reporters(loaded: LoadedSession, outputs: list[Output], context: ReporterContext) -> dict[str, Reporter]:
    """The stdout reporter, made before the run (a console one shows live progress). One whose
    factory fails is left to ``emit``, which reports that as an error."""
    made: dict[str, Reporter] = {}
    for output in outputs:
        if output.path is None:
            with contextlib.suppress(Exception):  # third-party code: emit tries again, and says why
                made[output.format] = loaded.reporters.create(output.format, context)
    return made


def _fail_before_run(session: Session, outputs: list[Output], error: str, selection: list[str], verbose: int,
                     plugins: tuple[str, ...], stream: TextIO | None = None, *, interrupted: bool = False,
                     signals: SignalScope | None = None) -> int:
    """A run that could not start still writes every requested report, saying why."""
    return _echo_errors(_emit_failure(session, outputs, error, selection, verbose, plugins, stream,
                                      interrupted=interrupted, signals=signals))


def _emit_failure(session: Session, outputs: list[Output], error: str, selection: list[str], verbose: int,
                  plugins: tuple[str, ...], stream: TextIO | None = None, *, interrupted: bool = False,
                  signals: SignalScope | None = None) -> RunReport:
    """The reports of a run that could not start, through the same ``emit`` as any run: the
    session's reporters when they registered, else the built-in reporter plugins. The console is
    left out: the error line on stderr says it all."""
    config = session.config or Config({}, {}, SettingsRegistry(), Redactor())
    report = RunReport.for_failure(
        error, argv=config.redactor.data(scrub_argv(sys.argv)), interrupted=interrupted,
        exit_code=ExitCode.INTERRUPTED if interrupted else ExitCode.USAGE_ERROR,
        warnings=session.warnings, selection=selection, config_file=config.file)
    blocked = [p[3:] for p in plugins if p.startswith("no:")]
    registry = session.reporters if session.reporters.names() else builtin_reporters(blocked)
    # The console is left out (the error line says it all), and so is a format nobody provides.
    wanted = [o for o in outputs if (o.path is not None or o.format != HUMAN_FORMAT) and o.format in registry.names()]
    emit(report, wanted, registry, config, stdout=stream, verbose=verbose,
         interrupted=signals.pending if signals is not None else lambda: False)
    return report


def _usable_outputs(formats: Sequence[str], files: Sequence[tuple[str, str, str | None]]) -> list[Output]:
    """The requested reports that can be written together (the first stdout one, then each file
    whose path is valid and not taken), for saying why a command line with a bad report option
    did not run."""
    usable: list[Output] = []
    kept_formats: list[str] = []
    kept_files: list[tuple[str, str, str | None]] = []
    for fmt in formats[:1]:
        with contextlib.suppress(UsageError):
            usable = resolve_outputs([fmt], [])
            kept_formats = [fmt]
    for entry in files:
        with contextlib.suppress(UsageError):
            usable = resolve_outputs(kept_formats, [*kept_files, entry])
            kept_files.append(entry)
    return usable


def report_usage_error(args: list[str], message: str) -> None:
    """Click rejected the command line (an unknown option, a value out of range) before the run
    began: still write the reports it asked for, read tolerantly from ``args``, with the error in
    ``summary.errors``. Report options that are themselves unusable are left alone."""
    formats: list[str] = []
    files: dict[str, str] = {}
    options = {"--json": "json", "--junit": "junit", "--html": "html", "--markdown": "markdown", "-o": "format",
               "--output": "format"}
    for index, arg in enumerate(args):
        if arg.startswith("-o") and len(arg) > 2:  # -ojson
            name, value, inline = "-o", arg[2:].lstrip("="), True
        else:
            name, sep, value = arg.partition("=")
            inline = bool(sep)
        if name not in options:
            continue
        if not inline:
            value = args[index + 1] if index + 1 < len(args) else ""
        if options[name] == "format":
            formats.append(value)
        else:
            files[name] = value
    outputs = _usable_outputs(formats, [(name, options[name], path) for name, path in files.items()])
    with contextlib.suppress(MgnVerifyError):  # the one error line is already on stderr
        _emit_failure(Session(os.environ, warn), outputs, message, [], 0, ())


def _echo_errors(report: RunReport) -> int:
    for message in report.errors:
        error(message)
    return int(report.exit_code)
